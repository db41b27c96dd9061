"""Training objectives, one module each: its head (parameters), its loss part(s), the counts they
average over, its metrics, the batch keys it reads, the rows it needs from the encoder, and its
Hugging Face parameter names. A task model (model/heads.py) is an encoder + objectives.

* registry.py: the pretraining objectives by name (``ObjectiveSpec``: head, data side, config
  section, evaluation sums), read from the ``X = ObjectiveSpec(...)`` statements of these modules;
* base.py: the Objective protocol (the head), ``Result``, the head classes by name (``OBJECTIVES``);
* mlm.py: masked language modelling (sparse: logits at the masked positions only);
* pair.py: NSP and SOP (one head on the pooled [CLS]; the part is named after the label given);
* sbo.py: SpanBERT's span boundary objective (its own part, on the MLM's tied decoder);
* structure.py: ERNIE 2.0's sentence reordering and sentence distance (heads on the pooled
  [CLS]) and StructBERT's word structural objective (on the MLM head);
* lm.py: next-token LM (UniLM's unilm / clm / seq2seq); electra.py: ELECTRA's spec (the model pair);
* samedoc.py: "is B from A's document?", the worked example of docs/extending/objective.md;
* classification.py: sequence classification and regression ("task").

The names below load on first use: the command line reads the registry without torch.
"""
import importlib

_NAMES = {
    "OBJECTIVES": "base", "Objective": "base", "Result": "base", "register": "base",
    "SequenceClassification": "classification", "MaskedLM": "mlm", "mlm_targets": "mlm",
    "SentencePair": "pair", "SpanBoundary": "sbo", "SentenceReorder": "structure",
    "SentenceDistance": "structure", "WordStructure": "structure",
}
__all__ = list(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module 'berts.objectives' has no attribute {name!r}")
    return getattr(importlib.import_module(f"berts.objectives.{_NAMES[name]}"), name)
