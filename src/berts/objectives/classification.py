"""Sequence classification and regression on the pooled [CLS]: dropout, then H -> num_labels.

Regression when ``problem_type == "regression"`` or ``num_labels == 1`` (MSE), classification
otherwise (cross-entropy, and the ``train_acc`` metric). Loss part "task", averaged over the rows.
The parameters sit on the objective (an nn.Linear), so our names stay ``classifier.weight/bias``.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from berts.config import BertConfig
from berts.model import Dropout
from berts.objectives.base import Objective, Result, accuracy, register


@register
class SequenceClassification(Objective, nn.Linear):
    name = "classification"
    parts = ("task",)
    metric_parts = {"train_acc": "task"}
    batch_keys = ("labels",)
    hf_names = {"": {"bert": "classifier.", "albert": "classifier."}}

    def __init__(self, config: BertConfig):
        nn.Linear.__init__(self, config.hidden_size, config.num_labels)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(p)
        self.regression = config.problem_type == "regression" or config.num_labels == 1

    def counts(self, batch):
        return {"task": int(batch["input_ids"].shape[0])} if batch.get("labels") is not None else {}

    def forward(self, enc, batch, picked):
        logits = F.linear(self.dropout(enc.pooler_output), self.weight, self.bias)  # [B, num_labels]
        out = Result(fields={"logits": logits})
        labels = batch.get("labels")
        if labels is not None:
            if self.regression:
                out.losses["task"] = F.mse_loss(logits.float().squeeze(-1), labels.float().reshape(-1))
            else:
                out.losses["task"] = F.cross_entropy(logits.float(), labels.reshape(-1))
                out.metrics["train_acc"] = accuracy(logits, labels.reshape(-1))
        return out
