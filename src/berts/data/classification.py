"""The classification / regression dataset: tokenized once, collated a whole batch at a time.

:class:`ClassificationDataset` collates from the ``(epoch, step, indices)`` items of
``ResumableBatchSampler`` (``DataLoader(ds, batch_size=None, sampler=sampler)``). Rows come from
berts.data.tables (``read_examples``), label ids from berts.data.labels (``LabelMap``); the batch
width is berts.model.padding's one rule (``pad_width``), capped at ``max_length``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import torch

from berts.data.labels import LabelMap
from berts.data.tables import Example
from berts.errors import UserError, where
from berts.model.padding import pad_width


class ClassificationDataset:
    """Tokenized once; ``ds[(epoch, step, indices)]`` is a padded batch of torch tensors.

    Ids live in one flat int32 array with per-example offsets (token types in int8, only for
    pairs), so a batch is gathered with numpy fancy indexing, never a per-token Python loop.
    """

    def __init__(self, examples: Sequence[Example], tokenizer: Any, *, label_map: LabelMap | None = None,
                 max_length: int = 128, pad_to_multiple_of: int | None = 8, regression: bool = False):
        examples = list(examples)
        if not examples:
            raise UserError("no examples to build a dataset from")
        if not isinstance(max_length, int) or max_length < 3:
            raise UserError(f"max length must be at least 3 ([CLS] and two [SEP]), got {max_length!r}")
        self.max_length = max_length
        self.pad_to_multiple_of = int(pad_to_multiple_of or 1)
        self.pad_id = int(tokenizer.pad_id)
        self.regression = bool(regression)

        ids, types = self._tokenize(examples, tokenizer, max_length)
        n = len(examples)
        self.lengths = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        self._offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self._offsets[1:])
        total = int(self._offsets[-1])
        self._ids = np.fromiter(chain.from_iterable(ids), dtype=np.int32, count=total)
        self._types = (np.fromiter(chain.from_iterable(types), dtype=np.int8, count=total)
                       if types is not None else None)
        self.lengths.flags.writeable = False

        self.label_map: LabelMap | None = None
        self.labels: np.ndarray | None = None  # per example: class ids (int64) or targets (float32)
        has_label = [e.label is not None for e in examples]
        if any(has_label):
            if not all(has_label):
                missing = examples[has_label.index(False)]
                raise UserError(f"{where(missing.path, missing.line)}: no label, while other examples have one")
            if self.regression:
                self.labels = np.array([self._target(e) for e in examples], dtype=np.float32)
            else:
                self.label_map = label_map if label_map is not None else LabelMap.from_examples(examples)
                encode = self.label_map.encode
                self.labels = np.array([encode(str(e.label), e.path, e.line) for e in examples], dtype=np.int64)
        elif label_map is not None and not self.regression:
            self.label_map = label_map

    @staticmethod
    def _tokenize(examples: list[Example], tokenizer: Any, max_length: int):
        """Token ids (and token types when there are pairs) per example, in example order."""
        paired = [i for i, e in enumerate(examples) if e.text_pair is not None]
        if not paired:
            enc = tokenizer([e.text for e in examples], max_length=max_length, truncation=True)
            return enc["input_ids"], None
        single = [i for i, e in enumerate(examples) if e.text_pair is None]
        ids: list = [None] * len(examples)
        types: list = [None] * len(examples)
        for group, pairs in ((paired, [examples[i].text_pair for i in paired]), (single, None)):
            if not group:
                continue
            enc = tokenizer([examples[i].text for i in group], pairs, max_length=max_length, truncation=True)
            for i, row_ids, row_types in zip(group, enc["input_ids"], enc["token_type_ids"]):
                ids[i], types[i] = row_ids, row_types
        return ids, types

    @staticmethod
    def _target(e: Example) -> float:
        try:
            value = float(e.label)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise UserError(f"{where(e.path, e.line)}: regression label '{e.label}' is not a finite number")
        return value

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def num_labels(self) -> int | None:
        """1 for regression, the label map's size for classification (None when unknown)."""
        if self.regression:
            return 1
        return len(self.label_map) if self.label_map is not None else None

    def __getitem__(self, item):
        if isinstance(item, tuple) and len(item) == 3:
            epoch, step, indices = item
            return self.collate(indices, epoch=epoch, step=step)
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            return self.example(int(item))
        raise TypeError(f"index with an int or an (epoch, step, indices) tuple, not {type(item).__name__}")

    def example(self, i: int) -> dict[str, Any]:
        """One example, unpadded: 1-D long tensors, a 0-d ``labels`` tensor and its ``index``."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"example {i} out of range for a dataset of {n}")
        i %= n
        lo, hi = int(self._offsets[i]), int(self._offsets[i + 1])
        out = {
            "input_ids": torch.from_numpy(self._ids[lo:hi].astype(np.int64)),
            "attention_mask": torch.ones(hi - lo, dtype=torch.long),
            "token_type_ids": (torch.from_numpy(self._types[lo:hi].astype(np.int64)) if self._types is not None
                               else torch.zeros(hi - lo, dtype=torch.long)),
            "index": i,
        }
        if self.labels is not None:
            out["labels"] = torch.tensor(self.labels[i])
        return out

    def collate(self, indices: Sequence[int] | np.ndarray, *, epoch: int = 0, step: int = 0) -> dict[str, Any]:
        """The batch of ``indices`` (in that order), right-padded to ``pad_width`` (the longest,
        rounded up to ``pad_to_multiple_of`` unless it is one row, never past ``max_length``)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise ValueError("an empty batch")
        lens = self.lengths[idx]
        # one row is never rounded up: nothing to align it with, and an unpadded row lets the
        # encoder skip its unpad machinery (batch-1 serving)
        multiple = 1 if idx.size == 1 else self.pad_to_multiple_of
        width = pad_width(int(lens.max()), multiple, cap=self.max_length)  # [B, W], W <= max_length
        positions = np.arange(width, dtype=np.int64)
        mask = positions[None, :] < lens[:, None]
        flat = (self._offsets[idx][:, None] + positions[None, :])[mask]
        input_ids = np.full(mask.shape, self.pad_id, dtype=np.int64)
        input_ids[mask] = self._ids[flat]
        token_type_ids = np.zeros(mask.shape, dtype=np.int64)
        if self._types is not None:
            token_type_ids[mask] = self._types[flat]
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask.astype(np.int64)),
            "token_type_ids": torch.from_numpy(token_type_ids),
            "index": torch.from_numpy(idx.copy()),
            "epoch": int(epoch),
            "step": int(step),
        }
        if self.labels is not None:
            batch["labels"] = torch.from_numpy(self.labels[idx])
        return batch
