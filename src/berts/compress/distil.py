"""DistilBERT (Sanh et al. 2019; huggingface/transformers examples/research_projects/distillation)
as a Task for the one engine: the student trains, the teacher is frozen (no gradients, no
optimizer state, not checkpointed, eval mode with its fast paths on). Also what both methods
share: loading the teacher, a student made of the teacher's embeddings and chosen layers (as
``scripts/extract_distilbert.py``), and the run ``berts distill`` builds (``distillation_run``).

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

import warnings
from pathlib import Path

import torch
from torch import nn

from berts.compress import losses as L
from berts.compress.tinybert import TinyBertTask
from berts.config.validate import check_distill_config
from berts.errors import UserError
from berts.tasks.base import ENCODER_INPUTS, Task, model_inputs


# ----------------------------------------------------------------------------- teacher and student
def load_teacher(directory, *, need: str):
    """The teacher of ``directory``, frozen-ready, fast paths on. ``need``: ``mlm`` (an MLM head),
    ``classifier`` (a fine-tuned classification head) or ``encoder`` (anything). A teacher of the
    wrong kind is one line saying what it is and what to do."""
    from berts.model.heads import BertForMaskedLM, BertForPreTraining, BertForSequenceClassification
    from berts.hf import load

    path = Path(directory)
    if not path.is_dir():
        raise UserError(f"{directory}: no such teacher directory")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        teacher = load(path)
    kind = type(teacher).__name__
    if need == "mlm" and not isinstance(teacher, (BertForMaskedLM, BertForPreTraining)):
        raise UserError(f"{directory}: the teacher is a {kind} without an MLM head, which general DistilBERT "
                        "distillation needs (soft targets over the vocabulary): distil it task-specifically "
                        "instead (fine-tune it with `berts finetune`, then `berts distill --train FILE`), or use "
                        "--method tinybert for general distillation")
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
    from berts.model.encoder import BertModel

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
    from berts.model.encoder import BertModel

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

    def evaluate(self, trainer):
        return self.evaluator.evaluate(trainer) if self.evaluator is not None else None

    def describe(self) -> str:
        own = "MLM" if self.mode == "general" else "hard labels"
        return (f"DistilBERT {self.mode}: soft targets at T={self.temperature:g} (x T^2) x {self.alpha_ce:g}, "
                f"{own} x {self.alpha_mlm:g}, cosine x {self.alpha_cos:g}")


# ----------------------------------------------------------------------------- the run
def distillation_run(cfg, resume=None, dist=None, *, resume_requested=None, overwrite: bool = False):
    """The Trainer of a distillation run (``berts distill``): the teacher of ``distill.teacher``
    (frozen), the student (``distill.student_layers``: the teacher's layers; ``model.init_from``:
    a student directory, e.g. a general-distilled one; ``model.preset`` / ``model.config``: new
    random weights), general distillation on ``data.shards`` or task distillation on
    ``data.train`` (+ ``data.dev``: evaluation, best/), with ``distill.method``."""
    from berts.model.heads import BertForMaskedLM, BertForSequenceClassification
    from berts.model.encoder import BertModel
    from berts.tokenizer.wordpiece import load_tokenizer
    from berts.train import distributed
    from berts.train.checkpoint import seed_all
    from berts.runs.common import claim_output
    from berts.train.trainer import Trainer

    k, d, m = cfg.distill, cfg.data, cfg.model
    check_distill_config(cfg)
    method, general = k.method, bool(d.shards)
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "distill", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[k.teacher, m.init_from, m.config, d.shards, d.train, d.dev], dist=dist,
                 no_checkpoint=resume is None)
    need = ("mlm" if method == "distilbert" else "encoder") if general else "classifier"
    teacher = load_teacher(k.teacher, need=need)
    tokenizer = load_tokenizer(m.tokenizer or k.teacher)
    if tokenizer.vocab_size != teacher.config.vocab_size:
        raise UserError(f"{m.tokenizer or k.teacher}: tokenizer of {tokenizer.vocab_size} tokens, the teacher's "
                        f"vocabulary has {teacher.config.vocab_size}")

    evaluator, dev, label_names = None, None, None
    if general:
        from berts.data.dataset import PretrainingDataset

        if not Path(d.shards).is_dir():
            raise UserError(f"{d.shards}: no such shards directory (make one with `berts prepare`)")
        train = PretrainingDataset(d.shards, masking=d.masking, mask_prob=d.mask_prob,
                                   max_predictions_per_seq=d.max_predictions_per_seq, seed=cfg.train.seed,
                                   pad_to_multiple_of=d.pad_to_multiple_of)
        if int(train.meta["vocab_size"]) != teacher.config.vocab_size:
            raise UserError(f"{d.shards}: prepared with a vocabulary of {train.meta['vocab_size']} tokens, the "
                            f"teacher's has {teacher.config.vocab_size} (prepare with the teacher's tokenizer)")
        cls = BertForMaskedLM if method == "distilbert" else BertModel
        if method == "tinybert":  # the encoder alone: an MLM head would compute [B, S, vocab] logits for nothing
            teacher = encoder_of(teacher)
    else:
        train, dev, evaluator, label_names = classification_data(cfg, teacher, tokenizer)
        cls = BertForSequenceClassification

    seed_all(cfg.train.seed)  # the same student (and projection) on every rank and every run
    student, note = build_student(cfg, teacher, cls, general, data=train)
    if evaluator is not None:
        evaluator.model = student
    if not general:  # how `berts evaluate` / `berts predict` read a table for the student
        from berts.data.tables import SETTINGS_KEY

        student.config.extra[SETTINGS_KEY] = {
            "task": "classification", "text_column": d.text_column, "pair_column": d.pair_column,
            "label_column": d.label_column, "format": d.format, "header": d.header, "max_length": train.max_length}
    if method == "distilbert":
        task = DistilBertTask(student, teacher, train, dev, mode="general" if general else "task",
                              temperature=2.0 if k.temperature is None else k.temperature, alpha_ce=k.alpha_ce,
                              alpha_mlm=k.alpha_mlm, alpha_cos=k.alpha_cos, evaluator=evaluator,
                              metric=cfg.train.metric or "accuracy" if evaluator is not None else None)
    else:
        stage = k.stage if k.stage != "auto" else ("intermediate" if general else "all")
        task = TinyBertTask(student, teacher, train, dev, mode="general" if general else "task", stage=stage,
                            temperature=1.0 if k.temperature is None else k.temperature,
                            alphas=dict(emb=k.alpha_emb, att=k.alpha_att, hidden=k.alpha_hidden, pred=k.alpha_pred),
                            evaluator=evaluator,
                            metric=cfg.train.metric or "accuracy" if evaluator is not None else None)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="distill")
    if resume is None:
        trainer.print(f"teacher {k.teacher} ({type(teacher).__name__}, {teacher.config.num_hidden_layers} layers, "
                      f"hidden {teacher.config.hidden_size}, frozen); student {note} "
                      f"({student.config.num_hidden_layers} layers, hidden {student.config.hidden_size}, "
                      f"{student.num_parameters():,} parameters)")
    if resume_requested == "auto" and resume is None:
        trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
    return trainer


PRUNE_EXAMPLES = 1024  # --student-init prune measures activations on the first this many training examples
PRUNE_BATCH = 64


def build_student(cfg, teacher, cls, general: bool, data=None):
    """(student, what it is) from the config's one student source; ``data`` (the training dataset)
    gives --student-init prune its batches."""
    from berts.model.config import preset
    from berts.hf import load_config
    from berts.runs.finetune import load_for_finetuning

    k, m = cfg.distill, cfg.model
    labels = {} if general else {key: getattr(teacher.config, key) for key in ("num_labels", "id2label", "label2id")}
    if k.student_layers:
        layers = parse_layers(k.student_layers)
        student = student_from_teacher(encoder_of(teacher) if cls.__name__ == "BertModel" else teacher, layers, cls,
                                       **m.overrides)
        return student, f"from the teacher's embeddings and layers {','.join(map(str, layers))}"
    if m.init_from:
        if cls.__name__ == "BertForSequenceClassification":
            student = load_for_finetuning(m.init_from, {**labels, **m.overrides}, m.ignore_mismatched_sizes)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                student = cls.from_pretrained(m.init_from, **m.overrides)
        if student.config.vocab_size != teacher.config.vocab_size:
            raise UserError(f"{m.init_from}: a vocabulary of {student.config.vocab_size} tokens, the teacher's "
                            f"has {teacher.config.vocab_size}")
        return student, f"from {m.init_from}"
    base = load_config(m.config) if m.config else preset(m.preset)
    config = base.replace(vocab_size=teacher.config.vocab_size,
                          max_position_embeddings=teacher.config.max_position_embeddings,
                          type_vocab_size=teacher.config.type_vocab_size, **labels, **m.overrides)
    if k.student_init == "prune":
        from berts.compress.losses import uniform_layer_map
        from berts.compress.prune import check_prunable, measure_importance, prune_model

        if cls.__name__ not in ("BertModel", "BertForSequenceClassification"):
            raise UserError("--student-init prune is for TinyBERT's general distillation or task distillation "
                            "(a classifier teacher); DistilBERT students start from --student-layers")
        source = encoder_of(teacher) if cls.__name__ == "BertModel" else teacher
        check_prunable(source.config, config)
        n = min(len(data), PRUNE_EXAMPLES)
        batches = (data[(0, 0, list(range(i, min(n, i + PRUNE_BATCH))))] for i in range(0, n, PRUNE_BATCH))
        layers = [j - 1 for j in uniform_layer_map(config.num_hidden_layers, source.config.num_hidden_layers)[1:]]
        student = prune_model(source, config, measure_importance(source, batches), layers)
        return student, (f"pruned from the teacher (layers {','.join(map(str, layers))}, activations of the first "
                         f"{n} training examples)")
    return cls(config), f"random ({m.config or 'preset ' + m.preset}, seed {cfg.train.seed})"


def classification_data(cfg, teacher, tokenizer):
    """(train, dev, evaluator, label names) of task distillation: the tables read as `berts
    finetune` reads them, labelled with the teacher's labels (a label it does not know is an error)."""
    from berts.data.classification import ClassificationDataset
    from berts.data.labels import LabelMap
    from berts.data.tables import check_max_length, read_table
    from berts.data.labels import drop_unknown_labels
    from berts.tasks.classification import ClassificationTask

    d = cfg.data
    label_map = LabelMap.from_config(teacher.config)
    max_length = check_max_length(d.max_length, teacher.config.max_position_embeddings)
    examples, _ = read_table(d.train, d)
    unknown = sorted({str(e.label) for e in examples if str(e.label) not in label_map})
    if unknown:
        raise UserError(f"{d.train}: label {unknown[0]!r} is not one of the teacher's "
                        f"({', '.join(label_map.names[:10])})")
    train = ClassificationDataset(examples, tokenizer, label_map=label_map, max_length=max_length)
    dev = evaluator = None
    if d.dev:
        dev_examples, report = read_table(d.dev, d)
        dev_examples = drop_unknown_labels(dev_examples, label_map, report, d.skip_bad_rows)
        dev = ClassificationDataset(dev_examples, tokenizer, label_map=label_map, max_length=max_length)
        evaluator = ClassificationTask(teacher, None, dev, num_labels=len(label_map),
                                       eval_batch_size=cfg.train.eval_batch_size, metric=cfg.train.metric,
                                       label_names=label_map.names)
    return train, dev, evaluator, label_map.names
