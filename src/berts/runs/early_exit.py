"""The early-exit run (``berts finetune --early-exit``, ``train.early_exit: true``): the students
of a fine-tuned classifier learn its final classifier by self-distillation (berts.compress.early_exit.exits)."""
from __future__ import annotations

from berts.compress.early_exit.exits import (
    BertForSequenceClassificationWithExits,
    SelfDistillationTask,
)
from berts.errors import UserError
from berts.config.schema import FinetuneData
from berts.data.classification import ClassificationDataset
from berts.data.labels import LabelMap
from berts.data.tables import check_max_length, read_table
from berts.hf import load
from berts.hf.kinds import require_kind
from berts.model.heads import BertForSequenceClassification
from berts.runs.common import claim_output
from berts.tokenizer.wordpiece import load_tokenizer
from berts.train import distributed
from berts.train.checkpoint import seed_all
from berts.train.trainer import Trainer


def model_columns(d, config):
    """data.* keys left at their defaults take the model's fine-tuning settings (its text column,
    format, max length), as `berts evaluate` does: the exits learn on the text the model was tuned on."""
    import dataclasses

    settings = config.finetune_data or {}
    default = FinetuneData()
    changes = {k: settings[k] for k in ("text_column", "pair_column", "label_column", "format", "header", "max_length")
               if settings.get(k) is not None and getattr(d, k) == getattr(default, k)}
    return dataclasses.replace(d, **changes)


def early_exit_run(cfg, resume=None, dist=None, *, resume_requested=None, overwrite: bool = False):
    """The Trainer of `berts finetune --early-exit` (``train.early_exit: true``): ``model.init_from``
    is a fine-tuned classifier; its students are trained by self-distillation on the text of
    ``data.train`` (its labels, if any, are not read); ``data.dev``, labelled or not, is evaluated
    (agreement of each student with the final classifier; accuracy at speed 0.5 with labels).
    The other finetune keys (optimizer, schedule, epochs, budget, checkpoints) mean what they do there."""
    import warnings

    d, m = cfg.data, cfg.model  # checked by berts.config.validate.check_finetune_config
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "finetune", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[m.init_from, m.tokenizer, d.train, d.dev], dist=dist, no_checkpoint=resume is None)

    require_kind(m.init_from, "classification", "--early-exit")  # config.json: before the weights load
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        source = load(m.init_from)
    if not isinstance(source, BertForSequenceClassification):
        raise UserError(f"{m.init_from}: a {type(source).__name__}, not a fine-tuned classifier (fine-tune it "
                        "first with `berts finetune`, then add exits with --early-exit)")
    missing = [k for k in source.loading_info["missing_keys"] if not k.startswith("fastbert.")]
    if missing:
        raise UserError(f"{m.init_from}: not a fine-tuned classifier: {len(missing)} weights are not in the checkpoint "
                        f"({', '.join(sorted(missing)[:4])}); the exits would learn a random classifier")
    if source.is_regression:
        raise UserError(f"{m.init_from}: a regression model; early exit is for classification")
    seed_all(cfg.train.seed)
    if isinstance(source, BertForSequenceClassificationWithExits):
        model = source  # its students go on from where they are
    else:
        model = BertForSequenceClassificationWithExits.from_classifier(source)
    d = model_columns(d, model.config)
    tokenizer = load_tokenizer(m.tokenizer or m.init_from)
    max_length = check_max_length(d.max_length, model.config.max_position_embeddings)
    train_examples, train_report = read_table(d.train, d, labels=False)
    train = ClassificationDataset(train_examples, tokenizer, max_length=max_length)
    dev = dev_report = None
    if d.dev:

        label_map = LabelMap.from_config(model.config)
        try:
            dev_examples, dev_report = read_table(d.dev, d)
        except UserError:  # no label column: unlabelled text is evaluated too (agreement only)
            dev_examples, dev_report = read_table(d.dev, d, labels=False)
            label_map = None
        dev = ClassificationDataset(dev_examples, tokenizer, label_map=label_map, max_length=max_length)
    task = SelfDistillationTask(model, train, dev, eval_batch_size=cfg.train.eval_batch_size)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="finetune --early-exit")
    for report in (train_report, dev_report):
        if report is not None:
            trainer.print(report.summary())
    if resume is None:
        trainer.print(f"early exit on {m.init_from}: {task.describe()}")
    return trainer
