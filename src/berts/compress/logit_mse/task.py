"""Logit regression (Ba & Caruana 2014, "Do Deep Nets Really Need to be Deep?"): the student learns
the teacher's logits themselves by squared error, not its softened distribution, so no temperature
to tune. Task distillation only (a fine-tuned classifier teacher, a labelled table whose labels are
not read). The smallest method here: docs/extending/compression.md walks through it."""
from __future__ import annotations

import torch

from berts.tasks.base import ENCODER_INPUTS, Task, model_inputs


class LogitMSETask(Task):
    name = "logit-mse"
    loss_parts = ("mse",)  # the engine logs and sums these parts, each weighted by its counts()
    metric_parts = {"agree": "mse"}  # a metric, averaged over the items of the part it names

    def __init__(self, student, teacher, train_dataset, dev_dataset=None, *, evaluator=None, metric=None):
        self.student, self.teacher = student, teacher
        self.train_dataset, self.dev_dataset = train_dataset, dev_dataset
        self.evaluator, self.metric = evaluator, metric  # evaluator: the dev set's ClassificationTask

    @classmethod
    def from_config(cls, k, student, teacher, train_dataset, dev_dataset=None, *, mode, evaluator=None,
                    metric=None):
        # what `berts distill` calls (berts.compress.registry); k: the distill section (no key of ours)
        return cls(student, teacher, train_dataset, dev_dataset, evaluator=evaluator, metric=metric)

    def modules(self):
        return {"model": self.student}  # trained; saved as final/ and best/

    def frozen_modules(self):
        return {"teacher": self.teacher}  # no gradient, no optimizer state, not saved

    @property
    def per_token(self) -> bool:
        # a token classifier (NER) has logits per position [B, S, C]: the same loss per real token
        return bool(getattr(self.student, "per_token", False))

    def counts(self, batch):
        if self.per_token:
            return {"mse": int(batch["attention_mask"].sum())}  # a mean over the real tokens
        return {"mse": int(batch["input_ids"].shape[0])}  # the loss below is a mean over the rows

    def loss(self, modules, batch):
        x = {k: v for k, v in model_inputs(batch).items() if k in ENCODER_INPUTS}
        s = modules.model(**x).logits  # [B, C] (a token classifier: [B, S, C])
        with torch.no_grad():
            t = self.teacher(**x).logits  # [B, C] ([B, S, C])
        if self.per_token:  # the real tokens only ([CLS] and [SEP] included, padding not): [N, C]
            real = x["attention_mask"].bool()
            s, t = s[real], t[real]
        mse = 0.5 * (s.float() - t.float()).pow(2).sum(-1).mean()  # the paper's 1/2 ||g(x) - z||^2, mean over rows
        return {"mse": mse}, {"agree": (s.detach().argmax(-1) == t.argmax(-1)).float().mean()}

    def evaluate(self, engine):
        return self.evaluator.evaluate(engine) if self.evaluator is not None else None

    def describe(self) -> str:
        return "logit regression (Ba & Caruana): 1/2 ||student logits - teacher logits||^2, mean over rows"
