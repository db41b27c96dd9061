"""Recipes: the runs that ``berts pretrain`` and ``berts finetune`` run, as library functions, so
that Python users build the same runs and the commands stay thin (flags -> config -> recipe -> fit)::

    cfg = load_config(PretrainConfig, "configs/pretrain-tiny.yaml", ["train.max_steps=100"])
    pretraining_run(cfg).fit()

    cfg = load_config(FinetuneConfig, None, ["model.init_from=runs/tiny/final", "data.train=train.tsv"])
    finetuning_run(cfg).fit()

Also the pieces evaluate/predict reuse: reading a table with a config's column settings, the
length check, the settings a fine-tuned directory keeps, loading a fine-tuned classifier.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from berts.errors import UserError

CLASSIFICATION_METRICS = ("accuracy", "f1", "f1_macro", "mcc", "loss")
REGRESSION_METRICS = ("pearson", "spearman", "mse", "loss")
SETTINGS_KEY = "berts_finetune"  # config.json: how the data was read, for evaluate/predict


# ----------------------------------------------------------------------------- pretraining
def pretraining_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None):
    """The Trainer of a pretraining run: shards -> PretrainingDataset, the model from
    ``cfg.model`` (preset, config or init_from), MLM + the data's sentence-pair objective (+ SBO)."""
    from berts.data.dataset import PretrainingDataset
    from berts.train.checkpoint import seed_all
    from berts.train.tasks import PretrainingTask
    from berts.train.trainer import Trainer

    d = cfg.data
    check_pretrain_config(cfg)

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
    tokenizer = load_data_tokenizer(cfg, train.meta)
    task = PretrainingTask(model, train, evaluation, objective=pair_objective(cfg, train.meta),
                           eval_batches=d.eval_batches, eval_batch_size=cfg.train.eval_batch_size)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="pretrain")
    if init_note:
        trainer.print(init_note)
    if tokenizer is None:
        trainer.print("note: the data's tokenizer directory was not found (set model.tokenizer): "
                      "checkpoints will hold no tokenizer files")
    if resume_requested == "auto" and resume is None:
        trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
    return trainer


def check_pretrain_config(cfg) -> None:
    if not cfg.data.shards:
        raise UserError("no training data: set data.shards (or --data DIR), a directory from `berts prepare`")


def build_model(cfg, meta: dict):
    """(model, note) for pretraining from model.{preset, config, init_from, overrides} and the data's meta."""
    from berts.config import preset
    from berts.heads import BertForMaskedLM, BertForPreTraining
    from berts.hf import from_pretrained, load_config, read_config

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
    changes.update(m.overrides)
    if m.init_from and changes["vocab_size"] != base.vocab_size:
        raise UserError(f"{m.init_from}: vocabulary of {base.vocab_size} tokens, the data's has {meta['vocab_size']}")
    config = base.replace(**changes)
    seq = int(meta.get("max_seq_length", 0))
    if seq > config.max_position_embeddings:
        raise UserError(f"the data has sequences of {seq} tokens, more than the model's max_position_embeddings "
                        f"{config.max_position_embeddings} (set model.max_position_embeddings)")
    cls = BertForMaskedLM if pair_objective(cfg, meta) == "none" else BertForPreTraining
    if m.init_from:
        with warnings.catch_warnings():  # summarised below instead
            warnings.simplefilter("ignore")
            model = from_pretrained(cls, m.init_from, **{k: v for k, v in changes.items() if k != "vocab_size"})
        new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
        note = f"; newly initialised: {', '.join(new)}" if new else ""
        return model, f"initialised from {m.init_from}: weights only, fresh optimizer and schedule{note}"
    return cls(config), None


def pair_objective(cfg, meta: dict) -> str:
    """The sentence-pair objective trained: data.objective, checked against the shards' (auto: theirs)."""
    data_obj = meta.get("objective", "none")
    want = cfg.data.objective
    if want == "auto":
        return data_obj
    if want != "none" and want != data_obj:
        raise UserError(f"data.objective is {want} but {cfg.data.shards} was prepared for {data_obj} "
                        f"(prepare again with --objective {want}, or set data.objective: none for MLM only)")
    return want


def load_data_tokenizer(cfg, meta: dict):
    """The tokenizer saved into every checkpoint: model.tokenizer, else the one the data was made with."""
    from berts.tokenizer import load_tokenizer

    path = cfg.model.tokenizer or meta.get("tokenizer", {}).get("path")
    if not path or not Path(path).exists():
        return None
    tok = load_tokenizer(path)
    if tok.vocab_size != int(meta["vocab_size"]):
        raise UserError(f"{path}: tokenizer of {tok.vocab_size} tokens, the data was made with {meta['vocab_size']}")
    return tok


# ----------------------------------------------------------------------------- fine-tuning
def finetuning_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None):
    """The Trainer of a fine-tuning run: the tables of ``cfg.data`` -> ClassificationDataset, the
    model of ``model.init_from`` with a (new or kept) classification head, evaluation on data.dev."""
    from berts.data.classification import ClassificationDataset
    from berts.data.labels import LabelMap
    from berts.heads import BertForSequenceClassification
    from berts.hf import read_config
    from berts.tokenizer import load_tokenizer
    from berts.train.checkpoint import seed_all
    from berts.train.tasks import ClassificationTask
    from berts.train.trainer import Trainer

    d, m = cfg.data, cfg.model
    check_finetune_config(cfg)
    regression = d.task == "regression"
    tokenizer = load_tokenizer(m.tokenizer or m.init_from)
    train_examples, train_report = read_table(d.train, d)
    dev_examples, dev_report = read_table(d.dev, d) if d.dev else (None, None)
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
    task = ClassificationTask(model, train, dev, regression=regression,
                              num_labels=1 if regression else len(label_map),
                              metric=cfg.train.metric if d.dev else None, eval_batch_size=cfg.train.eval_batch_size)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="finetune")
    for report in (train_report, dev_report):
        if report is not None:
            trainer.print(report.summary())
    new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
    what = "regression" if regression else f"{len(label_map)} labels: {', '.join(label_map.names[:10])}"
    if resume is None:
        trainer.print(f"initialised from {m.init_from}: weights only, fresh optimizer and schedule; "
                      f"{what}" + (f"; new: {', '.join(new)}" if new else ""))
    if resume_requested == "auto" and resume is None:
        trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
    return trainer


def check_finetune_config(cfg) -> None:
    d = cfg.data
    if not cfg.model.init_from:
        raise UserError("no model to fine-tune: give --model DIR (model.init_from), a berts or Hugging Face "
                        "BERT directory")
    if not d.train:
        raise UserError("no training data: give --train FILE (data.train)")
    check_metric(cfg.train.metric, d.task)
    if cfg.train.patience and not d.dev:
        raise UserError("train.patience (early stopping) needs an evaluation file: give --dev FILE")


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


def read_table(path, d, *, labels: bool = True, task: str | None = None):
    """read_examples with a FinetuneData section's column settings: (examples, report)."""
    from berts.data.tables import read_examples

    return read_examples(
        path, text_column=d.text_column, text_pair_column=d.pair_column,
        label_column=d.label_column if labels else None, format=d.format, header=d.header,
        skip_bad_rows=d.skip_bad_rows, task=task or d.task)


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


def load_classifier(directory, device: str = "auto"):
    """(model, tokenizer, label_map or None, settings) of a fine-tuned directory, ready to serve."""
    from berts.data.labels import LabelMap
    from berts.heads import BertForSequenceClassification
    from berts.hf import load
    from berts.tokenizer import load_tokenizer
    from berts.train.distributed import resolve_device

    model = load(directory)
    if not isinstance(model, BertForSequenceClassification):
        raise UserError(f"{directory}: a {type(model).__name__}, not a fine-tuned classification model "
                        "(fine-tune it first with `berts finetune`)")
    tokenizer = load_tokenizer(directory)
    label_map = None if model.is_regression else LabelMap.from_config(model.config)
    settings = dict(model.config.extra.get(SETTINGS_KEY) or {})
    model.to(resolve_device(device)).eval()
    # serving: linear layers on real tokens only, packed attention rows, last layer on [CLS] only
    model.set_fast_path(unpad=True, pack=True, sparse_output=True)
    return model, tokenizer, label_map, settings
