"""Batches for pretraining: pad, mask, and hand the model sparse MLM targets.

A batch is a dict of torch long tensors (S = ``berts.model.padding.pad_width``: the longest sequence
rounded up to a multiple of ``pad_to_multiple_of``, never past ``max_seq_length``, the model's
positions)::

    input_ids [B, S]  attention_mask [B, S] (1 = real token)  token_type_ids [B, S]
    mlm_positions [N]  flat indices into the [B*S] batch (row-major, sorted)
    mlm_labels [N]     original ids there
    next_sentence_label [B]   (nsp/sop data; 0 = in order / real next, 1 = swapped / random)
    sbo_left [N], sbo_right [N], sbo_rel [N]   (with sbo: flat positions of the tokens just
                       before and after each masked token's span, and its place in the span, 0..9)
    lm_mode []         (``lm_objective``: the batch's attention mode, an index into
                       berts.model.attention.MODES; see masking.draw_mode)
    lm_positions [N], lm_labels [N]   (``lm_objective`` clm / seq2seq, instead of the MLM
                       targets: flat positions whose next token is predicted, and those next ids;
                       clm: every real token but the first; seq2seq: segment B's tokens)
    wso_positions [M], wso_labels [M]  (the ``wso`` transform, StructBERT: flat positions of
                       the shuffled trigrams' tokens, and the original ids there)
    ...                whatever the batch transforms add (below)

**The data hook: batch transforms.** ``transforms`` (a sequence of BatchTransform) run in order
after the masking, on numpy arrays (a RowBatch: the masked ids, which they may change in place,
the original ids, which tokens are real / special / MLM targets, the segment starts, the
sentence labels, the unit bits) with each row's own generator (the one the row was masked with,
continued: so a transform's draws are a pure function of the example's seed too, and resume
and DDP stay exact); each returns the batch keys it adds, numpy arrays made tensors here. An
objective (berts.objectives) then reads those keys. ``TRANSFORMS`` names them (``wso``).

All the work is vectorised numpy over the whole batch (masking too, except the per-row unit
choice of the n-gram and span maskers). Masking draws from one generator for the batch, or from
one generator per row (what PretrainingDataset passes): then a row's mask depends on its own
tokens and generator only, not on the other rows or the padded width S.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from berts.data.masking import LM_OBJECTIVES, MASKINGS, draw_mode, mask_batch, next_token_positions, shuffle_trigrams
from berts.data.segment import UNIT_START, WORD_START
from berts.model.padding import pad_width


@dataclass
class RowBatch:
    """What a batch transform sees: numpy arrays, [B, W] unless said."""

    input_ids: np.ndarray  # int64, after masking: a transform may change it in place
    original_ids: np.ndarray  # int64, before masking
    attention: np.ndarray  # bool: real tokens
    special: np.ndarray  # bool: special tokens ([CLS], [SEP], ...)
    masked: np.ndarray  # bool: the MLM targets (replaced by [MASK], a random id, or kept)
    b_start: np.ndarray  # [B] int64: segment B's first token (the length when there is none)
    labels: np.ndarray  # [B] int64: the instance's sentence label (-1: none)
    bits: np.ndarray | None  # uint8 unit bits (berts.data.segment), when stored
    rng: list  # [B] numpy Generators, one per row

    @property
    def free(self) -> np.ndarray:
        """bool: real tokens that are neither special nor MLM targets."""
        return self.attention & ~self.special & ~self.masked


class BatchTransform:
    """A data hook (see the module docstring): ``__call__(rows: RowBatch) -> {key: array}``;
    ``keys``: the batch keys it adds."""

    name: str = ""
    keys: tuple[str, ...] = ()

    def __call__(self, rows: RowBatch) -> dict[str, np.ndarray]:
        raise NotImplementedError


TRANSFORMS: dict[str, type[BatchTransform]] = {}


def register_transform(cls: type[BatchTransform]) -> type[BatchTransform]:
    """Class decorator: make a batch transform findable by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__}: a batch transform needs a name")
    TRANSFORMS[cls.name] = cls
    return cls


@register_transform
class TrigramShuffle(BatchTransform):
    """StructBERT's word structural objective (masking.shuffle_trigrams): ``rate`` of the
    trigrams of free tokens shuffled; targets for objectives.structure.WordStructure."""

    name = "wso"
    keys = ("wso_positions", "wso_labels")

    def __init__(self, rate: float = 0.05):
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"the word structure rate must be in (0, 1], got {rate!r}")
        self.rate = rate

    def __call__(self, rows):
        positions, labels = shuffle_trigrams(rows.input_ids, rows.free, rows.rng, self.rate)
        return {"wso_positions": positions, "wso_labels": labels}


class PretrainingCollator:
    """Turns instances into a masked, padded batch (see the module docstring).

    ``continuation`` (bool per id, ``Tokenizer.is_continuation``) gives English word starts when
    instances carry no unit bits; ``sentence_labels`` adds ``next_sentence_label``;
    ``max_seq_length`` caps the padded width (the model's positions; None: no cap).
    ``lm_objective`` (UniLM, heads.BertForUnifiedLM): ``unilm`` (the masks as usual, under the
    batch's mode), ``clm`` or ``seq2seq`` (no masking: next-token targets); None: BERT.
    ``transforms``: batch transforms run after the masking (the data hook, module docstring).
    """

    def __init__(self, *, vocab_size: int, pad_id: int, mask_id: int, special_ids: Sequence[int],
                 continuation: np.ndarray | None = None, masking: str = "token", mask_prob: float = 0.15,
                 max_predictions_per_seq: int = 20, sbo: bool = False, pad_to_multiple_of: int | None = 8,
                 sentence_labels: bool = True, max_seq_length: int | None = None, lm_objective: str | None = None,
                 transforms: Sequence[BatchTransform] = (), **masking_options):
        if masking not in MASKINGS:
            raise ValueError(f"masking must be one of {', '.join(MASKINGS)}, got {masking!r}")
        self.vocab_size = vocab_size
        self.pad_id = pad_id
        self.mask_id = mask_id
        self.special_ids = np.asarray(sorted(special_ids), dtype=np.int64)
        self.continuation = None if continuation is None else np.asarray(continuation, dtype=bool)
        if lm_objective is not None and lm_objective not in LM_OBJECTIVES:
            raise ValueError(f"lm_objective must be one of {', '.join(LM_OBJECTIVES)}, got {lm_objective!r}")
        self.lm_objective = lm_objective
        self.masking = masking
        self.mask_prob = mask_prob
        self.max_predictions = max_predictions_per_seq
        self.sbo = sbo
        self.multiple = pad_to_multiple_of
        self.sentence_labels = sentence_labels
        self.max_seq_length = max_seq_length
        self.transforms = tuple(transforms)
        self.options = masking_options

    def _starts(self, ids: np.ndarray, bits: np.ndarray | None) -> np.ndarray | None:
        if self.masking == "token":
            return None
        if self.masking == "entity":
            if bits is None:
                raise ValueError("entity masking needs unit bits (prepare with a lexicon or a Chinese segmenter)")
            return (bits & UNIT_START).astype(bool)
        if bits is not None:
            return (bits & WORD_START).astype(bool)
        if self.continuation is None:
            raise ValueError(f"{self.masking} masking needs the tokenizer's continuation table")
        return ~self.continuation[ids]

    def width(self, longest: int) -> int:
        """The padded width S of a batch whose longest instance is ``longest`` tokens."""
        return pad_width(longest, self.multiple, cap=self.max_seq_length)

    def collate_arrays(self, ids: np.ndarray, lengths: np.ndarray, b_start: np.ndarray, labels: np.ndarray,
                       bits: np.ndarray | None, rng: np.random.Generator | Sequence[np.random.Generator],
                       mode: int | None = None) -> dict:
        """The batch from a padded id matrix [B, W] (W = ``self.width(longest)``).

        ``mode`` (with ``lm_objective``): the batch's attention mode (PretrainingDataset draws it
        from (seed, epoch, step), masking.draw_mode); None: drawn from ``rng`` when it is one
        generator, else from seed 0 and step 0.

        ``rng`` is one generator for the batch, or a sequence of B generators, one per row (each
        row's mask then comes from its own generator alone, whatever the batch and W).
        """
        width = ids.shape[1]
        cols = np.arange(width)[None, :]
        lengths = np.asarray(lengths)
        attention = cols < lengths[:, None]
        token_types = (cols >= np.asarray(b_start)[:, None]) & attention
        if self.lm_objective is not None and mode is None:
            mode = draw_mode(self.lm_objective, int(rng.integers(2 ** 31)) if isinstance(rng, np.random.Generator)
                             else 0, 0, 0)
        if self.lm_objective in ("clm", "seq2seq"):  # next-token targets, nothing masked
            positions = next_token_positions(lengths, b_start, width, self.lm_objective == "seq2seq")
            flat = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
            return {
                "input_ids": torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)),
                "attention_mask": torch.from_numpy(attention.astype(np.int64)),
                "token_type_ids": torch.from_numpy(token_types.astype(np.int64)),
                "lm_mode": torch.tensor(mode),
                "lm_positions": torch.from_numpy(positions.astype(np.int64)),
                "lm_labels": torch.from_numpy(flat[positions + 1]),
            }
        starts = self._starts(ids, bits)
        options = dict(masking=self.masking, vocab_size=self.vocab_size, mask_id=self.mask_id,
                       special_ids=self.special_ids, mask_prob=self.mask_prob,
                       max_predictions=self.max_predictions, sbo=self.sbo, **self.options)
        masked, positions, mlm_labels, info = mask_batch(ids, lengths, starts, rng, **options)
        batch = {
            "input_ids": torch.from_numpy(np.ascontiguousarray(masked, dtype=np.int64)),
            "attention_mask": torch.from_numpy(attention.astype(np.int64)),
            "token_type_ids": torch.from_numpy(token_types.astype(np.int64)),
            "mlm_positions": torch.from_numpy(positions.astype(np.int64)),
            "mlm_labels": torch.from_numpy(mlm_labels.astype(np.int64)),
        }
        if self.lm_objective is not None:
            batch["lm_mode"] = torch.tensor(mode)
        if self.sentence_labels and self.lm_objective is None:
            batch["next_sentence_label"] = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        if self.transforms:
            rows = RowBatch(masked, np.asarray(ids, dtype=np.int64), attention, np.isin(ids, self.special_ids),
                            np.isin(np.arange(ids.size), positions).reshape(ids.shape), np.asarray(b_start, np.int64),
                            np.asarray(labels, np.int64), bits,
                            [rng] * len(ids) if isinstance(rng, np.random.Generator) else list(rng))
            for transform in self.transforms:
                for key, value in transform(rows).items():
                    batch[key] = torch.from_numpy(np.ascontiguousarray(value))
            batch["input_ids"] = torch.from_numpy(np.ascontiguousarray(rows.input_ids, dtype=np.int64))
        if self.sbo:
            batch["sbo_left"] = torch.from_numpy(np.ascontiguousarray(info[:, 0], dtype=np.int64))
            batch["sbo_right"] = torch.from_numpy(np.ascontiguousarray(info[:, 1], dtype=np.int64))
            batch["sbo_rel"] = torch.from_numpy(np.ascontiguousarray(info[:, 2], dtype=np.int64))
        return batch

    def __call__(self, examples: Sequence[dict], rng: np.random.Generator | int = 0) -> dict:
        """Collate instances given as dicts with ``input_ids`` (1-D ids with [CLS]/[SEP]) and
        optionally ``b_start``, ``label`` and ``units`` (bits); ``rng`` a generator or a seed."""
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        lengths = np.array([len(e["input_ids"]) for e in examples], dtype=np.int64)
        width = self.width(int(lengths.max(initial=1)))
        ids = np.full((len(examples), width), self.pad_id, dtype=np.int64)
        has_bits = bool(examples) and all("units" in e for e in examples)
        bits = np.zeros((len(examples), width), dtype=np.uint8) if has_bits else None
        for r, e in enumerate(examples):
            ids[r, :lengths[r]] = e["input_ids"]
            if bits is not None:
                bits[r, :lengths[r]] = e["units"]
        b_start = np.array([e.get("b_start", n) for e, n in zip(examples, lengths)], dtype=np.int64)
        labels = np.array([e.get("label", -1) for e in examples], dtype=np.int64)
        return self.collate_arrays(ids, lengths, b_start, labels, bits, rng)
