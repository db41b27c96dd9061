"""Training configuration: dataclass sections loaded from YAML, overridden with ``--set``.

The split follows cramming: **model** (what the network is), **data**, **optim** and
**schedule** (hyper-parameters), **train** (batch, budget, evaluation, checkpoints),
**impl** (how it runs: device, precision, threads) and **log** (where and what is written).
Pretraining and fine-tuning share every section but ``data`` (and ``model`` is read a little
differently). Everything is type-checked; a mistake is a :class:`UserError` naming the key and,
when it came from a file, ``file:line``.

    cfg = load_config(PretrainConfig, "configs/pretrain-tiny.yaml", ["optim.lr=1e-3"])
    save_config(cfg, out / "config.yaml")
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from berts.errors import UserError
from berts.objectives import registry
from berts.objectives.registry import resolve_objectives


# ----------------------------------------------------------------------------- sections
# the objectives registry's names (a typo is an error naming file:line and the choices)
ObjectiveName = Literal[registry.names() + ("auto",)]  # type: ignore[valid-type]
OldObjectiveName = Literal[("auto", "none") + registry.names("sentence", "lm", "pair")]  # type: ignore[valid-type]


@dataclass
class ModelSection:
    """The network. Extra keys are BertConfig fields (``hidden_size: 64``) kept in ``overrides``."""
    preset: str | None = None  # a size preset (tiny, mini, small, ...)
    config: str | None = None  # or a config.json / model directory
    init_from: str | None = None  # weights to start from (fine-tuning: the pretrained model)
    tokenizer: str | None = None  # tokenizer directory (default: the data's / the model's)
    ignore_mismatched_sizes: bool = False  # init_from: re-initialise weights whose shape does not fit (else an error)
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class PretrainData:
    shards: str | None = None  # directory written by `berts prepare`
    eval_shards: str | None = None  # held-out shards for evaluation (optional)
    eval_batches: int = 20  # batches of eval_shards per evaluation
    # the pretraining objectives, names of berts.objectives.registry (mlm, nsp, sop, reorder, distance, sbo,
    # wso, unilm, clm, seq2seq, electra, a plug-in); auto in the list: the shards' sentence objective.
    # Under data, beside the old data.objective it replaces: the list decides what the data is made into
    # (the shards' sentence labels, sbo's span targets, wso's transform) as well as the heads.
    objectives: list[ObjectiveName] | None = None  # e.g. [mlm, sop, sbo] (berts pretrain --help lists them); null: the old keys'
    # the old spelling of ``objectives`` (used when that is unset): the sentence-level objective with mlm
    # (auto: the shards'; none: MLM only), or unilm / clm / seq2seq / electra alone
    objective: OldObjectiveName = "auto"  # old spelling of objectives: [mlm, X] (none: [mlm]); lm / pair kinds alone
    masking: str = "token"  # token | wwm | ngram | span | entity (see berts.data.masking)
    mask_prob: float = 0.15
    max_predictions_per_seq: int | None = 20  # null: ceil(mask_prob x sequence length)
    sbo: bool = False  # old spelling: sbo in objectives (SpanBERT's span boundary objective, with span masking)
    wso: bool = False  # old spelling: wso in objectives (StructBERT's word structural objective)
    wso_rate: float = 0.05  # old spelling of wso.rate (used when it differs from 0.05)
    static_masking: bool = False  # each example keeps one mask (seeded by its index), as Google's BERT
    num_workers: int = 2
    pad_to_multiple_of: int = 8
    bucket_size: int = 0  # length bucketing: sort by length within chunks of N global batches; 0 = off


@dataclass
class FinetuneData:
    train: str | None = None
    dev: str | None = None
    task: Literal["classification", "regression", "seq2seq"] = "classification"
    format: Literal["auto", "tsv", "csv", "jsonl"] = "auto"
    header: bool | Literal["auto"] = "auto"
    text_column: str = "text"  # a header name or a 0-based index
    pair_column: str | None = None
    label_column: str = "label"
    source_column: str = "source"  # task seq2seq: the input text (a header name or a 0-based index)
    target_column: str = "target"  # task seq2seq: the text to generate
    max_length: int | None = None  # tokens per example; null: 128, or less if the model's positions are fewer
    skip_bad_rows: bool = False
    num_workers: int = 0


@dataclass
class OptimSection:
    name: Literal["adamw", "lamb"] = "adamw"
    lr: float = 1e-3  # peak learning rate
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-6
    weight_decay: float = 0.01  # not applied to biases and LayerNorm
    grad_clip: float | None = 1.0  # max global gradient norm; null = no clipping


@dataclass
class ScheduleSection:
    name: Literal["linear", "constant", "one_cycle"] = "linear"
    warmup: float = 0.06  # a fraction of the run (< 1) or a number of steps (>= 1)
    min_lr: float = 0.0  # the end of the decay, as a fraction of the peak


@dataclass
class TrainSection:
    batch_size: int = 32  # global: all ranks and all accumulation micro-batches
    grad_accum: int = 1
    max_steps: int | None = None
    epochs: float | None = None  # instead of max_steps
    budget: str | None = None  # wall clock, e.g. 15m or 1h30m: the schedule follows the clock
    # (with max_steps/epochs too: the run ends at whichever comes first, the schedule follows the nearer)
    seed: int = 0
    eval_every: int | None = None  # steps; null: each epoch (fine-tuning) / at the end (pretraining)
    eval_batch_size: int = 64
    metric: str | None = None  # the metric that picks the best checkpoint (fine-tuning)
    patience: int | None = None  # early stopping: evaluations without improvement
    save_every: int = 1000  # steps between checkpoints
    keep_last: int = 2  # resume checkpoints kept (plus best/ and final/); 0: none (the run cannot be resumed)


@dataclass
class FinetuneTrain(TrainSection):
    """Fine-tuning's train section: the shared keys plus the classification loss and F1 options.
    These shape the training run only: they are in OUT/config.yaml, not in the model's config.json."""
    label_smoothing: float = 0.0  # cross-entropy against (1 - e) one-hot + e / num_labels (as torch / transformers)
    class_weights: dict[str, float] | str | None = None  # balanced, {label: w} or "label=w,...": loss x weight
    positive_label: str | None = None  # the label F1 is of (2 labels); null: the second label in sorted order
    early_exit: bool = False  # --early-exit: train FastBERT exits on a fine-tuned classifier (compress/fastbert.py)


@dataclass
class ImplSection:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: fp32 on CPU, bf16/fp16 on CUDA
    threads: int | None = None  # torch CPU threads
    deterministic: bool = False
    init_scale: float = 65536.0  # fp16 loss scale to start from
    growth_interval: int = 2000  # fp16: steps without overflow before the scale doubles
    compile: bool = False  # torch.compile the model (falls back to the plain model with a warning)
    tune_malloc: bool = True  # CPU/glibc: keep freed memory instead of unmapping it every step


@dataclass
class LogSection:
    out: str = "runs/run"
    every: int = 20  # steps between metrics records (the only host syncs of the loop)
    progress: Literal["auto", "bar", "lines", "none"] = "auto"  # auto: a bar on a terminal, else lines
    tensorboard: bool = True
    plots: bool = True


@dataclass
class WsoSection:
    """StructBERT's word structural objective (objectives: [mlm, wso])."""
    rate: float = 0.05  # the share of trigrams of unmasked tokens that wso shuffles (StructBERT: 5%)


@dataclass
class ElectraSection:
    """ELECTRA (objectives: [electra]): the generator's size and the discriminator loss' weight."""
    generator_size: float = 0.25  # the generator's hidden / heads / intermediate sizes, a fraction of the model's
    rtd_weight: float = 50.0  # lambda: loss = generator MLM + lambda x discriminator BCE


@dataclass
class PretrainConfig:
    model: ModelSection = field(default_factory=lambda: ModelSection(preset="tiny"))
    data: PretrainData = field(default_factory=PretrainData)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    train: TrainSection = field(default_factory=lambda: TrainSection(max_steps=1000))
    impl: ImplSection = field(default_factory=ImplSection)
    log: LogSection = field(default_factory=lambda: LogSection(out="runs/pretrain"))
    electra: ElectraSection = field(default_factory=ElectraSection)
    wso: WsoSection = field(default_factory=WsoSection)


@dataclass
class FinetuneConfig:
    model: ModelSection = field(default_factory=lambda: ModelSection(overrides={}))
    data: FinetuneData = field(default_factory=FinetuneData)
    optim: OptimSection = field(default_factory=lambda: OptimSection(lr=5e-5))
    schedule: ScheduleSection = field(default_factory=lambda: ScheduleSection(warmup=0.1))
    train: FinetuneTrain = field(default_factory=lambda: FinetuneTrain(epochs=3, save_every=500, keep_last=1))
    impl: ImplSection = field(default_factory=ImplSection)
    log: LogSection = field(default_factory=lambda: LogSection(out="runs/finetune", every=10))


# ----------------------------------------------------------------------------- distillation
@dataclass
class DistillSection:
    method: Literal["distilbert", "tinybert"] = "distilbert"
    teacher: str | None = None  # the teacher's directory (frozen); task distillation: a fine-tuned classifier
    student_layers: list[int] | None = None  # the student = the teacher's embeddings + these layers (0-based)
    # a new student of model.preset / model.config's shape: random weights, or cut out of the teacher by
    # activation importance on the first batches of the data (berts.compress.prune; Minitron's pruning)
    student_init: Literal["random", "prune"] = "random"
    temperature: float | None = None  # soft targets' temperature; null: 2 (distilbert), 1 (tinybert)
    alpha_ce: float = 5.0  # distilbert: soft-target loss weight
    alpha_mlm: float = 2.0  # distilbert: the student's own loss (MLM; task mode: the hard labels)
    alpha_cos: float = 1.0  # distilbert: cosine loss on the last hidden states (real tokens)
    alpha_emb: float = 1.0  # tinybert: embedding-layer MSE
    alpha_att: float = 1.0  # tinybert: attention-score MSE (summed over the mapped layers)
    alpha_hidden: float = 1.0  # tinybert: hidden-state MSE (summed over the mapped layers)
    alpha_pred: float = 1.0  # tinybert: prediction-layer soft cross-entropy (task mode)
    stage: Literal["auto", "intermediate", "prediction", "all"] = "auto"  # tinybert; auto: intermediate (general), all (task)


@dataclass
class DistillData(FinetuneData):
    shards: str | None = None  # general distillation: a directory from `berts prepare` (else train: a labelled file)
    masking: str = "token"  # general distillation's MLM masking (see berts.data.masking)
    mask_prob: float = 0.15
    max_predictions_per_seq: int | None = 20
    pad_to_multiple_of: int = 8


@dataclass
class DistillConfig:
    model: ModelSection = field(default_factory=lambda: ModelSection(overrides={}))  # the student (init_from: a student directory)
    distill: DistillSection = field(default_factory=DistillSection)
    data: DistillData = field(default_factory=DistillData)
    optim: OptimSection = field(default_factory=lambda: OptimSection(lr=5e-5))
    schedule: ScheduleSection = field(default_factory=lambda: ScheduleSection(warmup=0.1))
    train: TrainSection = field(default_factory=lambda: TrainSection(epochs=3, save_every=500, keep_last=1))
    impl: ImplSection = field(default_factory=ImplSection)
    log: LogSection = field(default_factory=lambda: LogSection(out="runs/distill", every=10))


# ----------------------------------------------------------------------------- durations
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float) -> float:
    """``90s``, ``15m``, ``1.5h``, ``1h30m``, ``2d`` -> seconds."""
    s = str(text).strip().lower()
    parts = _DURATION.findall(s)
    if not parts or _DURATION.sub("", s).strip():
        raise UserError(f"budget {text!r}: give a duration with a unit, such as 90s, 15m, 2h or 1h30m")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UserError(f"budget {text!r} must be positive")
    return seconds


# ----------------------------------------------------------------------------- YAML with lines
def _line_map(node, prefix=(), out=None) -> dict[tuple[str, ...], int]:
    """(section, key, ...) -> 1-based line of each mapping key in a composed YAML document."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                path = prefix + (str(key.value),)
                out[path] = key.start_mark.line + 1
                _line_map(value, path, out)
    return out


def _check_duplicates(node, path, prefix=()) -> None:
    """YAML takes the last of two equal keys silently: a second ``optim:`` section would replace
    the first. Refuse it, naming both lines."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                name, line = str(key.value), key.start_mark.line + 1
                if name in seen:
                    what = "section" if not prefix else "key"
                    raise UserError(f"{path}:{line}: duplicate {what} {'.'.join(prefix + (name,))} "
                                    f"(first at line {seen[name]}): merge them into one")
                seen[name] = line
                _check_duplicates(value, path, prefix + (name,))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicates(item, path, prefix)


def read_yaml(path: str | Path) -> tuple[dict, dict[tuple[str, ...], int]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the config ({exc.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text) if data else None
        _check_duplicates(node, path)
        lines = _line_map(node) if data else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{loc}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config is a mapping of sections (model:, data:, optim:, ...)")
    return data, lines


# ----------------------------------------------------------------------------- checking values
def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) if not isinstance(a, str) else a for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


class _Mismatch(Exception):
    pass


def coerce(value: Any, tp) -> Any:
    """``value`` as type ``tp`` (a dataclass field annotation) or raise _Mismatch."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("null", "none", "~") and type(None) in args:
            return None
        for arg in args:  # exact kinds first (so 3 stays an int in int | float), then conversions
            if arg is not type(None):
                try:
                    return coerce(value, arg)
                except _Mismatch:
                    continue
        raise _Mismatch
    if origin is Literal:
        choices = typing.get_args(tp)
        for choice in choices:
            if value == choice and type(value) is type(choice):
                return value
            if isinstance(value, str) and isinstance(choice, str) and value.lower() == choice:
                return choice
        raise _Mismatch
    if origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise _Mismatch
        return [coerce(v, inner) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value.replace("_", ""))
            except ValueError:
                raise _Mismatch from None
            if f.is_integer():
                return int(f)
        raise _Mismatch
    if tp is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                return float(value)
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Mismatch
    raise _Mismatch


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _model_keys() -> dict[str, Any]:
    from berts.model.config import BertConfig

    hints = _hints(BertConfig)
    for key in ("extra", *OBJECTIVE_FIELDS):
        hints.pop(key, None)
    return hints


# BertConfig fields that the run's objectives set (data.objectives), not model.* keys
OBJECTIVE_FIELDS = ("objectives", "lm_mode", "lm_readout")


def _unknown(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(known)})"
    return f"unknown {kind} {name}{hint}"


def _finite(value, dotted: str, loc: str):
    """nan and inf read as numbers (``--set optim.lr=nan``, YAML's ``.inf``): no key means them."""
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        raise UserError(f"{loc}: {dotted} must be a finite number, got {value!r}")
    return value


def _set_value(cfg, path: tuple[str, ...], value: Any, loc: str) -> None:
    """Set cfg.<section>.<key> = value with type checking; loc prefixes error messages."""
    sections = [f.name for f in dataclasses.fields(cfg)]
    if len(path) < 2:
        if len(path) == 1 and path[0] in sections:
            raise UserError(f"{loc}: {path[0]} is a section: give section.key=value")
        raise UserError(f"{loc}: " + _unknown("section", path[0] if path else "''", sections))
    if path[0] not in sections:
        raise UserError(f"{loc}: " + _unknown("section", path[0], sections))
    set_key(getattr(cfg, path[0]), path[0], path[1:], value, loc)


def set_key(section, section_name: str, keys: tuple[str, ...] | str, value: Any, loc: str) -> None:
    """section.<key> = value, type-checked against the section's annotations."""
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    hints = _hints(type(section))
    dotted = ".".join((section_name,) + keys)
    key = keys[0]
    if isinstance(section, ModelSection) and key == "overrides" and len(keys) > 1:
        keys = keys[1:]  # model.overrides.hidden_size == model.hidden_size
        key = keys[0]
    if isinstance(section, ModelSection) and key not in hints:
        model_hints = _model_keys()
        if key not in model_hints:
            known = [f"{section_name}.{k}" for k in list(hints) + list(model_hints) if k != "overrides"]
            raise UserError(f"{loc}: " + _unknown("key", f"{section_name}.{key}", known))
        if len(keys) != 1:
            raise UserError(f"{loc}: {dotted} is not a key")
        try:
            section.overrides[key] = _finite(coerce(value, model_hints[key]), f"{section_name}.{key}", loc)
        except _Mismatch:
            raise UserError(f"{loc}: {section_name}.{key} must be {_type_name(model_hints[key])}, "
                            f"got {value!r}") from None
        return
    if key not in hints:
        raise UserError(f"{loc}: " + _unknown("key", f"{section_name}.{key}", [f"{section_name}.{k}" for k in hints]))
    if len(keys) != 1:
        raise UserError(f"{loc}: {dotted} is not a key ({section_name}.{key} has no sub-keys)")
    if key == "overrides":
        if not isinstance(value, dict):
            raise UserError(f"{loc}: {dotted} must be a mapping of model config fields")
        for k, v in value.items():
            set_key(section, section_name, str(k), v, loc)
        return
    try:
        setattr(section, key, _finite(coerce(value, hints[key]), dotted, loc))
    except _Mismatch:
        raise UserError(f"{loc}: {dotted} must be {_type_name(hints[key])}, got {value!r}") from None


def apply_dict(cfg, data: dict, source: str = "config", lines: dict | None = None):
    """Merge a nested dict (as read from YAML) into ``cfg``; errors name ``source:line``."""
    lines = lines or {}
    for section_name, body in data.items():
        loc = f"{source}:{lines[(str(section_name),)]}" if (str(section_name),) in lines else source
        sections = [f.name for f in dataclasses.fields(cfg)]
        if str(section_name) not in sections:
            raise UserError(f"{loc}: " + _unknown("section", str(section_name), sections))
        if body is None:
            continue
        if not isinstance(body, dict):
            raise UserError(f"{loc}: section {section_name} must be a mapping of key: value")
        for key, value in body.items():
            path = (str(section_name), str(key))
            kloc = f"{source}:{lines[path]}" if path in lines else loc
            _set_value(cfg, path, value, kloc)
    return cfg


def parse_set(item: str) -> tuple[tuple[str, ...], Any]:
    """``section.key=value`` -> ((section, key), value); the value is read as YAML."""
    if "=" not in item:
        raise UserError(f"--set {item}: expected section.key=value")
    key, _, text = item.partition("=")
    key = key.strip()
    if not key:
        raise UserError(f"--set {item}: expected section.key=value")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    if value is None and text.strip().lower() not in ("null", "none", "~"):
        value = text  # e.g. a column named "#1 String", which YAML reads as a comment
    return tuple(key.split(".")), value


def load_config(cls, path: str | Path | None = None, sets: list[str] | None = None,
                overrides: dict | None = None):
    """Defaults of ``cls``, then the YAML file, then ``overrides`` (a nested dict from command-line
    flags), then each ``--set section.key=value``. Checked at every step."""
    cfg = cls()
    if path is not None:
        data, lines = read_yaml(path)
        apply_dict(cfg, data, str(path), lines)
    if overrides:
        apply_dict(cfg, overrides, "command line")
    for item in sets or []:
        key, value = parse_set(item)
        _set_value(cfg, key, value, f"--set {item}")
    validate(cfg)
    return cfg


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
    if o.lr <= 0:
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
    if not 0 <= s.min_lr <= 1:
        bad(f"schedule.min_lr is a fraction of the peak in [0, 1], got {s.min_lr}")
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
    if isinstance(t, FinetuneTrain):
        if not 0 <= t.label_smoothing < 1:
            bad(f"train.label_smoothing must be in [0, 1), got {t.label_smoothing}")
        if t.class_weights is not None:
            parse_class_weights(t.class_weights)  # the form; the labels are checked against the data
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        p = cfg.model.overrides.get(key)
        if p is not None and not 0 <= p < 1:
            bad(f"model.{key} must be in [0, 1), got {p}")
    if isinstance(cfg, PretrainConfig):  # the objectives' list and combination (the shards' part: at run time)
        resolve_objectives(cfg)


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


# ----------------------------------------------------------------------------- writing
def config_to_dict(cfg) -> dict:
    out = {}
    for f in dataclasses.fields(cfg):
        section = dataclasses.asdict(getattr(cfg, f.name))
        if "overrides" in section:  # model: overrides are written inline, as they are read
            section.update(section.pop("overrides"))
        out[f.name] = section
    return out


def config_from_dict(cls, data: dict):
    """The inverse of config_to_dict (e.g. for a checkpoint's resolved config)."""
    cfg = apply_dict(cls(), data, "saved config")
    validate(cfg)
    return cfg


def dump_config(cfg) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


def save_config(cfg, path: str | Path) -> None:
    Path(path).write_text("# resolved configuration (berts)\n" + dump_config(cfg), encoding="utf-8")


# ----------------------------------------------------------------------------- --show-config
def _field_comments(cls) -> dict[str, str]:
    """{field: its trailing ``# comment``} from the dataclass source (and its bases')."""
    import inspect

    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s+(\w+):[^#\n]*#\s*(.+)$", source, re.M):
            out[m.group(1)] = m.group(2).strip()
    return out


def show_config(cfg) -> str:
    """Every ``--set`` key of a config, one a line: ``section.key  value  (type)  # what it is``.
    ``cfg`` is the config as it would run (its class' defaults, then the file and the flags given),
    so ``berts finetune --show-config`` is the defaults and ``--config F --show-config`` F's values.
    The model section also takes any model config field (``model.hidden_size``), listed after it
    with BertConfig's defaults (a model directory's own config.json has the last word)."""
    from berts.model.config import BertConfig

    rows = []
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        hints, notes = _hints(type(section)), _field_comments(type(section))
        for key in (k.name for k in dataclasses.fields(section)):
            if key == "overrides":
                continue
            rows.append((f"{f.name}.{key}", getattr(section, key), _type_name(hints[key]), notes.get(key, "")))
        if isinstance(section, ModelSection):
            model_notes = _field_comments(BertConfig)
            defaults = BertConfig()
            for key, tp in _model_keys().items():
                value = section.overrides.get(key, getattr(defaults, key))
                note = "set" if key in section.overrides else "default: the model's (BertConfig's here)"
                if model_notes.get(key):
                    note += "; " + model_notes[key]
                rows.append((f"model.{key}", value, _type_name(tp), note))

    def shown(v):
        return "null" if v is None else yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()

    width = max(len(r[0]) for r in rows)
    vwidth = min(max(len(shown(r[1])) for r in rows), 24)
    lines = [f"# every --set SECTION.KEY=VALUE of {type(cfg).__name__}: key, value, (type), what it is"]
    for key, value, tp, note in rows:
        lines.append(f"{key:<{width}}  {shown(value):<{vwidth}}  ({tp})" + (f"  # {note}" if note else ""))
    return "\n".join(lines)
