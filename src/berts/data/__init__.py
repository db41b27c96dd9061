"""Data: corpora -> shards (``prepare``) -> masked batches (``PretrainingDataset``); labelled
tables -> classification batches (``ClassificationDataset``).

=================  ===========================================================
corpus.py          reading corpora (bert / plain / jsonl, .gz, dirs, globs), sentences:
                   the one reader of ``berts prepare`` and ``berts tokenizer train``
segment.py         Chinese word segmenters, lexicon entities, per-token unit bits
instances.py       Google BERT's instance algorithm with nsp / sop / none
shards.py          the shard format, writer and memory-mapped reader
pipeline.py        ``prepare``: the streaming, multi-process pipeline behind ``berts prepare``
masking.py         token / wwm / ngram / span / entity maskers (pure functions)
collate.py         padding, masking, sparse MLM targets, NSP/SOP labels, SBO inputs
dataset.py         the torch dataset and loader (DDP, loader workers, exact resume)
sampler.py         the resumable, DDP-aware batch sampler
tables.py          labelled rows from TSV / CSV / JSONL files, header detection
labels.py          ``LabelMap``: label names <-> class ids
classification.py  ``ClassificationDataset``: tokenized once, collated per batch
=================  ===========================================================

Every batch maker pads to ``berts.model.padding.pad_width`` (one rule, capped at the model's positions).

The torch-side names (``PretrainingDataset``, ``PretrainingCollator``,
``make_pretraining_loader``) are imported on first use, so ``prepare`` does not load torch.
"""
from __future__ import annotations

from berts.data.corpus import read_documents, split_sentences
from berts.data.masking import (
    MASKERS,
    MASKINGS,
    mask_batch,
    mask_entities,
    mask_ngrams,
    mask_spans,
    mask_tokens,
    mask_whole_words,
)
from berts.data.pipeline import format_summary, prepare
from berts.data.sampler import ResumableBatchSampler, consumed_state
from berts.data.shards import ShardReader

_LAZY = {
    "PretrainingDataset": "berts.data.dataset",
    "make_pretraining_loader": "berts.data.dataset",
    "PretrainingCollator": "berts.data.collate",
}

__all__ = [
    "prepare", "format_summary", "split_sentences", "read_documents", "ShardReader",
    "MASKERS", "MASKINGS", "mask_tokens", "mask_whole_words", "mask_ngrams", "mask_spans", "mask_entities",
    "mask_batch", "ResumableBatchSampler", "consumed_state", *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'berts.data' has no attribute {name!r}")
