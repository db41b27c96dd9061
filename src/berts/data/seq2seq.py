"""Source / target pairs for fine-tuning a BERT to generate (``berts finetune --task seq2seq``).

Rows come from berts.data.tables (the one reader: TSV, CSV, JSONL, with ``--source-column`` and
``--target-column``); each becomes ``[CLS] source [SEP] target [SEP]``, the source as segment A
(token type 0), the target with its closing [SEP] as segment B (type 1), trained under UniLM's
seq2seq mask (A sees A; B sees A and B up to itself) with next-token targets on B
(objectives/lm.py): exactly the layout berts.serve.generate decodes in its seq2seq mode.

Too long a pair is cut: the target keeps up to ``max_target_length`` tokens (default: half of
``max_length``), the source the rest. ``ds[(epoch, step, indices)]`` is a padded batch (the
padding rule of berts.model.padding):

    input_ids [B, S]  attention_mask [B, S]  token_type_ids [B, S]  lm_mode []  (seq2seq)
    lm_positions [N]  lm_labels [N]   (flat positions into [B*S] that predict B's tokens)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from berts.model.attention import MODES
from berts.data.masking import next_token_positions
from berts.data.tables import Example
from berts.errors import UserError
from berts.model.padding import pad_width


class Seq2SeqDataset:
    def __init__(self, examples: Sequence[Example], tokenizer: Any, *, max_length: int = 128,
                 max_target_length: int | None = None, pad_to_multiple_of: int | None = 8):
        examples = list(examples)
        if not examples:
            raise UserError("no examples to build a dataset from")
        if max_length < 5:
            raise UserError(f"max length must be at least 5 for a source and a target, got {max_length!r}")
        self.max_length = max_length
        self.max_target_length = max_target_length or max_length // 2
        self.multiple = pad_to_multiple_of
        self.pad_id = int(tokenizer.pad_id)
        for e in examples:
            if e.text_pair is None:
                raise UserError(f"{e.path}:{e.line}: no target text")
        self.examples = examples
        src = tokenizer.encode_ids_batch([e.text for e in examples])
        tgt = tokenizer.encode_ids_batch([e.text_pair for e in examples])
        cls, sep = int(tokenizer.cls_id), int(tokenizer.sep_id)
        self.ids, self.b_start = [], []
        for s, t in zip(src, tgt):
            t = t[:self.max_target_length - 1]  # its [SEP] counts
            s = s[:max_length - len(t) - 3]
            self.ids.append(np.asarray([cls, *s, sep, *t, sep], dtype=np.int64))
            self.b_start.append(len(s) + 2)
        self.lengths = np.fromiter(map(len, self.ids), dtype=np.int64, count=len(self.ids))
        self.b_start = np.asarray(self.b_start, dtype=np.int64)
        self.targets = [e.text_pair for e in examples]
        self.sources = [e.text for e in examples]

    def __len__(self) -> int:
        return len(self.ids)

    def source_ids(self, i: int) -> list[int]:
        """``[CLS] source [SEP]``: what generation starts from."""
        return self.ids[i][:self.b_start[i]].tolist()

    def __getitem__(self, item):
        epoch, step, indices = item
        indices = np.asarray(indices, dtype=np.int64)
        batch = self.batch(indices)
        batch["epoch"], batch["step"] = int(epoch), int(step)
        return batch

    def batch(self, indices) -> dict:
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        width = pad_width(int(lengths.max()), self.multiple, cap=self.max_length)
        ids = np.full((len(indices), width), self.pad_id, dtype=np.int64)
        for r, i in enumerate(indices.tolist()):
            ids[r, :lengths[r]] = self.ids[i]
        cols = np.arange(width)[None, :]
        real = cols < lengths[:, None]
        b_start = self.b_start[indices]
        types = (cols >= b_start[:, None]) & real
        positions = next_token_positions(lengths, b_start, width, target_only=True)
        return {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(real.astype(np.int64)),
            "token_type_ids": torch.from_numpy(types.astype(np.int64)),
            "lm_mode": torch.tensor(MODES.index("seq2seq")),
            "lm_positions": torch.from_numpy(positions.astype(np.int64)),
            "lm_labels": torch.from_numpy(ids.reshape(-1)[positions + 1]),
        }
