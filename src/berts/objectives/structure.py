"""Structure objectives: ERNIE 2.0's sentence reordering and sentence distance (a head on the
pooled [CLS] each), and StructBERT's word structural objective (on the MLM head).

* ``SentenceReorder``: pooled [CLS] -> 9 classes, the order the 1-3 pieces of the chunk are shown
  in (berts.data.instances.REORDER_PERMUTATIONS); label ``sentence_reorder_label``, part
  "reorder", metric ``reorder_acc``, averaged over the rows.
* ``SentenceDistance``: pooled [CLS] -> 3 classes (0 B follows A, 1 same document, 2 another
  document); label ``sentence_distance_label``, part "distance", metric ``distance_acc``.
* ``WordStructure``: the original id at each token of a shuffled trigram (``wso_positions`` /
  ``wso_labels``, from the collator's ``wso`` transform), through the MLM head's transform and
  tied decoder (it has no parameters of its own); part "wso", averaged over those positions,
  metric ``wso_acc``.

transformers has no head for these: the two sentence heads save under our own names
(``cls.sentence_reorder.*``, ``cls.sentence_distance.*``), so transformers' BertForPreTraining
loads the encoder and MLM head of such a directory, lists these weights as unused and
initialises its NSP head anew; berts reloads them exactly (the switch is ``config.objectives``
in config.json, see heads.BertForPreTraining).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from berts.model.config import BertConfig
from berts.objectives.base import Objective, Result, accuracy, register
from berts.objectives.lm import OnMLMHead
from berts.objectives.registry import ObjectiveSpec

REORDER = ObjectiveSpec(
    name="reorder", kind="sentence", help="ERNIE 2.0's sentence reordering: 1-3 pieces shuffled, 9 classes",
    head="berts.objectives.structure:SentenceReorder", attr="structure", label_key="sentence_reorder_label",
    batch_keys=("sentence_reorder_label",), maker="berts.data.instances:make_reordered", num_labels=9,
    num_special=4, eval_labels="sentence_reorder_label", eval_logits="structure_logits", eval_loss=False)
DISTANCE = ObjectiveSpec(
    name="distance", kind="sentence",
    help="ERNIE 2.0's sentence distance: B adjacent / same document / other document",
    head="berts.objectives.structure:SentenceDistance", attr="structure", label_key="sentence_distance_label",
    batch_keys=("sentence_distance_label",), maker="berts.data.instances:make_distance", num_labels=3,
    num_special=3, min_documents=2, eval_labels="sentence_distance_label", eval_logits="structure_logits",
    eval_loss=False)
# its data side is a batch transform (shuffled trigrams), built from the run config's ``wso`` section;
# scored on the held-out data through that transform (the MLM figures stay on clean text)
WSO = ObjectiveSpec(
    name="wso", kind="token", help="StructBERT's word structural objective (shuffled trigrams, MLM head)",
    head="berts.objectives.structure:WordStructure", attr="wso", batch_keys=("wso_positions", "wso_labels"),
    transform="berts.data.collate:TrigramShuffle", config="wso", eval_labels="wso_labels",
    eval_transformed=True)


class _SentenceClasses(Objective, nn.Linear):
    """One linear head H -> ``num_classes`` on the pooled [CLS], its label under ``label_key``."""

    num_classes = 0
    label_key = ""

    def __init__(self, config: BertConfig):
        nn.Linear.__init__(self, config.hidden_size, self.num_classes)

    def counts(self, batch):
        return {self.name: int(batch["input_ids"].shape[0])} if batch.get(self.label_key) is not None else {}

    def forward(self, enc, batch, picked):
        logits = F.linear(enc.pooler_output, self.weight, self.bias)  # [B, num_classes]
        out = Result(fields={"structure_logits": logits})
        if batch.get(self.label_key) is not None:
            y = batch[self.label_key].reshape(-1)
            out.losses[self.name] = F.cross_entropy(logits.float(), y)
            out.metrics[f"{self.name}_acc"] = accuracy(logits, y)
        return out


@register
class SentenceReorder(_SentenceClasses):
    name = "reorder"
    parts = ("reorder",)
    metric_parts = {"reorder_acc": "reorder"}
    label_key = "sentence_reorder_label"
    batch_keys = (label_key,)
    num_classes = 9
    hf_names = {"": {"bert": "cls.sentence_reorder.", "albert": "sentence_reorder."}}


@register
class SentenceDistance(_SentenceClasses):
    name = "distance"
    parts = ("distance",)
    metric_parts = {"distance_acc": "distance"}
    label_key = "sentence_distance_label"
    batch_keys = (label_key,)
    num_classes = 3
    hf_names = {"": {"bert": "cls.sentence_distance.", "albert": "sentence_distance."}}


SENTENCE_OBJECTIVES = {"reorder": SentenceReorder, "distance": SentenceDistance}
SentenceClasses = _SentenceClasses  # the base of a new sentence-level head (objectives/samedoc.py)


@register
class WordStructure(OnMLMHead):
    name = "wso"
    parts = ("wso",)
    metric_parts = {"wso_acc": "wso"}
    positions_key, labels_key = "wso_positions", "wso_labels"
    batch_keys = (positions_key, labels_key)
