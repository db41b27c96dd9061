"""Sentence-pair objectives on the pooled [CLS]: NSP (BERT: is B the real next segment?) and SOP
(ALBERT: are A and B in order?). One linear head H -> 2; the loss part is named after the label
given: ``next_sentence_label`` -> "nsp", ``sentence_order_label`` -> "sop", averaged over the rows.

The parameters sit on the objective itself (it is an nn.Linear), so our names stay
``seq_relationship.weight``/``.bias`` (transformers' ``cls.seq_relationship``).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from berts.model.config import BertConfig
from berts.objectives.base import Objective, Result, accuracy, register
from berts.objectives.registry import ObjectiveSpec

# one head (seq_relationship, transformers' name) for both; the label keyword tells them apart
NSP = ObjectiveSpec(
    name="nsp", kind="sentence", help="next sentence prediction (BERT): is B the real next segment?",
    head="berts.objectives.pair:SentencePair", attr="seq_relationship", label_key="next_sentence_label",
    batch_keys=("next_sentence_label",), maker="berts.data.instances:make_paired", num_labels=2,
    num_special=3, min_documents=2, eval_labels="next_sentence_label", eval_logits="seq_relationship_logits",
    eval_loss=False)
SOP = ObjectiveSpec(
    name="sop", kind="sentence", help="sentence order prediction (ALBERT): are A and B in order?",
    head="berts.objectives.pair:SentencePair", attr="seq_relationship", label_key="sentence_order_label",
    batch_keys=("sentence_order_label",), maker="berts.data.instances:make_paired", num_labels=2,
    num_special=3, eval_labels="sentence_order_label", eval_logits="seq_relationship_logits", eval_loss=False)

LABELS = {"nsp": "next_sentence_label", "sop": "sentence_order_label"}


@register
class SentencePair(Objective, nn.Linear):
    name = "pair"
    parts = ("nsp", "sop")
    metric_parts = {"nsp_acc": "nsp", "sop_acc": "sop"}
    batch_keys = tuple(LABELS.values())
    hf_names = {"": {"bert": "cls.seq_relationship.", "albert": "sop_classifier.classifier."}}

    def __init__(self, config: BertConfig):
        nn.Linear.__init__(self, config.hidden_size, 2)

    def counts(self, batch):
        return {part: int(batch["input_ids"].shape[0]) for part, key in LABELS.items() if batch.get(key) is not None}

    def forward(self, enc, batch, picked):
        logits = F.linear(enc.pooler_output, self.weight, self.bias)  # [B, 2]
        out = Result(fields={"seq_relationship_logits": logits})
        for part, key in LABELS.items():
            if batch.get(key) is not None:
                y = batch[key].reshape(-1)
                out.losses[part] = F.cross_entropy(logits.float(), y)
                out.metrics[f"{part}_acc"] = accuracy(logits, y)
        return out

    def hf_config(self, fmt):
        # transformers sizes ALBERT's SOP head with num_labels
        return {"num_labels": 2, "id2label": None, "label2id": None} if fmt == "albert" else {}
