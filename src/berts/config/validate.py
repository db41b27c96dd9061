"""Every check of a run's configuration, in one place: the values make sense together
(``validate``, run when a config is loaded) and a run has what it needs (``check_run``, before it
starts: data, a model, a teacher). Messages are one line naming the key, as the loader's are.

    validate(cfg)      # berts.config.loader.load_config calls it
    check_run(cfg)     # the commands and berts.runs call it; by cfg.kind (pretrain, finetune, distill)
"""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

from berts.errors import UserError



# ----------------------------------------------------------------------------- durations
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | float) -> float:
    """``90s``, ``15m``, ``1.5h``, ``1h30m``, ``2d`` -> seconds."""
    s = str(text).strip().lower()
    parts = _DURATION.findall(s)
    if not parts or _DURATION.sub("", s).strip():
        raise UserError(f"budget {text!r}: give a duration with a unit, such as 90s, 15m, 2h or 1h30m")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UserError(f"budget {text!r} must be positive")
    return seconds


# ----------------------------------------------------------------------------- values together
def validate(cfg) -> None:
    """Checks across keys: the values make sense together."""
    def bad(msg):
        raise UserError(f"invalid config: {msg}")

    t, o, s = cfg.train, cfg.optim, cfg.schedule
    for name in ("batch_size", "grad_accum", "eval_batch_size", "save_every"):
        if getattr(t, name) < 1:
            bad(f"train.{name} must be at least 1, got {getattr(t, name)}")
    if t.keep_last < 0:
        bad(f"train.keep_last must be 0 (no resume checkpoints) or more, got {t.keep_last}")
    if t.batch_size % t.grad_accum:
        bad(f"train.batch_size {t.batch_size} is not a multiple of train.grad_accum {t.grad_accum}")
    if t.max_steps is not None and t.max_steps < 1:
        bad(f"train.max_steps must be at least 1, got {t.max_steps}")
    if t.epochs is not None and t.epochs <= 0:
        bad(f"train.epochs must be positive, got {t.epochs}")
    if t.budget is not None:
        parse_duration(t.budget)
    if t.budget is None and t.max_steps is None and t.epochs is None:
        bad("set one of train.max_steps, train.epochs or train.budget")
    if t.eval_every is not None and t.eval_every < 1:
        bad(f"train.eval_every must be at least 1, got {t.eval_every}")
    if t.patience is not None and t.patience < 1:
        bad(f"train.patience must be at least 1, got {t.patience}")
    if o.lr is not None and o.lr <= 0:
        bad(f"optim.lr must be positive, got {o.lr}")
    if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
        bad(f"optim.betas must be two numbers in [0, 1), got {o.betas}")
    if o.eps <= 0 or o.weight_decay < 0:
        bad("optim.eps must be positive and optim.weight_decay not negative")
    if o.grad_clip is not None and o.grad_clip <= 0:
        bad(f"optim.grad_clip must be positive or null, got {o.grad_clip}")
    if s.warmup < 0 or (s.warmup >= 1 and not float(s.warmup).is_integer()):
        bad(f"schedule.warmup must be a fraction in [0, 1) or a whole number of steps, got {s.warmup}")
    if s.warmup >= 1 and t.max_steps is None and t.epochs is None:
        bad("schedule.warmup must be a fraction of the run (< 1) with train.budget: steps are not known in advance")
    bw = getattr(t, "batch_warmup", 0.0)
    if bw < 0 or (bw >= 1 and not float(bw).is_integer()):
        bad(f"train.batch_warmup must be a fraction in [0, 1) or a whole number of steps, got {bw}")
    if bw > 0 and t.grad_accum < 2:
        bad("train.batch_warmup grows the micro-batches of a step from 1 to train.grad_accum: set train.grad_accum "
            "above 1 (train.batch_size / train.grad_accum is the first steps' batch)")
    if bw >= 1 and t.max_steps is None and t.epochs is None:
        bad("train.batch_warmup must be a fraction of the run (< 1) with train.budget: steps are not known in advance")
    if not 0 <= s.min_lr <= 1:
        bad(f"schedule.min_lr is a fraction of the peak in [0, 1], got {s.min_lr}")
    if not 0 < s.decay <= 1:
        bad(f"schedule.decay is a fraction of the run in (0, 1], got {s.decay}")
    if cfg.log.every < 1:
        bad(f"log.every must be at least 1, got {cfg.log.every}")
    if cfg.impl.threads is not None and cfg.impl.threads < 1:
        bad(f"impl.threads must be at least 1, got {cfg.impl.threads}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", cfg.impl.device):
        bad(f"impl.device must be auto, cpu, cuda or cuda:N, got {cfg.impl.device!r}")
    if cfg.data.num_workers < 0:
        bad("data.num_workers must not be negative")
    if getattr(cfg.data, "bucket_size", 0) < 0:
        bad(f"data.bucket_size must not be negative (0 = off), got {cfg.data.bucket_size}")
    if hasattr(t, "label_smoothing"):  # FinetuneTrain
        if not 0 <= t.label_smoothing < 1:
            bad(f"train.label_smoothing must be in [0, 1), got {t.label_smoothing}")
        if t.class_weights is not None:
            parse_class_weights(t.class_weights)  # the form; the labels are checked against the data
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        p = cfg.model.overrides.get(key)
        if p is not None and not 0 <= p < 1:
            bad(f"model.{key} must be in [0, 1), got {p}")
    if cfg.kind == "pretrain":  # the objectives' list and combination (the shards' part: at run time)
        from berts.objectives.registry import resolve_objectives

        resolve_objectives(cfg)
    if hasattr(cfg, "distill"):  # the methods are a registry (torch-free), not a Literal
        from berts.compress.registry import METHODS

        if cfg.distill.method not in METHODS:
            bad(f"distill.method must be one of {', '.join(METHODS)}, got {cfg.distill.method!r}")
    if hasattr(cfg.data, "task"):  # the fine-tuning tasks are a registry too
        from berts.tasks.registry import get as task_named

        try:
            task_named(cfg.data.task)
            if hasattr(cfg, "task"):
                from berts.tasks.registry import check_options

                check_options(cfg.data.task, cfg.task.overrides)
        except UserError as exc:
            bad(str(exc))


def parse_class_weights(value) -> dict[str, float] | str:
    """train.class_weights: ``balanced``, a mapping, or ``"label=w,label=w"`` -> "balanced" or {label: w}."""
    if isinstance(value, str) and value.strip().lower() == "balanced":
        return "balanced"
    if isinstance(value, str):
        pairs = {}
        for item in filter(None, (x.strip() for x in value.split(","))):
            label, eq, w = item.rpartition("=")
            if not eq or not label:
                raise UserError(f"train.class_weights {value!r}: give balanced or label=weight,label=weight")
            pairs[label.strip()] = w
        value = pairs
    out = {}
    for label, w in dict(value).items():
        try:
            w = float(w)
        except (TypeError, ValueError):
            w = math.nan
        if not (math.isfinite(w) and w > 0):
            raise UserError(f"train.class_weights: the weight of label {label!r} must be a positive number, got {w}")
        out[str(label)] = w
    if not out:
        raise UserError("train.class_weights is empty: give balanced or label=weight,label=weight")
    return out


# ----------------------------------------------------------------------------- before a run
def check_run(cfg) -> None:
    """What a run needs besides well-formed values: by the config's kind (see config/schema.py)."""
    if cfg.train.seed is not None and cfg.train.seed < 0:  # numpy's generators take none (a YAML's seed: -1)
        raise UserError(f"train.seed (--seed): an integer >= 0 expected, got {cfg.train.seed}")
    {"pretrain": check_pretrain_config, "finetune": check_finetune_config,
     "distill": check_distill_config}[cfg.kind](cfg)


def check_pretrain_config(cfg) -> None:
    if not cfg.data.shards:
        raise UserError("no training data: set data.shards (or --data DIR), a directory from `berts prepare`")


def check_finetune_config(cfg) -> None:
    d, m, t = cfg.data, cfg.model, cfg.train
    scratch = m.preset or m.config
    if t.early_exit:  # FastBERT's exits (compress/early_exit/exits.py): on a fine-tuned classifier, from unlabelled text
        if d.task not in ("classification", "regression"):
            raise UserError(f"--early-exit trains FastBERT's exits on a sequence classifier (--task classification "
                            f"or regression), not on a --task {d.task} model")
        if not m.init_from:
            raise UserError("--early-exit trains the exits of a fine-tuned classifier: give --model DIR "
                            "(model.init_from)")
        if scratch:
            raise UserError("--early-exit starts from a fine-tuned classifier (--model DIR), not --from-scratch")
        if not d.train:
            raise UserError("no training data: give --train FILE (text; labels are not needed)")
        if d.task != "classification":  # it was accepted and ignored
            raise UserError(f"--early-exit is for classification: --task {d.task} cannot be honoured (the exits "
                            "are classifiers of the model's labels)")
    if d.task == "seq2seq" and d.pair_column is not None:  # seq2seq reads source/target columns: accepted and ignored
        raise UserError(f"--pair-column {d.pair_column}: --task seq2seq reads --source-column and --target-column "
                        "(data.source_column, data.target_column), not a pair column")
    if m.init_from and scratch:
        raise UserError(f"model.init_from ({m.init_from}) starts from trained weights and model."
                        f"{'preset' if m.preset else 'config'} ({scratch}) from random ones (--from-scratch): "
                        "give one of them")
    if not m.init_from and not scratch:
        raise UserError("no model to fine-tune: give --model DIR (model.init_from), a berts or Hugging Face "
                        "BERT directory, or --from-scratch PRESET|CONFIG with --tokenizer DIR (random weights)")
    if m.init_from:
        path = Path(m.init_from)
        if not path.exists():
            raise UserError(f"{m.init_from}: no such model directory")
        if not path.is_dir():
            raise UserError(f"{m.init_from}: not a model directory (a file; --model takes a directory)")
    elif not m.tokenizer:
        raise UserError(f"--from-scratch {scratch}: give the tokenizer too (--tokenizer DIR, model.tokenizer): "
                        "the vocabulary sets the model's embedding size")
    if not d.train:
        raise UserError("no training data: give --train FILE (data.train)")
    check_metric(cfg.train.metric, d.task)
    if d.task == "regression" and (t.label_smoothing or t.class_weights is not None or t.positive_label is not None):
        raise UserError("train.label_smoothing, train.class_weights and train.positive_label are for "
                        "classification, not regression")
    if cfg.train.patience and not d.dev:
        raise UserError("train.patience (early stopping) needs an evaluation file: give --dev FILE")


def check_distill_config(cfg) -> None:
    k, d, m = cfg.distill, cfg.data, cfg.model
    if not k.teacher:
        raise UserError("no teacher: give --teacher DIR (distill.teacher), a berts or Hugging Face BERT directory")
    if bool(d.shards) == bool(d.train):
        raise UserError("give one kind of data: --data SHARDS (general distillation) or --train FILE "
                        "(task distillation from a fine-tuned teacher)")
    if d.dev and not d.train:
        raise UserError("--dev evaluates task distillation: give --train FILE too")
    if d.task != "classification":
        raise UserError("distillation here is for classification teachers (data.task classification)")
    if cfg.train.patience and not d.dev:
        raise UserError("train.patience (early stopping) needs an evaluation file: give --dev FILE")
    check_metric(cfg.train.metric, "classification")
    starts = [s for s in ("student_layers", "init_from", "preset", "config")
              if (k.student_layers if s == "student_layers" else getattr(m, s))]
    if len(starts) != 1:
        raise UserError("give one student: --student-layers 0,2,4 (the teacher's layers), --student DIR (a "
                        "student directory), or --student-preset/--student-config (random weights)"
                        + (f"; got {', '.join(starts)}" if starts else ""))
    if k.student_init == "prune" and not (m.preset or m.config):
        raise UserError("--student-init prune cuts a new student out of the teacher: give its shape with "
                        "--student-preset/--student-config (and --set model.KEY=VALUE)")
    if k.temperature is not None and not (math.isfinite(k.temperature) and k.temperature > 0):
        raise UserError(f"distill.temperature must be a finite number > 0, got {k.temperature}")
    for key in (f.name for f in dataclasses.fields(k) if f.name.startswith("alpha_")):
        value = getattr(k, key)
        if not (math.isfinite(value) and value >= 0):
            raise UserError(f"distill.{key} is a loss weight: a finite number >= 0, got {value}")
    from berts.compress import registry  # torch-free

    method = registry.get(k.method)
    if method.weights and not any(getattr(k, w) > 0 for w in method.weights):
        raise UserError(f"--method {method.name}: every loss weight is 0 ({', '.join(f'distill.{w}' for w in method.weights)}): "
                        "the loss would be 0 and the student would not learn; give at least one a positive value")
    if (d.shards and "general" not in method.data) or (d.train and "task" not in method.data):
        kind = "general distillation (--data SHARDS)" if d.shards else "task distillation (--train FILE)"
        raise UserError(f"--method {method.name} does not do {kind}: it does "
                        + " and ".join("general (--data SHARDS)" if x == "general" else "task (--train FILE)"
                                       for x in method.data))
    default = type(k)()  # DistillSection's defaults
    for other in registry.METHODS.values():  # a key another method reads, set for this one: refused
        for key in set(other.keys) - set(method.keys):
            if getattr(k, key) != getattr(default, key):
                raise UserError(f"distill.{key} is read by --method {other.name}, not {method.name}")
    if d.shards and k.stage == "prediction":
        raise UserError("distill.stage prediction is task distillation's: give --train FILE")


def check_metric(metric: str | None, task: str) -> None:
    """``train.metric`` is one of the task's metrics (berts.tasks.registry; None: the task's default)."""
    from berts.tasks.registry import check_metric as registry_check  # torch-free

    registry_check(metric, task)