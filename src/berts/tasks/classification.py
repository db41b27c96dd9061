"""Sequence classification and regression: one sentence or a pair, a label or a score."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from berts.tasks.base import ModelTask, predict_logits
from berts.metrics import compute_metrics


class ClassificationTask(ModelTask):
    """Sentence or sentence-pair classification, or regression, on a ClassificationDataset."""

    name = "classification"

    def __init__(self, model, train_dataset, dev_dataset=None, *, regression: bool = False, num_labels: int = 2,
                 metric: str | None = None, eval_batch_size: int = 64, label_smoothing: float = 0.0,
                 class_weights=None, positive: int = 1, label_names=None):
        """``label_smoothing``, ``class_weights`` ([num_labels] floats): the classifier's training loss
        (see objectives/classification.py), for this run only, not saved with the model;
        ``positive``: the label id whose F1 is ``f1`` (2 labels); ``label_names``: for the start line."""
        self.model = model
        model.classifier.set_training_options(label_smoothing, class_weights)
        self.label_smoothing = float(label_smoothing)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.positive = positive
        self.label_names = list(label_names) if label_names is not None else None
        self.train_dataset = train_dataset
        self.dev_dataset = dev_dataset
        self.regression = regression
        self.num_labels = num_labels
        self.metric = metric or ("pearson" if regression else "accuracy")
        self.eval_batch_size = eval_batch_size
        self.name = "regression" if regression else "classification"

    def evaluate(self, engine):
        if self.dev_dataset is None:
            return None

        logits = predict_logits(self.model, self.dev_dataset, self.eval_batch_size, engine.device, engine.autocast)
        labels = self.dev_dataset.labels
        task = "regression" if self.regression else "classification"
        predictions = logits[:, 0] if self.regression else logits
        metrics = compute_metrics(task, predictions, labels, self.num_labels, positive=self.positive)
        t = torch.from_numpy(logits)
        y = torch.from_numpy(np.asarray(labels))
        # the plain loss (no smoothing, no class weights): comparable across runs and with `berts evaluate`
        metrics["loss"] = float(F.mse_loss(t[:, 0], y.float()) if self.regression else F.cross_entropy(t, y))
        return metrics

    def describe(self) -> str:
        if self.regression:
            return "regression (MSE)"
        names = self.label_names or [str(i) for i in range(self.num_labels)]
        weights = ("none" if self.class_weights is None else
                   ", ".join(f"{n}={w:g}" for n, w in zip(names, self.class_weights)))
        f1 = f"f1 of '{names[self.positive]}'" if self.num_labels == 2 else "f1 = f1_macro"
        return f"label smoothing {self.label_smoothing:g}; class weights {weights}; {f1}"
