"""berts: train the BERT family from scratch, with Hugging Face-native directories.

The data flow: tokenizer.py -> data/ (corpus, instances, masking, collate) -> model.py
(embeddings, encoder; attention.py and padding.py beside it) -> objectives/ (one per objective:
head, loss, counts, metrics) -> heads.py (task models: encoder + objectives) -> train/ (the loop)
-> hf.py (the Hugging Face mapping). Module-level imports run one way: config <- model <-
objectives <- heads <- hf (tests/test_layering.py).
"""
from berts.model.config import BertConfig, preset, preset_names
from berts.errors import UserError
from berts.model.heads import (BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertForUnifiedLM,
                         ModelOutput)
from berts.model.electra import ElectraForMaskedLM, ElectraForPreTraining  # registers ELECTRA's task models
from berts.serve.generate import TextGenerator
from berts.hf import load, load_config
from berts.serve.predict import Classifier
from berts.model.encoder import BertModel
from berts.version import __version__

__all__ = [
    "BertConfig", "preset", "preset_names", "UserError", "load", "load_config",
    "BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification", "BertForUnifiedLM",
    "ModelOutput", "ElectraForPreTraining", "ElectraForMaskedLM",
    "Classifier", "TextGenerator",
    "__version__",
]
