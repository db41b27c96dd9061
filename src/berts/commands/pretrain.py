"""`berts pretrain --config FILE [--set k=v ...] [--budget 15m] [--resume DIR|auto] [--init-from DIR]`:
MLM (+ NSP/SOP) (+ SBO) pretraining on shards from `berts prepare`. Flags -> config ->
``berts.train.recipes.pretraining_run`` -> fit."""
from __future__ import annotations

from berts.commands.common import add_run_arguments, put, run_overrides
from berts.errors import UserError


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


def run(args) -> int:
    from berts.train import checkpoint, distributed
    from berts.train.config import PretrainConfig, load_config
    from berts.train.recipes import check_pretrain_config, pretraining_run

    overrides = run_overrides(args)
    put(overrides, "data.shards", args.data)
    put(overrides, "model.preset", args.preset)
    put(overrides, "model.init_from", args.init_from)
    cfg = load_config(PretrainConfig, args.config, args.set, overrides)
    if args.resume and cfg.model.init_from:
        raise UserError("--resume continues a run (weights, optimizer, schedule, data position); --init-from "
                        "starts a new one from weights only: give one of them")
    check_pretrain_config(cfg)
    resume = checkpoint.resolve_resume(args.resume, cfg.log.out) if args.resume else None

    dist = distributed.setup(cfg.impl.device)
    try:
        trainer = pretraining_run(cfg, resume, dist, resume_requested=args.resume)
        trainer.fit()
        del trainer  # DDP holds the process group: free it before the group goes
    finally:
        distributed.teardown()
    return 0
