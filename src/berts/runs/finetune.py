"""The fine-tuning run (``berts finetune``): a table -> a task model -> the Trainer.

    cfg = load_config(FinetuneConfig, None, ["model.init_from=runs/tiny/final", "data.train=train.tsv"])
    finetuning_run(cfg).fit()
"""
from __future__ import annotations

import warnings
from pathlib import Path

from berts.config.validate import check_finetune_config
from berts.data.labels import (
    check_labels,
    drop_unknown_labels,
    resolve_class_weights,
    resolve_positive,
)
from berts.data.tables import check_max_length, read_table
from berts.errors import UserError
from berts.runs.common import base_config, claim_output
from berts.tasks import registry
from berts.data.classification import ClassificationDataset
from berts.data.labels import LabelMap
from berts.hf import _normalise_keys, read_state_dict
from berts.model.heads import BertForSequenceClassification
from berts.runs.early_exit import early_exit_run
from berts.tasks.classification import ClassificationTask
from berts.tokenizer.wordpiece import load_tokenizer
from berts.train import distributed
from berts.train.checkpoint import seed_all
from berts.train.trainer import Trainer

# train.metric's choices per task: the registry's (kept under these names for callers)
CLASSIFICATION_METRICS = registry.TASKS["classification"].metrics
REGRESSION_METRICS = registry.TASKS["regression"].metrics
SEQ2SEQ_METRICS = registry.TASKS["seq2seq"].metrics


# ----------------------------------------------------------------------------- fine-tuning
def finetuning_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None,
                   overwrite: bool = False):
    """The Trainer of ``berts finetune``: the run of ``data.task``'s registry entry
    (berts.tasks.registry), or FastBERT's with ``train.early_exit``."""
    check_finetune_config(cfg)
    if cfg.train.early_exit:  # FastBERT's self-distillation: its own task and data rules

        return early_exit_run(cfg, resume, dist, resume_requested=resume_requested, overwrite=overwrite)
    run = registry.load(registry.get(cfg.data.task).run)
    return run(cfg, resume, dist, resume_requested=resume_requested, overwrite=overwrite)


def classification_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None,
                       overwrite: bool = False):
    """``--task classification`` / ``regression``: the tables of ``cfg.data`` -> ClassificationDataset, the
    model of ``model.init_from`` with a (new or kept) classification head, or a new model from
    ``model.preset``/``model.config`` and ``model.tokenizer`` (from scratch, the usual baseline),
    evaluation on data.dev. ``log.out`` is claimed first, as in pretraining_run."""

    d, m, t = cfg.data, cfg.model, cfg.train
    check_finetune_config(cfg)
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "finetune", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[m.init_from, m.config, m.tokenizer, d.train, d.dev], dist=dist, no_checkpoint=resume is None)
    regression = d.task == "regression"
    tokenizer = load_tokenizer(m.tokenizer or m.init_from)
    train_examples, train_report = read_table(d.train, d)
    dev_examples, dev_report = read_table(d.dev, d) if d.dev else (None, None)
    label_map = None if regression else LabelMap.from_examples(train_examples)
    if label_map is not None:
        check_labels(label_map, d.train, "training")
    if dev_examples:
        dev_examples = drop_unknown_labels(dev_examples, label_map, dev_report, d.skip_bad_rows)
        if label_map is not None:
            check_labels(LabelMap.from_examples(dev_examples), d.dev, "evaluation")
    base = base_config(cfg, tokenizer)
    max_length = check_max_length(d.max_length, m.overrides.get("max_position_embeddings")
                                  or base.max_position_embeddings)
    train = ClassificationDataset(train_examples, tokenizer, label_map=label_map, max_length=max_length,
                                  regression=regression)
    dev = (ClassificationDataset(dev_examples, tokenizer, label_map=label_map, max_length=max_length,
                                 regression=regression) if dev_examples else None)

    changes = dict(m.overrides)
    if regression:
        changes.update(num_labels=1, problem_type="regression", id2label=None, label2id=None)
    else:
        changes.update(label_map.to_config())
    class_weights = None if regression else resolve_class_weights(t.class_weights, label_map, train.labels)
    positive = 1 if regression else resolve_positive(t.positive_label, label_map)
    seed_all(cfg.train.seed)
    if m.init_from:
        model = load_for_finetuning(m.init_from, changes, m.ignore_mismatched_sizes)
    else:
        model = BertForSequenceClassification(base.replace(**changes))
        model.loading_info = {"missing_keys": [], "unexpected_keys": []}
    model.config.finetune_data = {
        "task": d.task, "text_column": d.text_column, "pair_column": d.pair_column, "label_column": d.label_column,
        "format": d.format, "header": d.header, "max_length": max_length}
    if not regression and t.positive_label is not None:
        model.config.finetune_data["positive_label"] = t.positive_label  # f1 of `berts evaluate` too
    task = ClassificationTask(model, train, dev, regression=regression,
                              num_labels=1 if regression else len(label_map),
                              metric=cfg.train.metric if d.dev else None, eval_batch_size=cfg.train.eval_batch_size,
                              label_smoothing=0.0 if regression else t.label_smoothing, class_weights=class_weights,
                              positive=positive, label_names=None if regression else label_map.names)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="finetune")
    for report in (train_report, dev_report):
        if report is not None:
            trainer.print(report.summary())
    new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
    what = "regression" if regression else f"{len(label_map)} labels: {', '.join(label_map.names[:10])}"
    if resume is None and m.init_from:
        trainer.print(f"initialised from {m.init_from}: weights only, fresh optimizer and schedule; "
                      f"{what}" + (f"; new: {', '.join(new)}" if new else ""))
    elif resume is None:
        trainer.print(f"from scratch: every weight random ({m.config or 'preset ' + str(m.preset)}, "
                      f"seed {cfg.train.seed}), tokenizer {m.tokenizer}; {what}")
    if resume_requested == "auto" and resume is None:
        trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
    return trainer


class RunContext:
    """What a registered task's ``from_run(run)`` gets from the generic fine-tuning run: the
    config (``cfg``), the tokenizer, the model config to start from (``base``: the directory's, or
    the preset's with the tokenizer's vocabulary), the tables of data.train / data.dev read with
    data's column settings, the task's ``options`` ({name: value}), and ``model(cls, **changes)``:
    the model to fine-tune."""

    def __init__(self, cfg, tokenizer, base):
        self.cfg, self.tokenizer, self.base = cfg, tokenizer, base
        self.reports: list = []  # the tables' read reports, printed at the start
        # the task's own options (TaskSpec.options): their defaults, updated by the config's task: section
        self.options = registry.options_of(cfg.data.task, cfg.task.overrides)

    @property
    def max_length(self) -> int:
        m = self.cfg.model
        return check_max_length(self.cfg.data.max_length, m.overrides.get("max_position_embeddings")
                                or self.base.max_position_embeddings)

    def table(self, which: str = "train", *, labels: bool = True):
        """The rows (berts.data.tables.Example) of data.train or data.dev (None without a dev file)."""
        path = getattr(self.cfg.data, which)
        if not path:
            return None
        examples, report = read_table(path, self.cfg.data, labels=labels, task="classification")
        self.reports.append(report)
        return examples

    def model(self, cls, **changes):
        """``cls`` from model.init_from (its weights, ``changes`` to its config; a head it lacks is
        new) or, from scratch, a new ``cls`` of the base config with ``changes``."""
        m = self.cfg.model
        changes = {**m.overrides, **changes}
        if m.init_from:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                return cls.from_pretrained(m.init_from, ignore_mismatched_sizes=m.ignore_mismatched_sizes, **changes)
        return cls(self.base.replace(**changes))


def plugin_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None,
               overwrite: bool = False):
    """The run of a registered task without a run of its own: claim log.out, load the tokenizer,
    then ``Task.from_run(RunContext)`` builds the task (its data, its model), and the Trainer
    trains it. The trained directory keeps data's settings (config.finetune_data) with the task's name."""

    d, m = cfg.data, cfg.model
    spec = registry.get(d.task)
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "finetune", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[m.init_from, m.config, m.tokenizer, d.train, d.dev], dist=dist, no_checkpoint=resume is None)
    tokenizer = load_tokenizer(m.tokenizer or m.init_from)
    run = RunContext(cfg, tokenizer, base_config(cfg, tokenizer))
    seed_all(cfg.train.seed)
    task = registry.load(spec.task).from_run(run)
    task.metric = (cfg.train.metric or spec.metrics[0]) if d.dev else None  # picks best/, as for every task
    main = next(iter(task.modules().values()))
    if hasattr(main, "config") and hasattr(main.config, "extra"):
        main.config.finetune_data = {  # beside what the task keeps there (its own settings)
            **(main.config.finetune_data or {}), "task": d.task, "text_column": d.text_column, "pair_column": d.pair_column,
            "label_column": d.label_column, "format": d.format, "header": d.header, "max_length": run.max_length}
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="finetune")
    for report in run.reports:
        trainer.print(report.summary())
    if resume_requested == "auto" and resume is None:
        trainer.print(f"--resume auto: no checkpoint in {cfg.log.out}, starting a new run")
    return trainer


def load_for_finetuning(directory, changes: dict, ignore_mismatched_sizes: bool):
    """BertForSequenceClassification from ``directory`` with ``changes`` (the labels) to its config.
    A weight whose shape does not fit is an error naming the weights, as in transformers, unless
    ``ignore_mismatched_sizes`` (then it is re-initialised and listed as new); a head the directory
    does not have is new (the usual case: a pretrained model, a new classifier)."""

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        model = BertForSequenceClassification.from_pretrained(directory, ignore_mismatched_sizes=True, **changes)
    missing = model.loading_info["missing_keys"]
    if missing and not ignore_mismatched_sizes:
        saved = _normalise_keys(read_state_dict(directory), model)
        mismatched = [k for k in missing if k in saved]
        if mismatched:
            shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
            first = mismatched[0]
            expected = shapes.get(first)
            note = f" (the model expects {expected})" if expected is not None else ""
            raise UserError(
                f"{directory}: {len(mismatched)} weights do not fit the model its config.json describes: "
                f"{', '.join(mismatched[:4])}{', ...' if len(mismatched) > 4 else ''}; {first} has shape "
                f"{tuple(saved[first].shape)}{note}: check config.json, or pass --ignore-mismatched-sizes "
                f"(model.ignore_mismatched_sizes) to re-initialise them (e.g. a head with another number of labels)")
    return model


check_metric = registry.check_metric  # the old name
