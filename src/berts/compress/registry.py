"""The distillation methods `berts distill --method` offers, by name: one entry per method folder.

This module imports no torch (the parser of `berts distill` reads it, and `berts --help` must stay
fast, tests/test_cli_fast.py): an entry names its Task class by a dotted path, imported when a run
starts. The run (berts.runs.distill) loads the teacher and makes the student as the entry says, then
calls ``Task.from_config(distill, student, teacher, train, dev, mode=..., evaluator=..., metric=...)``
with ``distill`` the config's ``distill`` section, its unset keys filled from ``defaults``.

A new method: a folder (its Task, with ``from_config``, and its losses) and one ``register(Method(...))``
here (docs/extending/compression.md walks through one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module

from berts.errors import UserError


@dataclass(frozen=True)
class Method:
    name: str  # --method NAME, distill.method
    task: str  # "package.module:Class": its Task, with a classmethod from_config (see above)
    help: str  # one line: what it trains on what (berts distill --help)
    data: tuple[str, ...] = ("general", "task")  # general: --data SHARDS (MLM batches); task: --train FILE
    # general distillation's teacher and student: "mlm" (both BertForMaskedLM; the teacher needs an MLM
    # head) or "encoder" (both bare encoders: any teacher, its heads dropped). Task distillation is always
    # a fine-tuned classifier teacher and a classifier student.
    general: str = "mlm"
    defaults: dict = field(default_factory=dict)  # distill.KEY -> the value a null there takes
    keys: tuple[str, ...] = ()  # the distill.* keys only this method reads (others' are refused when set)
    weights: tuple[str, ...] = ()  # its loss weights (distill.alpha_*): all zero is a loss of 0, refused
    tagging: bool = False  # task distillation of a token-classification teacher too (a loss per token)

    def task_class(self):
        module, _, name = self.task.partition(":")
        return getattr(import_module(module), name)


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.general not in ("mlm", "encoder"):
        raise ValueError(f"method {method.name}: general must be mlm or encoder, got {method.general!r}")
    if not method.data or set(method.data) - {"general", "task"}:
        raise ValueError(f"method {method.name}: data must be general and/or task, got {method.data!r}")
    METHODS[method.name] = method
    return method


def get(name: str) -> Method:
    """The method called ``name``; a one-line error naming the known ones (and the nearest) otherwise."""
    if name in METHODS:
        return METHODS[name]
    import difflib

    near = difflib.get_close_matches(str(name), list(METHODS), n=1)
    raise UserError(f"distill.method {name!r} is not a distillation method (one of {', '.join(METHODS)})"
                    + (f"; did you mean {near[0]!r}?" if near else ""))


register(Method(
    name="distilbert", task="berts.compress.distilbert.task:DistilBertTask",
    help="DistilBERT: soft targets at T (x T^2), the student's own loss (MLM or hard labels), cosine of "
         "the last hidden states",
    general="mlm", defaults={"temperature": 2.0}, weights=("alpha_ce", "alpha_mlm", "alpha_cos")))
register(Method(
    name="tinybert", task="berts.compress.tinybert.task:TinyBertTask",
    help="TinyBERT: embedding, attention-score and hidden-state MSE on a uniform layer map (+ the prediction "
         "layer's soft cross-entropy with --train)",
    general="encoder", defaults={"temperature": 1.0}, keys=("stage",),
    weights=("alpha_emb", "alpha_att", "alpha_hidden", "alpha_pred")))
register(Method(
    name="logit-mse", task="berts.compress.logit_mse.task:LogitMSETask",
    help="Ba & Caruana: the student regresses the teacher's logits (mean squared error), task "
         "distillation only (a classifier or a token-classification teacher: then per real token)",
    data=("task",), tagging=True))
register(Method(
    name="qa-logits", task="berts.compress.qa_logits.task:QALogitTask",
    help="extractive QA (a --task qa teacher): DistilBERT's SQuAD distillation, KL on the start/end "
         "distributions at T (x T^2, --alpha-ce) + the student's span loss (--alpha-mlm)",
    data=("task",), defaults={"temperature": 2.0}))
register(Method(
    name="embedding", task="berts.compress.embedding.task:EmbeddingDistillTask",
    help="sentence embeddings: the student's pooled embedding regresses the teacher's (MSE, the teacher's "
         "pooling); saves a sentence-transformers directory; general distillation (--data SHARDS)",
    data=("general",), general="encoder"))
