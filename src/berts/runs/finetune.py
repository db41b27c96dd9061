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
from berts.data.tables import SETTINGS_KEY, check_max_length, read_table
from berts.errors import UserError
from berts.runs.common import base_config, claim_output


# ----------------------------------------------------------------------------- fine-tuning
def finetuning_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None,
                   overwrite: bool = False):
    """The Trainer of a fine-tuning run: the tables of ``cfg.data`` -> ClassificationDataset, the
    model of ``model.init_from`` with a (new or kept) classification head, or a new model from
    ``model.preset``/``model.config`` and ``model.tokenizer`` (from scratch, the usual baseline),
    evaluation on data.dev. ``log.out`` is claimed first, as in pretraining_run."""
    from berts.data.classification import ClassificationDataset
    from berts.data.labels import LabelMap
    from berts.model.heads import BertForSequenceClassification
    from berts.tasks.classification import ClassificationTask
    from berts.tokenizer.wordpiece import load_tokenizer
    from berts.train import distributed
    from berts.train.checkpoint import seed_all
    from berts.train.trainer import Trainer

    check_finetune_config(cfg)
    if cfg.train.early_exit:  # FastBERT's self-distillation: its own task and data rules
        from berts.compress.fastbert import early_exit_run

        return early_exit_run(cfg, resume, dist, resume_requested=resume_requested, overwrite=overwrite)
    d, m, t = cfg.data, cfg.model, cfg.train
    if d.task == "seq2seq":
        from berts.runs.seq2seq import (
            seq2seq_run,  # seq2seq imports base_config from here's sibling
        )

        return seq2seq_run(cfg, resume, dist, resume_requested=resume_requested, overwrite=overwrite)
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
    model.config.extra[SETTINGS_KEY] = {
        "task": d.task, "text_column": d.text_column, "pair_column": d.pair_column, "label_column": d.label_column,
        "format": d.format, "header": d.header, "max_length": max_length}
    if not regression and t.positive_label is not None:
        model.config.extra[SETTINGS_KEY]["positive_label"] = t.positive_label  # f1 of `berts evaluate` too
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






def load_for_finetuning(directory, changes: dict, ignore_mismatched_sizes: bool):
    """BertForSequenceClassification from ``directory`` with ``changes`` (the labels) to its config.
    A weight whose shape does not fit is an error naming the weights, as in transformers, unless
    ``ignore_mismatched_sizes`` (then it is re-initialised and listed as new); a head the directory
    does not have is new (the usual case: a pretrained model, a new classifier)."""
    from berts.hf import _normalise_keys, read_state_dict
    from berts.model.heads import BertForSequenceClassification

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
