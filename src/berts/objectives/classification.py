"""Sequence classification and regression on the pooled [CLS]: dropout, then H -> num_labels.

Regression when ``problem_type == "regression"`` or ``num_labels == 1`` (MSE); multi-label when
``problem_type == "multi_label_classification"`` (labels [B, num_labels] of 0/1, binary
cross-entropy with logits averaged over every (row, label), as transformers computes it);
classification otherwise (cross-entropy, and the ``train_acc`` metric). Loss part "task", averaged over the rows.
The parameters sit on the objective (an nn.Linear), so our names stay ``classifier.weight/bias``.

Two training options, set by the task (``ClassificationTask``) and never saved with the model
(a served model has neither): ``label_smoothing`` e (torch's: the target is (1 - e) one-hot + e/C)
and ``class_weights`` [C]: each row's loss times the weight of its true class, then the mean over
the rows (Keras' ``class_weight``; not torch's ``weight=``, which divides by the weights' sum:
a mean over rows keeps the engine's weighting of micro-batches and ranks by row counts exact).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from berts.model.config import BertConfig
from berts.model.encoder import Dropout
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
        self.multi_label = config.problem_type == "multi_label_classification" and not self.regression
        self.label_smoothing = 0.0
        # not persistent: follows .to(device) and DDP's buffer broadcast, never in a state dict / directory
        self.register_buffer("class_weights", None, persistent=False)

    def set_training_options(self, label_smoothing: float = 0.0, class_weights=None) -> None:
        """The loss options of a training run (see the module docstring); 0 and None: plain cross-entropy."""
        if self.regression and (label_smoothing or class_weights is not None):
            raise ValueError("label smoothing and class weights are for classification, not regression")
        self.label_smoothing = float(label_smoothing)
        self.class_weights = (None if class_weights is None else
                              torch.as_tensor(class_weights, dtype=torch.float32, device=self.weight.device))

    def counts(self, batch):
        return {"task": int(batch["input_ids"].shape[0])} if batch.get("labels") is not None else {}

    def forward(self, enc, batch, picked):
        logits = F.linear(self.dropout(enc.pooler_output), self.weight, self.bias)  # [B, num_labels]
        out = Result(fields={"logits": logits})
        labels = batch.get("labels")
        if labels is not None:
            if self.regression:
                out.losses["task"] = F.mse_loss(logits.float().squeeze(-1), labels.float().reshape(-1))
            elif self.multi_label:  # [B, L] targets; the mean over B*L: each row weighs the same
                out.losses["task"] = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
            else:
                y = labels.reshape(-1)
                if self.class_weights is None and not self.label_smoothing:
                    out.losses["task"] = F.cross_entropy(logits.float(), y)
                else:
                    rows = F.cross_entropy(logits.float(), y, reduction="none", label_smoothing=self.label_smoothing)
                    if self.class_weights is not None:
                        rows = rows * self.class_weights[y]  # [B]: each row x its true class' weight
                    out.losses["task"] = rows.mean()
                out.metrics["train_acc"] = accuracy(logits, labels.reshape(-1))
        return out
