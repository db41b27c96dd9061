"""berts: train the BERT family from scratch, with Hugging Face-native directories.

The data flow: tokenizer/ -> data/ (corpus, instances, masking, collate) -> model/ (config,
embeddings, encoder; attention.py and padding.py beside it) -> objectives/ (one per objective:
head, loss, counts, metrics) -> model/heads.py (task models: encoder + objectives) -> train/ (the
loop) -> hf/ (the Hugging Face mapping). Module-level imports run one way: config <- model <-
objectives <- heads <- hf (tests/test_layering.py).

The public names below are loaded on first use (PEP 562 ``__getattr__``): ``import berts`` alone,
and so the `berts` command (berts.cli), do not pay for torch until a name that needs it is read.
``from berts import BertConfig`` works as before.
"""
from importlib import import_module

from berts.errors import UserError
from berts.version import __version__

# public name -> the module that defines it
_LAZY = {
    "BertConfig": "berts.model.config", "preset": "berts.model.config", "preset_names": "berts.model.config",
    "BertModel": "berts.model.encoder",
    "BertForPreTraining": "berts.model.heads", "BertForMaskedLM": "berts.model.heads",
    "BertForSequenceClassification": "berts.model.heads", "BertForUnifiedLM": "berts.model.heads",
    "ModelOutput": "berts.model.heads",
    "ElectraForPreTraining": "berts.model.electra", "ElectraForMaskedLM": "berts.model.electra",
    "load": "berts.hf", "load_config": "berts.hf",
    "Classifier": "berts.serve.predict",
    "TextGenerator": "berts.serve.generate",
    "BertForQuestionAnswering": "berts.tasks.qa", "QuestionAnswerer": "berts.serve.qa",
    "BertForMultipleChoice": "berts.tasks.multiple_choice", "ChoicePredictor": "berts.tasks.multiple_choice",
    "MultiLabelPredictor": "berts.tasks.multi_label",
    "Encoder": "berts.embed.encoder",
    "Tagger": "berts.serve.tagger", "BertForTokenClassification": "berts.tasks.token_classification",
}

__all__ = [
    "BertConfig", "preset", "preset_names", "UserError", "load", "load_config",
    "BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification", "BertForUnifiedLM",
    "ModelOutput", "ElectraForPreTraining", "ElectraForMaskedLM",
    "Classifier", "TextGenerator", "BertForQuestionAnswering", "QuestionAnswerer",
    "BertForMultipleChoice", "ChoicePredictor", "MultiLabelPredictor", "Encoder", "Tagger",
    "BertForTokenClassification",
    "__version__",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        # a sub-package (`import berts; berts.hf.read_config(...)`): the eager __init__ had imported
        # berts.hf, berts.model, berts.serve, ..., so their attributes worked without importing them
        try:
            return import_module(f"berts.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"berts.{name}":
                raise
        raise AttributeError(f"module 'berts' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # once read, a plain attribute: __getattr__ runs once per name
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
