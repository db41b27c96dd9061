"""`berts distill`: a method of berts.compress.registry (DistilBERT, TinyBERT, ...), general (pretraining shards) or task-specific (a
labelled file, from a fine-tuned teacher). Flags -> config (DistillConfig) ->
``berts.runs.distill.distillation_run`` -> fit."""
from __future__ import annotations

from pathlib import Path

from berts.commands.common import (
    add_data_arguments,
    add_run_arguments,
    data_overrides,
    launch,
    put,
    run_overrides,
    show_config_or_load,
)
from berts.compress import registry  # torch-free: the --method choices
from berts.util.values import count, nonnegative, positive


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "distill", help="distil a teacher into a smaller student (DistilBERT, TinyBERT)",
        description="Train a student to imitate a frozen teacher. --method distilbert: soft targets at "
                    "temperature T (x T^2), the student's own loss (MLM on --data shards, or the hard labels "
                    "of --train) and the cosine of the last hidden states; general distillation needs a "
                    "teacher with an MLM head. --method tinybert: embedding, attention-score and hidden-state "
                    "MSE (through a learned projection when the widths differ) on a uniform layer mapping, "
                    "and, with --train, the prediction layer's soft cross-entropy; works with any teacher "
                    "encoder for general distillation. Task distillation needs a fine-tuned teacher (`berts "
                    "finetune`). The student directory (OUT/final, OUT/best) is a plain Hugging Face BERT "
                    "directory; every other key is a --set SECTION.KEY=VALUE (--show-config).")
    add_run_arguments(p)
    p.add_argument("--method", choices=tuple(registry.METHODS),
                   help="distill.method (default distilbert): "
                        + "; ".join(f"{m.name}: {m.help}" for m in registry.METHODS.values()))
    p.add_argument("--teacher", metavar="DIR", help="the teacher's directory (distill.teacher)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--student-layers", metavar="0,2,4",
                       help="the student = the teacher's embeddings, these layers (0-based) and its heads "
                            "(distill.student_layers)")
    start.add_argument("--student", metavar="DIR",
                       help="start from a student directory, e.g. a general-distilled one (model.init_from)")
    start.add_argument("--student-preset", metavar="PRESET", help="a new random student of a size preset (model.preset)")
    start.add_argument("--student-config", metavar="CONFIG",
                       help="a new random student of a config.json or model directory's config (model.config)")
    p.add_argument("--student-init", choices=("random", "prune"),
                   help="with --student-preset/--student-config: random weights (default), or prune: cut out of "
                        "the teacher (its uniformly mapped layers, the most active dimensions, heads and neurons "
                        "on the first batches of the data; distill.student_init)")
    p.add_argument("--data", metavar="SHARDS", help="general distillation: a `berts prepare` directory (data.shards)")
    p.add_argument("--train", metavar="FILE", help="task distillation: a labelled file (data.train)")
    p.add_argument("--dev", metavar="FILE", help="task distillation: an evaluation file; best/ by --metric (data.dev)")
    add_data_arguments(p)
    p.add_argument("--temperature", type=positive, metavar="T",
                   help="soft targets' temperature (distill.temperature; default 2 distilbert, 1 tinybert)")
    p.add_argument("--alpha-ce", type=nonnegative, metavar="W", help="distilbert: soft-target weight (distill.alpha_ce, 5)")
    p.add_argument("--alpha-mlm", type=nonnegative, metavar="W",
                   help="distilbert: the student's own loss, MLM or hard labels (distill.alpha_mlm, 2)")
    p.add_argument("--alpha-cos", type=nonnegative, metavar="W", help="distilbert: cosine loss weight (distill.alpha_cos, 1)")
    p.add_argument("--stage", choices=("auto", "intermediate", "prediction", "all"),
                   help="tinybert: which losses (distill.stage; auto: intermediate for general, all for task)")
    p.add_argument("--metric", "--metric-for-best-model", "--metric_for_best_model", dest="metric", metavar="NAME", help="metric that picks the best checkpoint (train.metric)")
    p.add_argument("--epochs", "--num-train-epochs", "--num_train_epochs", dest="epochs", type=positive, metavar="N",
                   help="train.epochs (--max-steps, if given too, ends the run instead)")
    p.add_argument("--eval-every", "--eval-steps", "--eval_steps", dest="eval_every", type=count, metavar="STEPS",
                   help="evaluate every N steps (default: each epoch)")
    p.add_argument("--patience", type=count, metavar="N", help="stop after N evaluations without improvement")
    p.set_defaults(func=run)


def _overrides(args) -> dict:
    from berts.compress.students import parse_layers

    o = run_overrides(args)
    if args.epochs is not None and args.max_steps is None:
        put(o, "train.max_steps", "null")
    for dotted, value in (
            ("distill.method", args.method), ("distill.teacher", args.teacher), ("distill.student_init", args.student_init),
            ("distill.student_layers", parse_layers(args.student_layers) if args.student_layers else None),
            ("model.init_from", args.student), ("model.preset", args.student_preset),
            ("model.config", args.student_config), ("data.shards", args.data), *data_overrides(args),
            ("distill.temperature", args.temperature), ("distill.alpha_ce", args.alpha_ce),
            ("distill.alpha_mlm", args.alpha_mlm), ("distill.alpha_cos", args.alpha_cos),
            ("distill.stage", args.stage), ("train.metric", args.metric), ("train.epochs", args.epochs),
            ("train.eval_every", args.eval_every), ("train.patience", args.patience),
            ("model.classifier_dropout", args.dropout)):
        put(o, dotted, value)
    return o


def run(args) -> int:
    from berts.config.schema import DistillConfig
    from berts.config.validate import check_run
    from berts.runs.distill import distillation_run

    cfg = show_config_or_load(DistillConfig, args, _overrides(args))
    if cfg is None:
        return 0
    check_run(cfg)
    status, result, main = launch(distillation_run, cfg, args)
    if status:
        return status
    if main:
        if result.get("best"):
            print(f"best student ({result['best']['metric']} {result['best']['value']:.4f}): "
                  f"{Path(cfg.log.out) / 'best'}")
        else:
            print(f"student: {Path(cfg.log.out) / 'final'}")
    return 0
