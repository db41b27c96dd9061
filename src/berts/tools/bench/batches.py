"""What each side is fed: the same batches for berts and transformers, made by berts' data code.

* pretraining batches go through ``berts.data.collate.PretrainingCollator`` (its 15% token
  masking with 80/10/10 replacement and Google's per-row cap, its padding by
  ``berts.model.padding.pad_width``, its sparse MLM targets); transformers gets the same batch with the
  targets as dense ``labels`` ([B, S], -100 = not predicted);
* classification batches are padded by the same rule (``pad_width``, capped at ``--seq``);
* a pair is truncated as ``berts prepare`` truncates it (``berts.data.instances.truncate_pair``:
  longest first, each token from the front or the back);
* ``prepared``: batches of ``PretrainingDataset`` over shards `berts prepare` wrote, exactly as
  the trainer gets them.

The default corpus needs no download: the Python reference manual's topic texts that ship
with CPython (``pydoc_data.topics``), one topic a document, one paragraph a line.
"""
from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from berts.tools.bench.options import BenchOptions
from berts.model.config import BertConfig
from berts.data.collate import PretrainingCollator
from berts.data.instances import truncate_pair
from berts.errors import UserError
from berts.model.padding import pad_width
from berts.tokenizer.wordpiece import CLS as CLS_TOKEN
from berts.tokenizer.wordpiece import MASK as MASK_TOKEN
from berts.tokenizer.wordpiece import PAD as PAD_TOKEN
from berts.tokenizer.wordpiece import SEP as SEP_TOKEN
from berts.tokenizer.wordpiece import SPECIAL_TOKENS
from berts.data.corpus import Corpus, document_lines

@dataclass(frozen=True)
class Specials:
    """The special-token ids the batches use, read from a tokenizer: never literals, so that a
    vocabulary laid out otherwise gets batches in its own ids. ``first``: the first ordinary id
    (the random ids of the fixed regime are drawn from there up)."""

    pad: int
    cls: int
    sep: int
    mask: int
    ids: tuple[int, ...]
    first: int

    @classmethod
    def of(cls, tokenizer=None) -> "Specials":
        """``tokenizer``: a berts Tokenizer; None: the layout Tokenizer.train gives every vocabulary
        the bench trains (SPECIAL_TOKENS first, in order)."""
        if tokenizer is None:
            ids = {name: i for i, name in enumerate(SPECIAL_TOKENS)}
            pad, cls_, sep, mask = (ids[n] for n in (PAD_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN))
        else:
            pad, cls_, sep, mask = tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id
            ids = {"unk": tokenizer.unk_id}
        special = tuple(sorted(set(ids.values()) | {pad, cls_, sep, mask}))
        return cls(pad=pad, cls=cls_, sep=sep, mask=mask, ids=special, first=max(special) + 1)


DEFAULT_SPECIALS = Specials.of()


# ------------------------------------------------------------------------- corpus
def default_corpus(path: Path) -> Path:
    """Write the Python reference manual's topics (shipped with CPython) as a plain corpus."""
    from pydoc_data.topics import topics

    docs = []
    for key in sorted(topics):
        paras = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", topics[key])]
        paras = [p for p in paras if len(p.split()) >= 3]
        if paras:
            docs.append("\n".join(paras))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def corpus_documents(path: Path) -> list[list[str]]:
    """Documents (blank-line separated) of paragraphs (one a line), read by the one corpus reader
    (berts.data.corpus, the `bert` format: what `berts prepare` and `tokenizer train` read)."""

    corpus = Corpus([path], input_format="bert")
    try:
        docs = [[line.strip() for line in document_lines(doc)[0] if line.strip()] for doc in corpus.documents()]
    except OSError as exc:
        raise UserError(f"{path}: cannot read the corpus ({exc.strerror})") from None
    docs = [d for d in docs if d]
    if sum(len(d) for d in docs) < 2:
        raise UserError(f"{path}: the corpus needs at least two non-empty lines")
    return docs


# ------------------------------------------------------------------------- batches
def pad_rows(rows: list[tuple[np.ndarray, np.ndarray]], seq: int, pad_id: int = DEFAULT_SPECIALS.pad
             ) -> dict[str, np.ndarray]:
    """Right-pad rows of (ids, type ids) to ``pad_width`` (the longest rounded up to 8, <= seq)."""
    width = pad_width(max(len(r[0]) for r in rows), 8, cap=seq)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for i, (r_ids, r_types) in enumerate(rows):
        ids[i, :len(r_ids)], types[i, :len(r_ids)], mask[i, :len(r_ids)] = r_ids, r_types, 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def dense_labels(batch: dict) -> torch.Tensor:
    """The collator's sparse targets (flat positions + ids) as transformers' dense [B, S] labels."""
    dense = torch.full_like(batch["input_ids"], -100).view(-1)
    dense[batch["mlm_positions"]] = batch["mlm_labels"]
    return dense.view(batch["input_ids"].shape)


def _pretraining_pair(ours: dict) -> dict:
    ours = {k: v for k, v in ours.items() if isinstance(v, torch.Tensor)}
    theirs = {k: ours[k] for k in ("input_ids", "attention_mask", "token_type_ids", "next_sentence_label")}
    theirs["labels"] = dense_labels(ours)
    lengths = ours["attention_mask"].sum(1)
    meta = {"tokens": int(lengths.sum()), "lengths": lengths.tolist(), "masked": len(ours["mlm_positions"])}
    return {"berts": ours, "transformers": theirs, "meta": meta}


class BatchMaker:
    """The same batches for both implementations: ``make(task, regime)`` -> each one's keyword arguments."""

    def __init__(self, opts: BenchOptions, config: BertConfig, paragraphs: list[list[np.ndarray]] | None,
                 dataset=None, tokenizer=None):
        self.opts, self.config = opts, config
        self.special = Specials.of(tokenizer)  # the ids of the tokenizer that encoded ``paragraphs``
        self.docs = paragraphs
        self.dataset = dataset  # PretrainingDataset over `berts prepare` shards: the "prepared" regime
        self.rng = np.random.default_rng(opts.seed)
        self.truncation_rng = random.Random(opts.seed)  # truncate_pair's front/back draws
        # the trainer's collator; the per-row cap as PretrainingDataset's automatic one (20 for 128)
        self.collator = PretrainingCollator(
            vocab_size=config.vocab_size, pad_id=self.special.pad, mask_id=self.special.mask,
            special_ids=self.special.ids, masking="token",
            mask_prob=opts.mask_prob, max_predictions_per_seq=math.ceil(opts.mask_prob * opts.seq),
            max_seq_length=opts.seq)
        self.collate_s: list[float] = []

    def _prepared(self) -> dict:
        """A batch as the trainer gets it: PretrainingDataset (our collator: padding, masking)."""
        n = len(self.dataset)
        indices = self.rng.choice(n, self.opts.batch, replace=n < self.opts.batch)
        t = time.perf_counter()
        ours = self.dataset.batch(indices, step=len(self.collate_s))
        self.collate_s.append(time.perf_counter() - t)
        return _pretraining_pair(ours)

    def _fixed_rows(self, pair: bool):
        """Rows of exactly ``seq`` random ids: [CLS] ... [SEP] (a pair: its [SEP] in the middle)."""
        s, v, sp = self.opts.seq, self.config.vocab_size, self.special
        rows = []
        for _ in range(self.opts.batch):
            ids = self.rng.integers(sp.first, v, s)
            ids[0] = sp.cls
            ids[-1] = sp.sep
            if pair:
                ids[s // 2 - 1] = sp.sep
            rows.append((ids, s // 2 if pair else s))
        return rows, self.rng.integers(0, 2, self.opts.batch)

    def _real_rows(self, pair: bool):
        """Paragraphs of the corpus: one (truncated to seq) or, for pretraining, A + B where B is
        the next paragraph half of the time (label 0) and a random one otherwise (label 1)."""
        s, rows, labels = self.opts.seq, [], []
        cls, sep = [self.special.cls], [self.special.sep]
        for _ in range(self.opts.batch):
            d = self.docs[self.rng.integers(len(self.docs))]
            i = int(self.rng.integers(len(d)))
            a = d[i]
            if not pair:
                a = a[:s - 2]
                rows.append((np.concatenate([cls, a, sep]), len(a) + 2))
                labels.append(int(self.rng.integers(2)))
                continue
            is_next = i + 1 < len(d) and self.rng.random() < 0.5
            if is_next:
                b = d[i + 1]
            else:
                other = self.docs[self.rng.integers(len(self.docs))]
                b = other[int(self.rng.integers(len(other)))]
            a, b, _, _ = truncate_pair(a, b, None, None, s - 3, self.truncation_rng)
            rows.append((np.concatenate([cls, a, sep, b, sep]), len(a) + 2))
            labels.append(0 if is_next else 1)  # the collator's and transformers' convention: 0 = B follows A
        return rows, np.array(labels)

    def make(self, task: str, regime: str) -> dict:
        if regime == "prepared":
            return self._prepared()
        pair = task == "pretrain"
        rows, labels = self._fixed_rows(pair) if regime == "fixed" else self._real_rows(pair)
        if task == "pretrain":  # rows as instances: the collator pads, masks and gives sparse targets
            examples = [{"input_ids": ids, "b_start": b_start, "label": int(y)}
                        for (ids, b_start), y in zip(rows, labels)]
            return _pretraining_pair(self.collator(examples, self.rng))
        arrays = pad_rows([(ids, np.zeros(len(ids), dtype=np.int64)) for ids, _ in rows], self.opts.seq,
                          self.special.pad)
        b = {k: torch.from_numpy(v) for k, v in arrays.items()}
        lengths = arrays["attention_mask"].sum(1)
        meta = {"tokens": int(lengths.sum()), "lengths": lengths.tolist(), "masked": 0}
        ours, theirs = dict(b), dict(b)
        if task == "finetune":
            ours["labels"] = theirs["labels"] = torch.from_numpy(labels.astype(np.int64))
        return {"berts": ours, "transformers": theirs, "meta": meta}
