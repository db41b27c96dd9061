"""`berts finetune`: sentence / sentence-pair classification or regression from any berts or
Hugging Face BERT directory (evaluation, best checkpoint, early stopping). Flags -> config ->
``berts.train.recipes.finetuning_run`` -> fit."""
from __future__ import annotations

from pathlib import Path

from berts.commands.common import add_data_arguments, add_run_arguments, put, run_overrides


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune", help="fine-tune for classification, sentence pairs or regression",
        description="Fine-tune a berts or Hugging Face BERT directory (with or without a classification head) "
                    "on a TSV/CSV/JSONL file. Labels may be any strings; they are saved as id2label in "
                    "config.json. Writes OUT/best (the best evaluation), OUT/final, checkpoints, metrics and "
                    "plots. Configure with --config (configs/finetune.yaml) and/or the flags below.")
    add_run_arguments(p)
    p.add_argument("--model", metavar="DIR", help="the model to start from (model.init_from)")
    p.add_argument("--tokenizer", metavar="DIR", help="tokenizer directory (default: the model's)")
    p.add_argument("--train", metavar="FILE", help="training file (data.train)")
    p.add_argument("--dev", metavar="FILE", help="evaluation file (data.dev)")
    p.add_argument("--task", choices=("classification", "regression"), help="data.task")
    add_data_arguments(p)
    p.add_argument("--metric", metavar="NAME", help="metric that picks the best checkpoint: accuracy, f1, "
                                                   "f1_macro, mcc, loss; pearson, spearman, mse (train.metric)")
    p.add_argument("--epochs", type=float, metavar="N", help="train.epochs")
    p.add_argument("--eval-every", type=int, metavar="STEPS", help="evaluate every N steps (default: each epoch)")
    p.add_argument("--patience", type=int, metavar="N", help="stop after N evaluations without improvement")
    p.set_defaults(func=run)


def _overrides(args) -> dict:
    o = run_overrides(args)
    if args.epochs is not None and args.max_steps is None:
        put(o, "train.max_steps", "null")
    for dotted, value in (
            ("model.init_from", args.model), ("model.tokenizer", args.tokenizer), ("data.train", args.train),
            ("data.dev", args.dev), ("data.task", args.task), ("data.text_column", args.text_column),
            ("data.pair_column", args.pair_column), ("data.label_column", args.label_column),
            ("data.format", args.format), ("data.header", {"yes": True, "no": False}.get(args.header, args.header)),
            ("data.skip_bad_rows", args.skip_bad_rows), ("data.max_length", args.max_length),
            ("train.metric", args.metric), ("train.epochs", args.epochs), ("train.eval_every", args.eval_every),
            ("train.patience", args.patience)):
        put(o, dotted, value)
    return o


def run(args) -> int:
    from berts.train import checkpoint, distributed
    from berts.train.config import FinetuneConfig, load_config
    from berts.train.recipes import check_finetune_config, finetuning_run

    cfg = load_config(FinetuneConfig, args.config, args.set, _overrides(args))
    check_finetune_config(cfg)
    resume = checkpoint.resolve_resume(args.resume, cfg.log.out) if args.resume else None

    dist = distributed.setup(cfg.impl.device)
    try:
        trainer = finetuning_run(cfg, resume, dist, resume_requested=args.resume)
        result = trainer.fit()
        del trainer  # DDP holds the process group: free it before the group goes
    finally:
        distributed.teardown()
    if result.get("best") and dist.is_main:
        print(f"best model ({result['best']['metric']} {result['best']['value']:.4f}): {Path(cfg.log.out) / 'best'}")
    return 0
