"""`berts finetune`: sentence / sentence-pair classification or regression from any berts or
Hugging Face BERT directory (evaluation, best checkpoint, early stopping). Flags -> config ->
``berts.runs.finetune.finetuning_run`` -> fit."""
from __future__ import annotations

from pathlib import Path

from berts.commands.common import (add_data_arguments, add_run_arguments, data_overrides, launch, put, run_overrides,
                                   show_config_or_load)
from berts.util.values import count, positive, probability


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune", help="fine-tune for classification, sentence pairs or regression",
        description="Fine-tune a berts or Hugging Face BERT directory (with or without a classification head) "
                    "on a TSV/CSV/JSONL file. Labels may be any strings; they are saved as id2label in "
                    "config.json. Writes OUT/best (the best evaluation), OUT/final, checkpoints, metrics and "
                    "plots. Configure with --config (configs/finetune.yaml) and/or the flags below; every "
                    "other config key is a --set SECTION.KEY=VALUE: --show-config lists them all with their "
                    "defaults and types.")
    add_run_arguments(p)
    start = p.add_mutually_exclusive_group()
    start.add_argument("--model", "--model-name-or-path", "--model_name_or_path", dest="model", metavar="DIR",
                       help="the model to start from (model.init_from)")
    start.add_argument("--from-scratch", metavar="PRESET|CONFIG",
                       help="random weights instead of --model: a size preset (tiny, mini, base, ...) or a "
                            "config.json / model directory whose config is used (model.preset / model.config); "
                            "needs --tokenizer. The baseline of what pretraining buys")
    p.add_argument("--tokenizer", metavar="DIR", help="tokenizer directory (default: the model's)")
    p.add_argument("--train", metavar="FILE", help="training file (data.train)")
    p.add_argument("--dev", metavar="FILE", help="evaluation file (data.dev)")
    from berts.tasks import registry  # torch-free: the task names and their one-line help

    p.add_argument("--task", choices=registry.names(),
                   help="data.task (default classification): " + "; ".join(
                       f"{s.name}: {s.help}" + (f", then `{s.then}`" if s.serve is None else "")
                       for s in registry.TASKS.values()))
    for name, (opt, owners) in registry.all_options().items():  # each task's own switches (TaskSpec.options)
        flag = "--" + name.replace("_", "-")
        where = f"{', '.join(owners)}: {opt.help} (task.{name})"
        if opt.type is bool:
            p.add_argument(flag, dest=f"task_{name}", action="store_true", default=None, help=where)
        else:
            p.add_argument(flag, dest=f"task_{name}", metavar=name.split("_")[-1].upper(), help=where)
    p.add_argument("--source-column", metavar="COL", help="seq2seq: the input column (data.source_column)")
    p.add_argument("--target-column", metavar="COL", help="seq2seq: the column to generate (data.target_column)")
    add_data_arguments(p)
    p.add_argument("--metric", "--metric-for-best-model", "--metric_for_best_model", dest="metric", metavar="NAME", help="metric that picks the best checkpoint (train.metric): " + "; ".join(
        f"{s.name}: {', '.join(s.metrics)}" for s in registry.TASKS.values()))
    p.add_argument("--epochs", "--num-train-epochs", "--num_train_epochs", dest="epochs", type=positive, metavar="N",
                   help="train.epochs (--max-steps, if given too, ends the run instead)")
    p.add_argument("--eval-every", "--eval-steps", "--eval_steps", dest="eval_every", type=count, metavar="STEPS",
                   help="evaluate every N steps (default: each epoch)")
    p.add_argument("--label-smoothing", "--label_smoothing_factor", dest="label_smoothing", type=probability,
                   metavar="E", help="cross-entropy against (1 - E) one-hot + E / labels, for this run's training "
                                     "loss only (train.label_smoothing)")
    p.add_argument("--class-weights", metavar="balanced|LABEL=W,...",
                   help="weigh each example's loss by its class: balanced (n / (labels x n_class)) or "
                        "label=weight pairs, others 1 (train.class_weights)")
    p.add_argument("--positive-label", metavar="NAME",
                   help="the label whose F1 is f1, with 2 labels (train.positive_label; default: the second "
                        "label in sorted order)")
    p.add_argument("--patience", type=count, metavar="N", help="stop after N evaluations without improvement")
    p.add_argument("--early-exit", action="store_true", default=None,
                   help="FastBERT: on a fine-tuned classifier (--model DIR), train a student classifier after "
                        "every layer by self-distillation (backbone and final classifier frozen); --train is "
                        "text, labels not needed (train.early_exit)")
    p.set_defaults(func=run)


def _overrides(args) -> dict:
    o = run_overrides(args)
    if args.epochs is not None and args.max_steps is None:
        put(o, "train.max_steps", "null")
    for dotted, value in (
            ("model.init_from", args.model), ("model.tokenizer", args.tokenizer), *data_overrides(args),
            ("data.task", args.task), ("train.metric", args.metric), ("train.epochs", args.epochs), ("train.eval_every", args.eval_every),
            ("train.patience", args.patience), ("model.classifier_dropout", args.dropout),
            ("train.label_smoothing", args.label_smoothing), ("train.class_weights", args.class_weights),
            ("train.positive_label", args.positive_label), ("train.early_exit", args.early_exit),
            ("data.source_column", args.source_column), ("data.target_column", args.target_column)):
        put(o, dotted, value)
    from berts.tasks import registry

    for name in registry.all_options():  # strings: the config loader types them (task.<name>)
        put(o, f"task.{name}", getattr(args, f"task_{name}", None))
    if args.from_scratch is not None:  # an existing path is a config; anything else a preset name
        scratch = "model.config" if Path(args.from_scratch).exists() else "model.preset"
        put(o, scratch, args.from_scratch)
    return o


def run(args) -> int:
    from berts.config.schema import FinetuneConfig
    from berts.config.validate import check_run
    from berts.runs.finetune import finetuning_run

    cfg = show_config_or_load(FinetuneConfig, args, _overrides(args))
    if cfg is None:
        return 0
    check_run(cfg)
    status, result, main = launch(finetuning_run, cfg, args)
    if status:
        return status
    if result.get("best") and main:
        print(f"best model ({result['best']['metric']} {result['best']['value']:.4f}): {Path(cfg.log.out) / 'best'}")
    return 0
