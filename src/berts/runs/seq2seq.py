"""The sequence-to-sequence run (``berts finetune --task seq2seq``): UniLM's prefix LM on source/target pairs."""
from __future__ import annotations

import warnings

from berts.data.tables import check_max_length
from berts.runs.common import base_config, claim_output
from berts.runs.pretrain import set_model_fields
from berts.data.seq2seq import Seq2SeqDataset
from berts.data.tables import read_examples
from berts.hf import from_pretrained
from berts.model.heads import BertForUnifiedLM
from berts.tasks.seq2seq import Seq2SeqTask
from berts.tokenizer.wordpiece import load_tokenizer
from berts.train import distributed
from berts.train.checkpoint import seed_all
from berts.train.trainer import Trainer


def seq2seq_run(cfg, resume=None, dist=None, *, resume_requested: str | None = None, overwrite: bool = False):
    """The Trainer of ``finetune --task seq2seq``: data.source_column / target_column of data.train
    (and data.dev) -> Seq2SeqDataset, a BertForUnifiedLM from model.init_from (any BERT with or
    without an MLM head: a new head is initialised) or from scratch, Seq2SeqTask (seq2seq mask,
    next-token loss on the target; evaluation: loss, token_acc, bleu, rouge_l)."""

    d, m = cfg.data, cfg.model
    dist = dist or distributed.setup(cfg.impl.device)
    claim_output(cfg, "finetune", resume=bool(resume is not None or resume_requested), overwrite=overwrite,
                 protect=[m.init_from, m.config, m.tokenizer, d.train, d.dev], dist=dist, no_checkpoint=resume is None)
    tokenizer = load_tokenizer(m.tokenizer or m.init_from)

    def read(path):
        return read_examples(path, text_column=d.source_column, text_pair_column=d.target_column, format=d.format,
                             header=d.header, skip_bad_rows=d.skip_bad_rows)

    train_examples, train_report = read(d.train)
    dev_examples, dev_report = read(d.dev) if d.dev else (None, None)
    base = base_config(cfg, tokenizer)
    max_length = check_max_length(d.max_length, m.overrides.get("max_position_embeddings")
                                  or base.max_position_embeddings)
    train = Seq2SeqDataset(train_examples, tokenizer, max_length=max_length)
    dev = Seq2SeqDataset(dev_examples, tokenizer, max_length=max_length) if dev_examples else None
    seed_all(cfg.train.seed)
    changes = {k: v for k, v in m.overrides.items() if k != "classifier_dropout"}
    if m.init_from:
        with warnings.catch_warnings():  # said below instead
            warnings.simplefilter("ignore")
            model = from_pretrained(BertForUnifiedLM, m.init_from, ignore_mismatched_sizes=m.ignore_mismatched_sizes,
                                    **changes)
    else:
        model = BertForUnifiedLM(base.replace(**changes))
        model.loading_info = {"missing_keys": [], "unexpected_keys": []}
    set_model_fields(model.config, ["seq2seq"])  # generation runs it in seq2seq mode, reading the next token
    model.config.finetune_data = {"task": "seq2seq", "source_column": d.source_column,
                                        "target_column": d.target_column, "format": d.format, "header": d.header,
                                        "max_length": max_length}
    task = Seq2SeqTask(model, train, dev, metric=cfg.train.metric if d.dev else None,
                       eval_batch_size=cfg.train.eval_batch_size, tokenizer=tokenizer)
    trainer = Trainer(task, cfg, tokenizer=tokenizer, resume=resume, dist=dist, title="finetune")
    for report in (train_report, dev_report):
        if report is not None:
            trainer.print(report.summary())
    new = sorted({k.rsplit(".", 1)[0] for k in model.loading_info["missing_keys"]})
    if resume is None:
        trainer.print(f"seq2seq from {m.init_from or 'scratch'}: {len(train)} pairs"
                      + (f"; new: {', '.join(new)}" if new else ""))
    return trainer
