"""Training objectives, one module each: its head (parameters), its loss part(s), the counts they
average over, its metrics, the batch keys it reads, the rows it needs from the encoder, and its
Hugging Face parameter names. A task model (model/heads.py) is an encoder + objectives.

* base.py: the Objective protocol, ``Result``, the registry (``OBJECTIVES``, ``register``);
* mlm.py: masked language modelling (sparse: logits at the masked positions only);
* pair.py: NSP and SOP (one head on the pooled [CLS]; the part is named after the label given);
* sbo.py: SpanBERT's span boundary objective (its own part, on the MLM's tied decoder);
* structure.py: ERNIE 2.0's sentence reordering and sentence distance (heads on the pooled
  [CLS]) and StructBERT's word structural objective (on the MLM head);
* classification.py: sequence classification and regression ("task").
"""
from berts.objectives.base import OBJECTIVES, Objective, Result, register
from berts.objectives.classification import SequenceClassification
from berts.objectives.mlm import MaskedLM, mlm_targets
from berts.objectives.pair import SentencePair
from berts.objectives.sbo import SpanBoundary
from berts.objectives.structure import SentenceDistance, SentenceReorder, WordStructure

__all__ = ["OBJECTIVES", "Objective", "Result", "register", "MaskedLM", "mlm_targets", "SentencePair",
           "SpanBoundary", "SequenceClassification", "SentenceReorder", "SentenceDistance", "WordStructure"]
