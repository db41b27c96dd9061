"""What every distillation method shares: the frozen teacher of a saved directory, and a student made
of the teacher's embeddings and chosen layers (as ``scripts/extract_distilbert.py`` of DistilBERT)."""
from __future__ import annotations

import warnings
from pathlib import Path

from torch import nn

from berts.errors import UserError
from berts.hf import load
from berts.hf.kinds import model_kind, require_kind
from berts.model.encoder import BertModel
from berts.model.heads import ( BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, )
from berts.tasks.token_classification import BertForTokenClassification


def load_teacher(directory, *, need: str):
    """The teacher of ``directory``, frozen-ready, fast paths on. ``need``: ``mlm`` (an MLM head),
    ``classifier`` (a fine-tuned classification head) or ``encoder`` (anything). A teacher of the
    wrong kind is one line saying what it is and what to do."""

    path = Path(directory)
    if not path.is_dir():
        raise UserError(f"{directory}: no such teacher directory")
    if need == "classifier":  # config.json only, before the weights load (the checks below stay as a second line)
        if getattr(model_kind(path).cls, "__name__", "").endswith("ForQuestionAnswering"):
            raise UserError(f"{directory}: a question-answering teacher: distil it with --method qa-logits")
        require_kind(path, "classification", "task distillation (a teacher with the task's head)")
    if need == "mlm":
        kind = model_kind(path)
        if kind.cls is not None and "mlm" not in kind.heads:
            raise UserError(f"{directory}: the teacher is {kind.describe()} without an MLM head, which general "
                            "DistilBERT distillation needs (soft targets over the vocabulary): distil it "
                            "task-specifically instead (fine-tune it with `berts finetune`, then `berts distill "
                            "--train FILE`), or use --method tinybert for general distillation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        teacher = load(path)
    kind = type(teacher).__name__
    if need == "mlm" and not isinstance(teacher, (BertForMaskedLM, BertForPreTraining)):
        raise UserError(f"{directory}: the teacher is a {kind} without an MLM head, which general DistilBERT "
                        "distillation needs (soft targets over the vocabulary): distil it task-specifically "
                        "instead (fine-tune it with `berts finetune`, then `berts distill --train FILE`), or use "
                        "--method tinybert for general distillation")
    if need == "qa" and not kind.endswith("ForQuestionAnswering"):
        raise UserError(f"{directory}: the teacher is a {kind}; --method qa-logits distils a question-answering "
                        "model (`berts finetune --task qa`)")
    if need == "classifier" and kind.endswith("ForQuestionAnswering"):
        raise UserError(f"{directory}: a question-answering teacher: distil it with --method qa-logits")
    if need == "tagger":

        if not isinstance(teacher, BertForTokenClassification):
            raise UserError(f"{directory}: the teacher is a {kind}, not a token classifier")
    if need == "classifier" and not isinstance(teacher, BertForSequenceClassification):
        raise UserError(f"{directory}: the teacher is a {kind} with no task head (no classifier in its config): "
                        "task distillation needs a fine-tuned teacher; fine-tune it first with `berts finetune`")
    if need == "classifier" and teacher.is_regression:
        raise UserError(f"{directory}: a regression teacher; distillation here is for classification")
    if teacher.config.share_layers != "none":
        raise UserError(f"{directory}: a teacher with shared layers ({teacher.config.share_layers}) is not supported")
    teacher.eval()
    teacher.set_fast_path(unpad=True, pack=True)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def encoder_of(model) -> nn.Module:
    return model.bert if hasattr(model, "bert") else model


def _plain_key(model, key: str) -> str:
    """A state-dict key as "embeddings..." / "encoder.layers.N..." / "pooler..." for the encoder's
    weights, "head:NAME" for a task model's heads: comparable between a BertModel and task models."""

    if isinstance(model, BertModel):
        return key
    return key.removeprefix("bert.") if key.startswith("bert.") else "head:" + key


def student_from_teacher(teacher, layers, cls=None, **overrides):
    """A student of class ``cls`` (default: the teacher's) whose embeddings, chosen encoder layers
    (``layers``, 0-based teacher indices, in order), pooler and heads are copies of the teacher's:
    student layer j = teacher layer ``layers[j]``. Every student weight comes from the teacher
    (an error otherwise); teacher weights the student has no place for (a pair head) are left.
    ``overrides``: config changes that do not change shapes (dropout)."""
    cls = cls or type(teacher)
    layers = [int(i) for i in layers]
    n = teacher.config.num_hidden_layers
    if not layers or any(not 0 <= i < n for i in layers):
        raise UserError(f"student layers {','.join(map(str, layers))}: the teacher's layers are 0 to {n - 1}")
    if len(set(layers)) != len(layers):
        raise UserError(f"student layers {','.join(map(str, layers))}: a layer is listed twice")
    config = teacher.config.replace(num_hidden_layers=len(layers), **overrides)

    if cls is BertModel:  # a bare encoder has a pooler where the teacher's has one (an MLM model's has none)
        student = BertModel(config, add_pooling_layer=getattr(teacher, "pooler", None) is not None)
    else:
        student = cls(config)
    src = {_plain_key(teacher, k): v for k, v in teacher.state_dict().items()}
    state = {}
    for key in student.state_dict():
        k = _plain_key(student, key)
        if k.startswith("encoder.layers."):
            j, rest = k[len("encoder.layers."):].split(".", 1)
            k = f"encoder.layers.{layers[int(j)]}.{rest}"
        if k not in src:
            raise UserError(f"the student's weight {key} has no counterpart in the teacher "
                            f"({type(teacher).__name__} -> {cls.__name__})")
        state[key] = src[k].detach().clone()
    student.load_state_dict(state)
    return student


def parse_layers(text) -> list[int]:
    """``0,2,4`` (or a list) -> [0, 2, 4]; a one-line error otherwise."""
    if isinstance(text, (list, tuple)):
        return [int(i) for i in text]
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--student-layers {text}: comma-separated layer numbers, e.g. 0,2,4") from None
