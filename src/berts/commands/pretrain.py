"""`berts pretrain --config FILE [--set k=v ...] [--budget 15m] [--resume DIR|auto] [--init-from DIR]`:
MLM (+ NSP/SOP) (+ SBO) pretraining on shards from `berts prepare`, with the one Trainer."""
from __future__ import annotations

import warnings
from pathlib import Path

from berts.errors import UserError


def add_run_arguments(p) -> None:
    """The flags every training command shares."""
    p.add_argument("--config", metavar="FILE", help="YAML config (see configs/); flags and --set override it")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set optim.lr=5e-4 (repeatable)")
    p.add_argument("--out", metavar="DIR", help="output directory (log.out)")
    p.add_argument("--budget", metavar="TIME",
                   help="wall-clock budget, e.g. 15m or 2h: the schedule follows the clock and the run ends "
                        "on time with a final checkpoint (train.budget)")
    p.add_argument("--resume", metavar="DIR|auto",
                   help="continue a run exactly (weights, optimizer, schedule, RNG, data position) from a "
                        "checkpoint, a run directory, or auto: the newest checkpoint in --out")
    p.add_argument("--max-steps", type=int, metavar="N", help="optimizer steps (train.max_steps)")
    p.add_argument("--lr", type=float, metavar="LR", help="peak learning rate (optim.lr)")
    p.add_argument("--batch-size", type=int, metavar="N", help="global batch size (train.batch_size)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), help="impl.precision")
    p.add_argument("--device", metavar="DEV", help="auto, cpu, cuda, cuda:N (impl.device)")


def put(overrides: dict, dotted: str, value) -> None:
    """overrides[section][key] = value, unless the flag was not given (None)."""
    if value is not None:
        section, key = dotted.split(".")
        overrides.setdefault(section, {})[key] = value


def run_overrides(args) -> dict:
    """The shared flags as a nested dict of config values (applied before --set)."""
    o: dict = {}
    for dotted, value in (("log.out", args.out), ("train.budget", args.budget), ("train.max_steps", args.max_steps),
                          ("train.batch_size", args.batch_size), ("optim.lr", args.lr),
                          ("impl.precision", args.precision), ("impl.device", args.device)):
        put(o, dotted, value)
    if args.budget is not None and args.max_steps is None:
        put(o, "train.max_steps", "null")  # the budget rules unless steps are also asked for
        put(o, "train.epochs", "null")
    return o


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain", help="pretrain a BERT/ALBERT from scratch (MLM + NSP/SOP, SBO)",
        description="Pretrain on shards written by `berts prepare`. Configured by a YAML file "
                    "(configs/pretrain-tiny.yaml) with overrides; writes OUT/config.yaml, checkpoints "
                    "(OUT/checkpoints/step-N), OUT/final, metrics.jsonl, TensorBoard events and plots. "
                    "Distributed: torchrun --nproc_per_node N -m berts pretrain ...")
    add_run_arguments(p)
    p.add_argument("--data", metavar="DIR", help="prepared shards (data.shards)")
    p.add_argument("--preset", metavar="NAME", help="model size preset (model.preset)")
    p.add_argument("--init-from", metavar="DIR",
                   help="start from these weights (a berts or Hugging Face directory) with a fresh optimizer "
                        "and schedule; unlike --resume, nothing else is restored")
    p.set_defaults(func=run)


def build_model(cfg, meta: dict):
    """The pretraining model from model.{preset, config, init_from, overrides} and the data's meta."""
    from berts.config import BertConfig, preset
    from berts.heads import BertForMaskedLM, BertForPreTraining
    from berts.hf import from_pretrained, read_config

    m = cfg.model
    if m.init_from:
        base = read_config(m.init_from)
    elif m.config:
        base = BertConfig.load(m.config)
    else:
        base = preset(m.preset or "tiny")
    changes = {"vocab_size": int(meta["vocab_size"])}
    if cfg.data.sbo:
        changes["span_boundary_objective"] = True
    changes.update(m.overrides)
    if m.init_from and changes["vocab_size"] != base.vocab_size:
        raise UserError(f"{m.init_from}: vocabulary of {base.vocab_size} tokens, the data's has {meta['vocab_size']}")
    config = base.replace(**changes)
    seq = int(meta.get("max_seq_length", 0))
    if seq > config.max_position_embeddings:
        raise UserError(f"the data has sequences of {seq} tokens, more than the model's max_position_embeddings "
                        f"{config.max_position_embeddings} (set model.max_position_embeddings)")
    objective = pair_objective(cfg, meta)
    cls = BertForMaskedLM if objective == "none" else BertForPreTraining
    if m.init_from:
        with warnings.catch_warnings():  # summarised below instead
            warnings.simplefilter("ignore")
            model = from_pretrained(cls, m.init_from, **{k: v for k, v in changes.items() if k != "vocab_size"})
        new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
        note = f"; newly initialised: {', '.join(new)}" if new else ""
        return model, f"initialised from {m.init_from}: weights only, fresh optimizer and schedule{note}"
    return cls(config), None


def pair_objective(cfg, meta: dict) -> str:
    data_obj = meta.get("objective", "none")
    want = cfg.data.objective
    if want == "auto":
        return data_obj
    if want != "none" and want != data_obj:
        raise UserError(f"data.objective is {want} but {cfg.data.shards} was prepared for {data_obj} "
                        f"(prepare again with --objective {want}, or set data.objective: none for MLM only)")
    return want


def run(args) -> int:
    from berts.train import checkpoint, distributed
    from berts.train.config import PretrainConfig, load_config

    overrides = run_overrides(args)
    put(overrides, "data.shards", args.data)
    put(overrides, "model.preset", args.preset)
    put(overrides, "model.init_from", args.init_from)
    cfg = load_config(PretrainConfig, args.config, args.set, overrides)
    if args.resume and cfg.model.init_from:
        raise UserError("--resume continues a run (weights, optimizer, schedule, data position); --init-from "
                        "starts a new one from weights only: give one of them")
    if not cfg.data.shards:
        raise UserError("no training data: set data.shards (or --data DIR), a directory from `berts prepare`")
    resume = checkpoint.resolve_resume(args.resume, cfg.log.out) if args.resume else None

    dist = distributed.setup(cfg.impl.device)
    try:
        trainer = make_trainer(cfg, resume, dist, resume_requested=args.resume)
        trainer.fit()
        del trainer  # DDP holds the process group: free it before the group goes
    finally:
        distributed.teardown()
    return 0


def make_trainer(cfg, resume, dist, resume_requested=None):
    from berts.data.dataset import PretrainingDataset
    from berts.train.checkpoint import seed_all
    from berts.train.tasks import PretrainingTask
    from berts.train.trainer import Trainer

    d = cfg.data

    def dataset(path):
        if not Path(path).is_dir():
            raise UserError(f"{path}: no such shards directory (make one with `berts prepare`)")
        return PretrainingDataset(path, masking=d.masking, mask_prob=d.mask_prob,
                                  max_predictions_per_seq=d.max_predictions_per_seq, sbo=d.sbo,
                                  seed=cfg.train.seed, pad_to_multiple_of=d.pad_to_multiple_of,
                                  static_masking=d.static_masking)

    train = dataset(d.shards)
    evaluation = dataset(d.eval_shards) if d.eval_shards else None
    seed_all(cfg.train.seed)  # the same initial weights on every rank and every run
    model, init_note = build_model(cfg, train.meta)
    objective = pair_objective(cfg, train.meta)
    tokenizer = load_data_tokenizer(cfg, train.meta)
    task = PretrainingTask(train, evaluation, eval_batches=d.eval_batches,
                           eval_batch_size=cfg.train.eval_batch_size, pair_objective=objective != "none")
    trainer = Trainer(model, task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="pretrain")
    if init_note:
        trainer.print(init_note)
    if tokenizer is None:
        trainer.print("note: the data's tokenizer directory was not found (set model.tokenizer): "
                      "checkpoints will hold no tokenizer files")
    if resume_requested == "auto" and resume is None:
        trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
    return trainer


def load_data_tokenizer(cfg, meta: dict):
    """The tokenizer saved into every checkpoint: model.tokenizer, else the one the data was made with."""
    from berts.tokenizer import Tokenizer

    path = cfg.model.tokenizer or meta.get("tokenizer", {}).get("path")
    if not path or not Path(path).exists():
        return None
    tok = Tokenizer.from_pretrained(path)
    if tok.vocab_size != int(meta["vocab_size"]):
        raise UserError(f"{path}: tokenizer of {tok.vocab_size} tokens, the data was made with {meta['vocab_size']}")
    return tok
