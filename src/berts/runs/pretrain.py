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


# ----------------------------------------------------------------------------- pretraining
def pretraining_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None,
                    overwrite: bool = False):
    """The Trainer of a pretraining run: shards -> PretrainingDataset, the model from
    ``cfg.model`` (preset, config or init_from), MLM + the data's sentence-pair objective (+ SBO).
    ``log.out`` is claimed first (see claim_output): ``resume``/``resume_requested`` continue the
    run there, ``overwrite`` replaces an earlier run's outputs; anything else non-empty is refused."""
    from berts.data.dataset import PretrainingDataset
    from berts.tasks.pretraining import PretrainingTask
    from berts.train import distributed
    from berts.train.checkpoint import seed_all
    from berts.train.trainer import Trainer

    d = cfg.data
    check_pretrain_config(cfg)
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "pretrain", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[cfg.model.init_from, cfg.model.config, cfg.model.tokenizer, d.shards, d.eval_shards],
                 dist=dist, no_checkpoint=resume is None)

    def dataset(path, transforms=True):
        if not Path(path).is_dir():
            raise UserError(f"{path}: no such shards directory (make one with `berts prepare`)")
        return PretrainingDataset(path, masking=d.masking, mask_prob=d.mask_prob,
                                  max_predictions_per_seq=d.max_predictions_per_seq, sbo=d.sbo,
                                  seed=cfg.train.seed, pad_to_multiple_of=d.pad_to_multiple_of,
                                  static_masking=d.static_masking, lm_objective=lm_objective(cfg),
                                  transforms=data_transforms(cfg) if transforms else ())

    train = dataset(d.shards)
    # the held-out MLM figures on clean text (a run with WSO is then comparable with one without);
    # the transforms' own metrics on a second, transformed copy
    evaluation = dataset(d.eval_shards, transforms=False) if d.eval_shards else None
    transformed = dataset(d.eval_shards) if d.eval_shards and data_transforms(cfg) else None
    seed_all(cfg.train.seed)  # the same initial weights on every rank and every run
    model, init_note = build_model(cfg, train.meta)
    tokenizer = load_data_tokenizer(cfg, train.meta)
    if d.objective == "electra":  # ELECTRA: the discriminator (model) + its generator (berts.model.electra)
        from berts.model.electra import make_generator
        from berts.tasks.electra import ElectraPretrainingTask

        if d.sbo:
            raise UserError("data.objective electra trains the generator's MLM and the discriminator only: "
                            "set data.sbo: false")
        task = ElectraPretrainingTask(model, make_generator(model, cfg.electra.generator_size, cfg.model.init_from),
                                      train, evaluation, rtd_weight=cfg.electra.rtd_weight,
                                      eval_batches=d.eval_batches, eval_batch_size=cfg.train.eval_batch_size)
    else:
        task = PretrainingTask(model, train, evaluation, objective=pair_objective(cfg, train.meta),
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




def build_model(cfg, meta: dict):
    """(model, note) for pretraining from model.{preset, config, init_from, overrides} and the data's meta."""
    from berts.hf import from_pretrained, load_config, read_config
    from berts.model.config import preset
    from berts.model.heads import BertForMaskedLM, BertForPreTraining

    m = cfg.model
    if m.init_from:
        base = read_config(m.init_from)
    elif m.config:
        base = load_config(m.config)
    else:
        base = preset(m.preset or "tiny")
    changes = {"vocab_size": int(meta["vocab_size"])}
    if cfg.data.sbo:
        changes["span_boundary_objective"] = True
    structure = structure_extras(cfg, meta)
    if structure:  # BertForPreTraining's switches for ERNIE 2.0's heads and StructBERT's wso, saved in config.json
        changes["extra"] = {**base.extra, **structure}
    changes.update(m.overrides)
    if m.init_from and changes["vocab_size"] != base.vocab_size:
        raise UserError(f"{m.init_from}: vocabulary of {base.vocab_size} tokens, the data's has {meta['vocab_size']}")
    config = base.replace(**changes)
    seq = int(meta.get("max_seq_length", 0))
    if seq > config.max_position_embeddings:
        raise UserError(f"the data has sequences of {seq} tokens, more than the model's max_position_embeddings "
                        f"{config.max_position_embeddings} (set model.max_position_embeddings)")
    cls = BertForMaskedLM if pair_objective(cfg, meta) == "none" else BertForPreTraining
    if cfg.data.objective == "electra":  # the discriminator; its generator: electra.make_generator
        from berts.model.electra import ElectraForPreTraining as cls
    lm = lm_objective(cfg)
    if lm is not None:  # UniLM: the mode generation uses is saved in config.json (berts_lm_mode)
        from berts.model.heads import BertForUnifiedLM

        cls = BertForUnifiedLM
        config.extra.update(lm_extras(lm))
    if m.init_from:
        with warnings.catch_warnings():  # summarised below instead
            warnings.simplefilter("ignore")
            model = from_pretrained(cls, m.init_from, ignore_mismatched_sizes=m.ignore_mismatched_sizes,
                                    **{k: v for k, v in changes.items() if k != "vocab_size"})
        if lm is not None:
            model.config.extra.update(lm_extras(lm))
        new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
        note = f"; newly initialised: {', '.join(new)}" if new else ""
        return model, f"initialised from {m.init_from}: weights only, fresh optimizer and schedule{note}"
    return cls(config), None


def data_transforms(cfg) -> list:
    """The batch transforms (the data hook, berts.data.collate) the config asks for: ``data.wso``."""
    from berts.data.collate import TrigramShuffle

    if not cfg.data.wso:
        return []
    if lm_objective(cfg) is not None or cfg.data.objective == "electra":
        raise UserError(f"data.wso (StructBERT's word structural objective) trains BERT's MLM head; it does not "
                        f"combine with data.objective {cfg.data.objective}")
    if not 0.0 < cfg.data.wso_rate <= 1.0:
        raise UserError(f"data.wso_rate must be in (0, 1], got {cfg.data.wso_rate!r}")
    return [TrigramShuffle(cfg.data.wso_rate)]


def structure_extras(cfg, meta: dict) -> dict:
    """config.extra entries that switch on the structure objectives (objectives/structure.py)."""
    out = {}
    objective = pair_objective(cfg, meta)
    if objective in ("reorder", "distance"):
        out["berts_structure_objective"] = objective
    if cfg.data.wso:
        out["berts_wso"] = True
    return out


def lm_objective(cfg) -> str | None:
    """UniLM's objective (data.objective unilm / clm / seq2seq: see heads.BertForUnifiedLM), or None."""
    return cfg.data.objective if cfg.data.objective in ("unilm", "clm", "seq2seq") else None


def lm_extras(lm: str) -> dict:
    """config.json entries of a UniLM model: the mode generation runs in and how it reads the next
    token (``next``: the last position's next-token prediction; ``mask``: a [MASK] appended, as
    UniLM's masked objective was trained)."""
    return {"berts_lm_mode": "seq2seq" if lm == "seq2seq" else "left-to-right",
            "berts_lm_readout": "mask" if lm == "unilm" else "next"}


def pair_objective(cfg, meta: dict) -> str:
    """The sentence-pair objective trained: data.objective, checked against the shards' (auto: theirs)."""
    data_obj = meta.get("objective", "none")
    want = cfg.data.objective
    if lm_objective(cfg) is not None or want == "electra":
        return "none"  # UniLM and ELECTRA train no sentence-pair head (the pair's labels are dropped)
    if want == "auto":
        return data_obj
    if want != "none" and want != data_obj:
        raise UserError(f"data.objective is {want} but {cfg.data.shards} was prepared for {data_obj} "
                        f"(prepare again with --objective {want}, or set data.objective: none for MLM only)")
    return want


def load_data_tokenizer(cfg, meta: dict):
    """The tokenizer saved into every checkpoint: model.tokenizer, else the one the data was made with."""
    from berts.tokenizer.wordpiece import load_tokenizer

    path = cfg.model.tokenizer or meta.get("tokenizer", {}).get("path")
    if not path or not Path(path).exists():
        return None
    tok = load_tokenizer(path)
    if tok.vocab_size != int(meta["vocab_size"]):
        raise UserError(f"{path}: tokenizer of {tok.vocab_size} tokens, the data was made with {meta['vocab_size']}")
    return tok
