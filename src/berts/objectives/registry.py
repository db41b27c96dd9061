"""The one registry of pretraining objectives: each is an ``ObjectiveSpec`` found by name.

A run names a list (``data.objectives: [mlm, sop, sbo]``, ``berts pretrain --objectives mlm sop
sbo``); the model (model/heads.py), ``berts
prepare`` (data/instances.py, data/pipeline.py), ``berts pretrain`` (runs/pretrain.py), the
evaluation (tasks/pretraining.py) and the command-line choices all read the specs here.

Where the specs come from: every module of the ``berts.objectives`` package may declare specs as
module-level assignments ``NAME = ObjectiveSpec(name=..., ...)`` with literal arguments. The
registry reads those statements from the source with ``ast`` instead of importing the module:
the modules hold the heads (torch), and the command line builds its choices from here without
importing torch (``berts --help`` stays fast). So a new objective is ONE new file under
src/berts/objectives/ (see docs/extending/objective.md); nothing else lists it.

Kinds, and how they combine (``check_objectives``, the one place):

* ``token``: a head over token positions on the MLM model (mlm, sbo, wso); sbo and wso need mlm;
* ``sentence``: a head on the pooled [CLS], its instances made by ``berts prepare`` (nsp, sop,
  reorder, distance, ...); at most one per run, it needs mlm, and the shards must be prepared for it;
* ``lm``: an attention mode on the encoder (unilm, clm, seq2seq: BertForUnifiedLM), alone;
* ``pair``: a model pair (electra: generator + discriminator), alone.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from berts.errors import UserError

KINDS = ("token", "sentence", "lm", "pair")


@dataclass(frozen=True)
class ObjectiveSpec:
    name: str
    kind: str  # one of KINDS
    help: str = ""  # one line, shown by the command line
    # --- the model side
    head: str | None = None  # "module:Class" of its nn.Module (an objectives.base.Objective), imported to build
    attr: str | None = None  # the attribute a task model holds the head under (its parameters' name prefix)
    model: str | None = None  # lm / pair kinds: "module:Class" of the whole model the run trains
    model_fields: dict = field(default_factory=dict)  # BertConfig fields it sets (lm: lm_mode, lm_readout)
    # --- the data side
    label_key: str | None = None  # sentence kind: the model keyword of its label (the shards': next_sentence_label)
    batch_keys: tuple[str, ...] = ()  # the batch / model keyword names of its targets
    maker: str | None = None  # sentence kind: "module:function" making its instances (see data/instances.py)
    num_labels: int = 0  # sentence kind: classes of its label
    num_special: int = 3  # sentence kind: [CLS]/[SEP] tokens in its longest layout
    min_documents: int = 1  # sentence kind: documents a pool needs (a B from another document: 2)
    transform: str | None = None  # "module:Class" of a batch transform (berts.data.collate), built from its config
    # PretrainingDataset keywords it sets: sbo's span-boundary targets from the masking, the lm kinds'
    # attention mode drawn per batch (data.masking.draw_mode) and next-token targets
    dataset_options: dict = field(default_factory=dict)
    # --- its typed settings: the run config's section of that name (a dataclass in config/schema.py)
    config: str | None = None
    # --- evaluation: what it accumulates (see eval_sums): the labels it is scored on, the output
    # field holding its logits (None: its own loss part and {name}_acc metric, times the items)
    eval_labels: str | None = None
    eval_logits: str | None = None
    eval_name: str | None = None  # its metrics' prefix ({eval_name}_acc); default its name
    eval_loss: bool = True  # also the summed cross-entropy (sentence kinds report accuracy only)
    eval_transformed: bool = False  # scored on the held-out data through its transform (wso)

    def load(self, what: str = "head") -> Any:
        """The object a "module:Name" field points to, imported now."""
        module, _, name = getattr(self, what).partition(":")
        return getattr(importlib.import_module(module), name)

    def settings(self, cfg) -> Any:
        """Its typed config section of run config ``cfg`` (None when it has none)."""
        return getattr(cfg, self.config) if self.config else None

    def eval_sums(self, inputs: dict, out) -> dict[str, tuple[float, int]]:
        """{metric: (sum over this batch, items)}: evaluation adds them up over batches and divides.
        ``inputs`` the model's keyword arguments, ``out`` its ModelOutput."""
        import torch.nn.functional as F

        from berts.objectives.base import top1

        labels = inputs.get(self.eval_labels) if self.eval_labels else None
        if labels is None or not labels.numel():
            return {}
        labels = labels.reshape(-1)
        n, prefix = labels.numel(), self.eval_name or self.name
        if self.eval_logits is None:  # its loss part and accuracy, means over its items
            if not out.losses or self.name not in out.losses:
                return {}
            return {f"{prefix}_loss": (float(out.losses[self.name]) * n, n),
                    f"{prefix}_acc": (float(out.metrics[f"{self.name}_acc"]) * n, n)}
        logits = getattr(out, self.eval_logits).detach().float()
        sums = {f"{prefix}_acc": (float((top1(logits) == labels).sum()), n)}
        if self.eval_loss:
            sums = {f"{prefix}_loss": (float(F.cross_entropy(logits, labels, reduction="sum")), n), **sums}
        return sums


# ----------------------------------------------------------------------------- discovery
PACKAGE_DIR = Path(__file__).resolve().parent


def _specs_in(path: Path) -> list[ObjectiveSpec]:
    """The ``X = ObjectiveSpec(...)`` statements of one module's source, evaluated (literals only)."""
    text = path.read_text(encoding="utf-8")
    if path.name == "registry.py" or "ObjectiveSpec(" not in text:  # nothing declared: no parse (start-up time)
        return []
    tree = ast.parse(text, str(path))
    out = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "ObjectiveSpec"):
            try:
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.value.keywords}
            except ValueError:
                raise UserError(f"{path}:{node.lineno}: ObjectiveSpec(...) takes literal keyword arguments only "
                                f"(strings, numbers, tuples, dicts)") from None
            if node.value.args:
                raise UserError(f"{path}:{node.lineno}: ObjectiveSpec(...) takes keyword arguments only")
            kwargs["batch_keys"] = tuple(kwargs.get("batch_keys", ()))
            spec = ObjectiveSpec(**kwargs)
            if spec.kind not in KINDS:
                raise UserError(f"{path}:{node.lineno}: objective {spec.name!r}: kind must be one of "
                                f"{', '.join(KINDS)}, got {spec.kind!r}")
            out.append(spec)
    return out


@lru_cache(maxsize=None)
def registry() -> dict[str, ObjectiveSpec]:
    """{name: spec} of every objective declared in the package, in file-name order (mlm first)."""
    specs: dict[str, ObjectiveSpec] = {}
    where: dict[str, Path] = {}
    for path in sorted(PACKAGE_DIR.glob("*.py"), key=lambda p: (p.stem != "mlm", p.stem)):
        for spec in _specs_in(path):
            if spec.name in specs:
                raise UserError(f"{path}: objective {spec.name!r} is also declared in {where[spec.name]}")
            specs[spec.name], where[spec.name] = spec, path
    return specs


@lru_cache(maxsize=None)
def batch_keys() -> frozenset[str]:
    """Every target keyword some objective reads (with transformers' ``labels``)."""
    return frozenset(k for s in registry().values() for k in s.batch_keys) | {"labels"}


def get(name: str) -> ObjectiveSpec:
    specs = registry()
    if name not in specs:
        near = difflib.get_close_matches(name, list(specs), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise UserError(f"unknown objective {name!r}{hint}; known: {', '.join(specs)}")
    return specs[name]


def names(*kinds: str) -> tuple[str, ...]:
    """The registered names, of these kinds only when given."""
    return tuple(n for n, s in registry().items() if not kinds or s.kind in kinds)


def sentence_names() -> tuple[str, ...]:
    """What ``berts prepare --objective`` offers: the sentence-level objectives, and none (one segment)."""
    return names("sentence") + ("none",)


# ----------------------------------------------------------------------------- a run's list
def check_objectives(objectives: list[str], shards_objective: str | None = None) -> list[str]:
    """The run's list checked (one-line UserErrors), ``auto`` replaced by the shards' sentence
    objective. ``shards_objective``: what ``berts prepare`` made the shards for (meta.json)."""
    out: list[str] = []
    for name in objectives:
        if name == "auto":  # the shards' sentence objective, if they have one
            if shards_objective and shards_objective != "none":
                out.append(shards_objective)
            continue
        get(name)
        if name in out:
            raise UserError(f"objectives: {name} is listed twice")
        out.append(name)
    if not out:
        raise UserError("objectives: the list is empty (e.g. [mlm], [mlm, sop])")
    specs = [get(n) for n in out]
    by_kind = {k: [s.name for s in specs if s.kind == k] for k in KINDS}
    for kind in ("lm", "pair"):
        if by_kind[kind] and len(out) > 1:
            others = [n for n in out if n != by_kind[kind][0]]
            old = "".join(f" (old keys: set data.{n}: false)" for n in others if n in ("sbo", "wso"))
            raise UserError(f"objectives: {by_kind[kind][0]} trains a model of its own and combines with no other "
                            f"objective, got [{', '.join(out)}]: drop {', '.join(others)}{old}")
    if len(by_kind["sentence"]) > 1:
        raise UserError(f"objectives: at most one sentence-level objective, got {', '.join(by_kind['sentence'])}")
    if (by_kind["sentence"] or by_kind["token"]) and "mlm" not in out:
        raise UserError(f"objectives: {next(n for n in out if n != 'mlm')} needs mlm in the list "
                        f"(its head sits on BERT's MLM model), got [{', '.join(out)}]")
    for name in by_kind["sentence"]:
        if shards_objective is not None and name != shards_objective:
            raise UserError(f"objectives: {name} needs shards prepared with --objective {name}, these were prepared "
                            f"for {shards_objective} (prepare again, or drop {name} for MLM only)")
    return out


def from_old_keys(data) -> list[str]:
    """The list the old spellings mean: ``data.objective`` (auto, nsp, ..., unilm, electra),
    ``data.sbo: true``, ``data.wso: true``."""
    objective = data.objective
    if get_kind(objective) in ("lm", "pair"):
        out = [objective]
    else:
        out = ["mlm"] + ([] if objective == "none" else [objective])  # "auto": the shards'
    if data.sbo:
        out.append("sbo")
    if data.wso:
        out.append("wso")
    return out


def get_kind(name: str) -> str | None:
    spec = registry().get(name)
    return spec.kind if spec else None


def resolve_objectives(cfg, meta: dict | None = None) -> list[str]:
    """A pretraining run config's objectives: ``cfg.data.objectives`` or, when that is unset, the old
    keys' list (from_old_keys), checked against each other and the shards' meta.json."""
    data = cfg.data
    if data.objectives is not None:
        old = [k for k, v in (("data.objective", data.objective != "auto"), ("data.sbo", data.sbo),
                              ("data.wso", data.wso)) if v]
        if old:
            raise UserError(f"data.objectives is set: drop {', '.join(old)} (the old spelling of the same list)")
        wanted = list(data.objectives)
    else:
        wanted = from_old_keys(data)
    shards = None if meta is None else meta.get("objective", "none")
    return check_objectives(wanted, shards)


def settings_dict(spec: ObjectiveSpec, cfg) -> dict:
    section = spec.settings(cfg)
    return dataclasses.asdict(section) if section is not None else {}
