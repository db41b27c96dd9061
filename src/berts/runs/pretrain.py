"""The pretraining run (``berts pretrain``): shards -> the model its objectives name -> the Trainer.

    cfg = load_config(PretrainConfig, "configs/pretrain-tiny.yaml", ["train.max_steps=100"])
    pretraining_run(cfg).fit()
"""
from __future__ import annotations

import warnings
from pathlib import Path

from berts.config.validate import check_pretrain_config
from berts.errors import UserError
from berts.runs.common import claim_output
from berts.data.dataset import PretrainingDataset
from berts.data.shards import ShardReader
from berts.hf import from_pretrained, load_config, read_config
from berts.model.config import preset
from berts.model.electra import make_generator
from berts.model.heads import BertForMaskedLM, BertForPreTraining
from berts.objectives.registry import get
from berts.objectives.registry import settings_dict
from berts.objectives.registry import resolve_objectives
from berts.tasks.electra import ElectraPretrainingTask
from berts.tasks.pretraining import PretrainingTask
from berts.tokenizer.wordpiece import load_tokenizer
from berts.train import distributed
from berts.train.checkpoint import seed_all
from berts.train.trainer import Trainer


# ----------------------------------------------------------------------------- pretraining
def pretraining_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None,
                    overwrite: bool = False):
    """The Trainer of a pretraining run: shards -> PretrainingDataset, the model from
    ``cfg.model`` (preset, config or init_from) with the heads its objectives name
    (berts.objectives.registry: ``data.objectives`` or the old keys' list), and their task.
    ``log.out`` is claimed first (see claim_output): ``resume``/``resume_requested`` continue the
    run there, ``overwrite`` replaces an earlier run's outputs; anything else non-empty is refused."""

    d = cfg.data
    check_pretrain_config(cfg)
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "pretrain", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[cfg.model.init_from, cfg.model.config, cfg.model.tokenizer, d.shards, d.eval_shards],
                 dist=dist, no_checkpoint=resume is None)
    if not Path(d.shards).is_dir():
        raise UserError(f"{d.shards}: no such shards directory (make one with `berts prepare`)")
    objectives = run_objectives(cfg, read_meta(d.shards))
    transforms = data_transforms(cfg, objectives)
    options = dataset_options(objectives)

    def dataset(path, transforms=transforms):
        if not Path(path).is_dir():
            raise UserError(f"{path}: no such shards directory (make one with `berts prepare`)")
        return PretrainingDataset(path, masking=d.masking, mask_prob=d.mask_prob,
                                  max_predictions_per_seq=d.max_predictions_per_seq, seed=cfg.train.seed,
                                  pad_to_multiple_of=d.pad_to_multiple_of, static_masking=d.static_masking,
                                  transforms=transforms, **options)

    train = dataset(d.shards)
    # the held-out MLM figures on clean text (a run with WSO is then comparable with one without);
    # the transforms' own metrics on a second, transformed copy
    evaluation = dataset(d.eval_shards, transforms=()) if d.eval_shards else None
    transformed = dataset(d.eval_shards) if d.eval_shards and transforms else None
    seed_all(cfg.train.seed)  # the same initial weights on every rank and every run
    model, init_note = build_model(cfg, train.meta, objectives)
    tokenizer = load_data_tokenizer(cfg, train.meta)
    if objectives == ["electra"]:  # ELECTRA: the discriminator (model) + its generator (berts.model.electra)

        task = ElectraPretrainingTask(model, make_generator(model, cfg.electra.generator_size, cfg.model.init_from),
                                      train, evaluation, rtd_weight=cfg.electra.rtd_weight,
                                      eval_batches=d.eval_batches, eval_batch_size=cfg.train.eval_batch_size)
    else:
        task = PretrainingTask(model, train, evaluation, objectives=objectives,
                               eval_batches=d.eval_batches, eval_batch_size=cfg.train.eval_batch_size,
                               eval_transformed=transformed)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="pretrain")
    if init_note:
        trainer.print(init_note)
    if tokenizer is None:
        trainer.print("note: the data's tokenizer directory was not found (set model.tokenizer): "
                      "checkpoints will hold no tokenizer files")
    if resume_requested == "auto" and resume is None:
        trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
    return trainer


def read_meta(shards) -> dict:
    """The shards' meta.json (what `berts prepare` made them for), checked as the reader checks it."""

    return ShardReader(shards).meta


def run_objectives(cfg, meta: dict) -> list[str]:
    """The run's objectives (registry names), checked against each other and the shards."""

    return resolve_objectives(cfg, meta)


def build_model(cfg, meta: dict, objectives: list[str] | None = None):
    """(model, note) for pretraining from model.{preset, config, init_from, overrides}, the data's
    meta and the run's objectives: the model class and heads they name (BertConfig.objectives)."""

    objectives = objectives if objectives is not None else run_objectives(cfg, meta)
    m = cfg.model
    if m.init_from:
        base = read_config(m.init_from)
    elif m.config:
        base = load_config(m.config)
    else:
        base = preset(m.preset or "tiny")
    changes = {"vocab_size": int(meta["vocab_size"]), "objectives": list(objectives),
               "span_boundary_objective": "sbo" in objectives}
    changes.update(m.overrides)
    if m.init_from and changes["vocab_size"] != base.vocab_size:
        raise UserError(f"{m.init_from}: vocabulary of {base.vocab_size} tokens, the data has {meta['vocab_size']}")
    config = base.replace(**changes)
    set_model_fields(config, objectives)  # UniLM: the mode generation uses, saved in config.json
    seq = int(meta.get("max_seq_length", 0))
    if seq > config.max_position_embeddings:
        raise UserError(f"the data has sequences of {seq} tokens, more than the model's max_position_embeddings "
                        f"{config.max_position_embeddings} (set model.max_position_embeddings)")
    cls = model_class(objectives)
    if m.init_from:
        with warnings.catch_warnings():  # summarised below instead
            warnings.simplefilter("ignore")
            model = from_pretrained(cls, m.init_from, ignore_mismatched_sizes=m.ignore_mismatched_sizes,
                                    **{k: v for k, v in changes.items() if k != "vocab_size"})
        set_model_fields(model.config, objectives)
        new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
        note = f"; newly initialised: {', '.join(new)}" if new else ""
        return model, f"initialised from {m.init_from}: weights only, fresh optimizer and schedule{note}"
    return cls(config), None


def model_class(objectives: list[str]):
    """The task model the objectives train: an lm / pair objective's own (its spec's ``model``),
    else BertForPreTraining with a sentence-level objective, BertForMaskedLM without."""

    specs = [get(n) for n in objectives]
    own = [s for s in specs if s.model]
    if own:
        return own[0].load("model")
    return BertForPreTraining if any(s.kind == "sentence" for s in specs) else BertForMaskedLM


def set_model_fields(config, objectives: list[str]) -> None:
    """The BertConfig fields the objectives' specs set (``model_fields``; UniLM's lm_mode / lm_readout)."""

    for name in objectives:
        for key, value in get(name).model_fields.items():
            setattr(config, key, value)


def data_transforms(cfg, objectives: list[str]) -> list:
    """The batch transforms (the data hook, berts.data.collate) of the objectives that have one
    (their spec's ``transform``), built from their typed config section (wso: ``wso.rate``)."""

    out = []
    for name in objectives:
        spec = get(name)
        if spec.transform is None:
            continue
        settings = settings_dict(spec, cfg)
        if name == "wso" and cfg.data.wso_rate != type(cfg.data)().wso_rate:  # the old spelling of wso.rate
            settings["rate"] = cfg.data.wso_rate
        try:
            out.append(spec.load("transform")(**settings))
        except ValueError as exc:
            raise UserError(f"{spec.config or name}: {exc}") from None
    return out


def dataset_options(objectives: list[str]) -> dict:
    """The PretrainingDataset keywords the objectives' specs set (``dataset_options``: sbo's span
    targets, UniLM's attention mode per batch)."""

    out: dict = {}
    for name in objectives:
        out.update(get(name).dataset_options)
    return out


def load_data_tokenizer(cfg, meta: dict):
    """The tokenizer saved into every checkpoint: model.tokenizer, else the one the data was made with."""

    path = cfg.model.tokenizer or meta.get("tokenizer", {}).get("path")
    if not path or not Path(path).exists():
        return None
    tok = load_tokenizer(path)
    if tok.vocab_size != int(meta["vocab_size"]):
        raise UserError(f"{path}: tokenizer of {tok.vocab_size} tokens, the data was made with {meta['vocab_size']}")
    return tok
