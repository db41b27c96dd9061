"""`berts finetune`: sentence / sentence-pair classification or regression from any berts or
Hugging Face BERT directory, with the one Trainer (evaluation, best checkpoint, early stopping)."""
from __future__ import annotations

import warnings
from pathlib import Path

from berts.commands.pretrain import add_run_arguments, put, run_overrides
from berts.errors import UserError

CLASSIFICATION_METRICS = ("accuracy", "f1", "f1_macro", "mcc", "loss")
REGRESSION_METRICS = ("pearson", "spearman", "mse", "loss")
SETTINGS_KEY = "berts_finetune"  # config.json: how the data was read, for evaluate/predict


def add_data_arguments(p, *, labels: bool = True) -> None:
    p.add_argument("--text-column", metavar="COL", help="text column: a header name or a 0-based index")
    p.add_argument("--pair-column", metavar="COL", help="second text column, for sentence-pair tasks")
    if labels:
        p.add_argument("--label-column", metavar="COL", help="label column (name or 0-based index)")
    p.add_argument("--format", choices=("auto", "tsv", "csv", "jsonl"), help="file format (default: by extension)")
    p.add_argument("--header", choices=("auto", "yes", "no"), help="whether the first row names the columns")
    p.add_argument("--skip-bad-rows", action="store_true", default=None,
                   help="skip malformed rows (and count them) instead of stopping at the first")
    p.add_argument("--max-length", type=int, metavar="N", help="tokens per example, [CLS]/[SEP] included")


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


def read(path, d, *, labels: bool = True, task: str | None = None):
    """read_examples with a FinetuneData section's column settings; prints skipped-row counts."""
    from berts.data.tasks import read_examples

    examples, report = read_examples(
        path, text_column=d.text_column, text_pair_column=d.pair_column,
        label_column=d.label_column if labels else None, format=d.format, header=d.header,
        skip_bad_rows=d.skip_bad_rows, task=task or d.task)
    return examples, report


def drop_unknown_labels(examples, label_map, report, skip: bool):
    """Rows whose label the model does not know: left in (the dataset then stops at the first,
    naming file and line) or, with skip_bad_rows, dropped and counted in the report."""
    if label_map is None or not skip:
        return examples
    kept = [e for e in examples if e.label is None or str(e.label) in label_map]
    dropped = len(examples) - len(kept)
    if dropped:
        report.skipped["unknown label"] = report.skipped.get("unknown label", 0) + dropped
        first = next(e for e in examples if e.label is not None and str(e.label) not in label_map)
        report.first_skipped.append(f"{first.path}:{first.line}: unknown label '{first.label}'")
        report.rows = len(kept)
    if not kept:
        raise UserError(f"{report.path}: no examples with a label the model knows ({report.summary()})")
    return kept


def load_tokenizer(path):
    from berts.tokenizer import Tokenizer

    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such tokenizer directory")
    if p.is_dir() and not any((p / n).is_file() for n in ("tokenizer.json", "vocab.txt")):
        raise UserError(f"{path}: no tokenizer files (tokenizer.json or vocab.txt); give one with --tokenizer DIR")
    return Tokenizer.from_pretrained(p)


def check_metric(metric: str | None, task: str) -> None:
    if metric is None:
        return
    choices = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    if metric not in choices:
        raise UserError(f"train.metric {metric!r} is not a {task} metric (choose from {', '.join(choices)})")


def check_max_length(max_length: int | None, max_positions: int) -> int:
    """data.max_length, or its default: 128, or the model's positions if fewer."""
    if max_length is None:
        return min(128, max_positions)
    if max_length > max_positions:
        raise UserError(f"data.max_length {max_length} is more than the model's max_position_embeddings "
                        f"{max_positions}")
    return max_length


def run(args) -> int:
    from berts.train import checkpoint, distributed
    from berts.train.config import FinetuneConfig, load_config

    cfg = load_config(FinetuneConfig, args.config, args.set, _overrides(args))
    d = cfg.data
    if not cfg.model.init_from:
        raise UserError("no model to fine-tune: give --model DIR (model.init_from), a berts or Hugging Face "
                        "BERT directory")
    if not d.train:
        raise UserError("no training data: give --train FILE (data.train)")
    check_metric(cfg.train.metric, d.task)
    if cfg.train.patience and not d.dev:
        raise UserError("train.patience (early stopping) needs an evaluation file: give --dev FILE")
    resume = checkpoint.resolve_resume(args.resume, cfg.log.out) if args.resume else None

    dist = distributed.setup(cfg.impl.device)
    try:
        trainer = make_trainer(cfg, resume, dist)
        if args.resume == "auto" and resume is None:
            trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
        result = trainer.fit()
        del trainer  # DDP holds the process group: free it before the group goes
    finally:
        distributed.teardown()
    if result.get("best") and dist.is_main:
        print(f"best model ({result['best']['metric']} {result['best']['value']:.4f}): {Path(cfg.log.out) / 'best'}")
    return 0


def make_trainer(cfg, resume, dist):
    from berts.data.tasks import ClassificationDataset, LabelMap
    from berts.heads import BertForSequenceClassification
    from berts.hf import read_config
    from berts.train.checkpoint import seed_all
    from berts.train.tasks import ClassificationTask
    from berts.train.trainer import Trainer

    d, m = cfg.data, cfg.model
    regression = d.task == "regression"
    tokenizer = load_tokenizer(m.tokenizer or m.init_from)
    train_examples, train_report = read(d.train, d)
    dev_examples, dev_report = read(d.dev, d) if d.dev else (None, None)
    label_map = None if regression else LabelMap.from_examples(train_examples)
    if dev_examples:
        dev_examples = drop_unknown_labels(dev_examples, label_map, dev_report, d.skip_bad_rows)
    max_length = check_max_length(d.max_length, m.overrides.get("max_position_embeddings")
                                  or read_config(m.init_from).max_position_embeddings)
    train = ClassificationDataset(train_examples, tokenizer, label_map=label_map, max_length=max_length,
                                  regression=regression)
    dev = (ClassificationDataset(dev_examples, tokenizer, label_map=label_map, max_length=max_length,
                                 regression=regression) if dev_examples else None)

    changes = dict(m.overrides)
    if regression:
        changes.update(num_labels=1, problem_type="regression", id2label=None, label2id=None)
    else:
        changes.update(label_map.to_config())
    seed_all(cfg.train.seed)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        model = BertForSequenceClassification.from_pretrained(m.init_from, ignore_mismatched_sizes=True, **changes)
    model.config.extra[SETTINGS_KEY] = {
        "task": d.task, "text_column": d.text_column, "pair_column": d.pair_column, "label_column": d.label_column,
        "format": d.format, "header": d.header, "max_length": max_length}
    task = ClassificationTask(train, dev, regression=regression, num_labels=1 if regression else len(label_map),
                              metric=cfg.train.metric if d.dev else None, eval_batch_size=cfg.train.eval_batch_size)
    trainer = Trainer(model, task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="finetune")
    for report in (train_report, dev_report):
        if report is not None:
            trainer.print(report.summary())
    new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
    what = "regression" if regression else f"{len(label_map)} labels: {', '.join(label_map.names[:10])}"
    if resume is None:
        trainer.print(f"initialised from {m.init_from}: weights only, fresh optimizer and schedule; "
                      f"{what}" + (f"; new: {', '.join(new)}" if new else ""))
    return trainer
