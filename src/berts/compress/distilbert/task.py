"""DistilBERT (Sanh et al. 2019; huggingface/transformers examples/research_projects/distillation)
as a Task for the one engine: the student trains, the teacher is frozen (no gradients, no
optimizer state, not checkpointed, eval mode with its fast paths on). The teacher and the student
are loaded or made by berts.compress.students; the run ``berts distill`` is berts.runs.distill.

Two modes, chosen by the data:

* general (``data.shards``): the student is a BertForMaskedLM; loss parts ``ce`` (soft targets
  at the masked positions, KL at T x T^2, ``losses.soft_ce``), ``mlm`` (the student's MLM) and
  ``cos`` (1 - cos of the last hidden states, real tokens). The teacher needs an MLM head.
  The soft targets are taken at the masked positions only (the reference's
  ``--restrict_ce_to_mask``): the sparse MLM head computes logits there only.
* task-specific (``data.train``, a labelled file): the student is a BertForSequenceClassification;
  parts ``ce`` (the teacher's class distribution, KL at T x T^2), ``task`` (the hard labels) and
  ``cos``. The teacher must be a fine-tuned classifier.

Each part is its mean times its weight (``distill.alpha_ce``, ``alpha_mlm``, ``alpha_cos``), so
the logged values are weighted.
"""
from __future__ import annotations

import torch

from berts.compress import losses as L
from berts.errors import UserError
from berts.tasks.base import ENCODER_INPUTS, Task, model_inputs


# ----------------------------------------------------------------------------- the task
class DistilBertTask(Task):
    name = "distilbert"

    def __init__(self, student, teacher, train_dataset, dev_dataset=None, *, mode: str,
                 temperature: float = 2.0, alpha_ce: float = 5.0, alpha_mlm: float = 2.0, alpha_cos: float = 1.0,
                 evaluator=None, metric: str | None = None):
        """``mode``: ``general`` (MLM batches; student and teacher have MLM heads) or ``task``
        (classification batches; both are classifiers). ``evaluator``: a ClassificationTask on
        the dev set (task mode), whose evaluate() this task's is."""
        if mode not in ("general", "task"):
            raise ValueError(f"mode must be general or task, got {mode!r}")
        self.student, self.teacher, self.mode = student, teacher, mode
        self.train_dataset, self.dev_dataset = train_dataset, dev_dataset
        self.temperature, self.alpha_ce, self.alpha_mlm, self.alpha_cos = (
            float(temperature), float(alpha_ce), float(alpha_mlm), float(alpha_cos))
        self.own = "mlm" if mode == "general" else "task"
        self.loss_parts = ("ce", self.own, "cos")
        self.metric_parts = {"mlm_acc": "mlm"} if mode == "general" else {"train_acc": "task"}
        self.evaluator, self.metric = evaluator, metric
        if self.alpha_cos and student.config.hidden_size != teacher.config.hidden_size:
            raise UserError(f"the cosine loss compares hidden states: the student's width "
                            f"{student.config.hidden_size} is not the teacher's {teacher.config.hidden_size} "
                            "(give distill.alpha_cos=0, or use --method tinybert, which projects them)")

    @classmethod
    def from_config(cls, k, student, teacher, train_dataset, dev_dataset=None, *, mode: str, evaluator=None,
                    metric=None):
        """The task of `berts distill --method distilbert` (``k``: the config's distill section,
        berts.compress.registry)."""
        return cls(student, teacher, train_dataset, dev_dataset, mode=mode, temperature=k.temperature,
                   alpha_ce=k.alpha_ce, alpha_mlm=k.alpha_mlm, alpha_cos=k.alpha_cos, evaluator=evaluator,
                   metric=metric)

    def modules(self):
        return {"model": self.student}

    def frozen_modules(self):
        return {"teacher": self.teacher}

    def counts(self, batch):
        real = int(batch["attention_mask"].sum())
        if self.mode == "general":
            n = int(batch["mlm_labels"].numel())
            return {"ce": n, "mlm": n, "cos": real}
        n = int(batch["input_ids"].shape[0])
        return {"ce": n, "task": n, "cos": real}

    def loss(self, modules, batch):
        x = {k: v for k, v in model_inputs(batch).items() if k in ENCODER_INPUTS}
        if self.mode == "general":
            targets = {k: batch[k] for k in ("mlm_positions", "mlm_labels")}
            s = modules.model(**x, **targets, output_hidden_states=True)
            with torch.no_grad():
                t = self.teacher(**x, **targets, output_hidden_states=True)
            s_logits, t_logits = s.prediction_logits, t.prediction_logits  # [N, vocab], masked positions
        elif not (self.alpha_ce or self.alpha_cos):  # the hard labels alone (a baseline): no teacher to run
            s = modules.model(**x, labels=batch["labels"])
            return {"ce": s.losses["task"].detach() * 0.0, "task": self.alpha_mlm * s.losses["task"]}, dict(s.metrics or {})
        else:
            s = modules.model(**x, labels=batch["labels"], output_hidden_states=True)
            with torch.no_grad():
                t = self.teacher(**x, output_hidden_states=True)
            s_logits, t_logits = s.logits, t.logits  # [B, labels]
        real = x["attention_mask"].bool()
        losses = {"ce": self.alpha_ce * L.soft_ce(s_logits, t_logits, self.temperature),
                  self.own: self.alpha_mlm * s.losses[self.own]}
        if self.alpha_cos:
            losses["cos"] = self.alpha_cos * L.cosine(s.last_hidden_state[real], t.last_hidden_state[real])
        return losses, dict(s.metrics or {})

    def evaluate(self, engine):
        return self.evaluator.evaluate(engine) if self.evaluator is not None else None

    def describe(self) -> str:
        own = "MLM" if self.mode == "general" else "hard labels"
        return (f"DistilBERT {self.mode}: soft targets at T={self.temperature:g} (x T^2) x {self.alpha_ce:g}, "
                f"{own} x {self.alpha_mlm:g}, cosine x {self.alpha_cos:g}")
