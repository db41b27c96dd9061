"""Logit distillation for extractive QA, as DistilBERT's ``run_squad_w_distillation.py``: the
student's start and end distributions over the window's tokens learn the teacher's, softened at
temperature T (KL x T^2), plus the student's own span loss on the gold positions:

    loss = alpha_ce * T^2 * (KL(t_start || s_start) + KL(t_end || s_end)) / 2  +  alpha_mlm * span CE

Padding positions are left out of both distributions (logits set to -1e4 there). Task distillation
only: a fine-tuned BertForQuestionAnswering teacher, a QA file (berts.data.qa) for --train."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from berts.tasks.base import ENCODER_INPUTS, Task, model_inputs


class QALogitTask(Task):
    name = "qa-logits"
    loss_parts = ("ce", "span")
    metric_parts = {"agree": "ce"}

    def __init__(self, student, teacher, train_dataset, dev_dataset=None, *, temperature=2.0, alpha_ce=5.0,
                 alpha_span=2.0, evaluator=None, metric=None):
        self.student, self.teacher = student, teacher
        self.train_dataset, self.dev_dataset = train_dataset, dev_dataset
        self.temperature, self.alpha_ce, self.alpha_span = float(temperature), float(alpha_ce), float(alpha_span)
        self.evaluator, self.metric = evaluator, metric  # evaluator: the dev set's QATask

    @classmethod
    def from_config(cls, k, student, teacher, train_dataset, dev_dataset=None, *, mode, evaluator=None, metric=None):
        return cls(student, teacher, train_dataset, dev_dataset, temperature=k.temperature, alpha_ce=k.alpha_ce,
                   alpha_span=k.alpha_mlm, evaluator=evaluator, metric=metric)

    def modules(self):
        return {"model": self.student}

    def frozen_modules(self):
        return {"teacher": self.teacher}

    def counts(self, batch):
        n = int(batch["input_ids"].shape[0])
        return {"ce": n, "span": n}  # both are means over the windows

    def loss(self, modules, batch):
        x = {k: v for k, v in model_inputs(batch).items() if k in ENCODER_INPUTS}
        s = modules.model(**x, start_positions=batch["start_positions"], end_positions=batch["end_positions"])
        with torch.no_grad():
            t = self.teacher(**x)
        pad = x["attention_mask"] == 0  # [B, S]
        T = self.temperature
        ce = 0.0
        for sl, tl in ((s.start_logits, t.start_logits), (s.end_logits, t.end_logits)):
            sl, tl = sl.float().masked_fill(pad, -1e4), tl.float().masked_fill(pad, -1e4)  # [B, S]
            ce = ce + F.kl_div(F.log_softmax(sl / T, -1), F.softmax(tl / T, -1), reduction="batchmean") * T * T / 2
        agree = ((s.start_logits.detach().masked_fill(pad, -1e4).argmax(-1) == t.start_logits.masked_fill(pad, -1e4).argmax(-1))
                 & (s.end_logits.detach().masked_fill(pad, -1e4).argmax(-1) == t.end_logits.masked_fill(pad, -1e4).argmax(-1)))
        return ({"ce": self.alpha_ce * ce, "span": self.alpha_span * s.losses["task"]},
                {"agree": agree.float().mean()})

    def evaluate(self, engine):
        return self.evaluator.evaluate(engine) if self.evaluator is not None else None

    def describe(self) -> str:
        return (f"QA logit distillation (DistilBERT's SQuAD): {self.alpha_ce:g} x T^2 KL on start/end at T "
                f"{self.temperature:g} + {self.alpha_span:g} x the span loss")
