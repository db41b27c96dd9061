"""berts: train the BERT family from scratch, with Hugging Face-native directories.

The data flow, one file each: tokenizer.py -> data/ (corpus, instances, masking, collate)
-> model.py (embeddings, encoder) -> heads.py (objectives, task models) -> train/ (the loop)
-> hf.py (the Hugging Face mapping).
"""
from berts.config import BertConfig, preset, preset_names
from berts.errors import UserError
from berts.heads import BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, ModelOutput
from berts.hf import load
from berts.model import BertModel
from berts.version import __version__


__all__ = [
    "BertConfig", "preset", "preset_names", "UserError", "load",
    "BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification", "ModelOutput",
    "__version__",
]
