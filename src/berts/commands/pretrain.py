"""`berts pretrain --config FILE [--objectives mlm sop sbo] [--set k=v ...] [--budget 15m] [--resume DIR|auto]`:
pretraining on shards from `berts prepare`, with the objectives of berts.objectives.registry (the
flags' choices are the registry's names). Flags -> config -> ``berts.runs.pretrain.pretraining_run`` -> fit."""
from __future__ import annotations

from berts.commands.common import (add_run_arguments, launch, put, run_overrides,
                                   show_config_or_load)
from berts.errors import UserError
from berts.objectives import registry
from berts.util.values import positive


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain", help="pretrain a BERT/ALBERT from scratch (MLM + NSP/SOP, SBO, ...: --objectives)",
        description="Pretrain on shards written by `berts prepare`. Configured by a YAML file "
                    "(configs/pretrain-tiny.yaml) with overrides; writes OUT/config.yaml, checkpoints "
                    "(OUT/checkpoints/step-N), OUT/final, metrics.jsonl, TensorBoard events and plots. "
                    "Distributed: torchrun --nproc_per_node N -m berts pretrain ... Every config key is a "
                    "--set SECTION.KEY=VALUE: --show-config lists them all with their defaults and types.")
    add_run_arguments(p)
    p.add_argument("--data", metavar="DIR", help="prepared shards (data.shards)")
    p.add_argument("--eval-shards", "--eval-data", dest="eval_shards", metavar="DIR",
                   help="held-out shards from `berts prepare` for the dev evaluation (data.eval_shards)")
    p.add_argument("--epochs", "--num-train-epochs", "--num_train_epochs", dest="epochs", type=positive, metavar="N",
                   help="passes over the shards (train.epochs; --max-steps, if given too, ends the run instead)")
    p.add_argument("--preset", metavar="NAME", help="model size preset (model.preset)")
    p.add_argument("--objectives", nargs="+", metavar="NAME", choices=registry.names() + ("auto",),
                   help="data.objectives: the objectives to train, e.g. mlm sop sbo. Token level (with mlm): "
                        + ", ".join(registry.names("token")) + "; at most one sentence-level, as the shards were "
                        "prepared (auto: the shards'): " + ", ".join(registry.names("sentence")) + "; alone: "
                        + ", ".join(registry.names("lm", "pair")) + ". "
                        + "; ".join(f"{n}: {s.help}" for n, s in registry.registry().items()))
    p.add_argument("--objective", choices=("auto", "none") + registry.names("sentence", "lm", "pair"),
                   help="old spelling (data.objective): one sentence-level objective with mlm (auto: the shards'; "
                        "none: mlm only), or unilm / clm / seq2seq (a BertForUnifiedLM that `berts generate` "
                        "runs) / electra alone")
    p.add_argument("--init-from", metavar="DIR",
                   help="start from these weights (a berts or Hugging Face directory) with a fresh optimizer "
                        "and schedule; unlike --resume, nothing else is restored")
    p.set_defaults(func=run)


def _overrides(args) -> dict:
    o = run_overrides(args)
    put(o, "data.shards", args.data)
    put(o, "data.eval_shards", args.eval_shards)
    put(o, "train.epochs", args.epochs)
    if args.epochs is not None and args.max_steps is None:
        put(o, "train.max_steps", "null")  # epochs rule unless steps are also asked for
    put(o, "model.preset", args.preset)
    put(o, "data.objective", args.objective)
    put(o, "data.objectives", args.objectives)
    put(o, "model.init_from", args.init_from)
    return o


def run(args) -> int:
    from berts.config.schema import PretrainConfig
    from berts.config.validate import check_run
    from berts.runs.pretrain import pretraining_run

    cfg = show_config_or_load(PretrainConfig, args, _overrides(args))
    if cfg is None:
        return 0
    if args.resume and cfg.model.init_from:
        raise UserError("--resume continues a run (weights, optimizer, schedule, data position); --init-from "
                        "starts a new one from weights only: give one of them")
    check_run(cfg)
    return launch(pretraining_run, cfg, args)[0]
