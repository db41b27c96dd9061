"""A torch dataset over prepared shards that collates and masks whole batches.

Use it with the resumable sampler (``make_pretraining_loader`` does this)::

    sampler = ResumableBatchSampler(len(ds), batch_size, seed=seed, rank=rank, world_size=world)
    loader = DataLoader(ds, batch_size=None, sampler=sampler, num_workers=k)

Each sampler item ``(epoch, step, indices)`` becomes one batch (see berts.data.collate). Every
example is masked by its own generator, seeded with ``(seed, epoch, index)`` (dynamic masking:
a new mask every epoch) or, with ``static_masking=True``, ``(seed, index)`` (the same mask in
every epoch). An example's mask is thus a pure function of those numbers: the same whatever
batch it lands in, the padded width, the rank or the number of loader workers, and exact after
a resume. So under DDP the ranks' parts of a global batch carry exactly the masks one process
would draw for the whole of it.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from berts.data.collate import PretrainingCollator
from berts.data.masking import MASKINGS, draw_mode
from berts.data.sampler import ResumableBatchSampler
from berts.data.shards import ShardReader
from berts.errors import UserError
from berts.data.collate import TRANSFORMS


class PretrainingDataset(Dataset):
    """Map-style dataset: ``ds[(epoch, step, indices)]`` is a masked batch dict;
    ``ds[i]`` is instance i unmasked (``input_ids``, ``b_start``, ``label``, ``units``).

    ``max_predictions_per_seq=None`` takes ceil(mask_prob * max_seq_length) (20 for 128); a
    value that would hold the masking rate well under ``mask_prob`` warns. ``masking_options``
    go to the masker: ``max_ngram`` (ngram), ``geometric_p``, ``max_span`` (span).

    ``lm_objective`` (UniLM): ``unilm``, ``clm`` or ``seq2seq`` (see PretrainingCollator); the
    batch's attention mode is drawn from (seed, epoch, step) (masking.draw_mode), like the masks
    a pure function of the batch's place, so resume and DDP stay exact.

    ``transforms``: the data hook (berts.data.collate.BatchTransform instances, or names in
    ``collate.TRANSFORMS`` with default settings), run after the masking with each example's
    generator; e.g. ``[TrigramShuffle(0.05)]`` for StructBERT's word structural objective.
    """

    def __init__(self, shards_dir: str | os.PathLike, *, masking: str = "token", mask_prob: float = 0.15,
                 max_predictions_per_seq: int | None = 20, sbo: bool = False, seed: int = 0,
                 pad_to_multiple_of: int | None = 8, static_masking: bool = False, lm_objective: str | None = None,
                 transforms=(), **masking_options):
        if masking not in MASKINGS:
            raise UserError(f"masking must be one of {', '.join(MASKINGS)}, got {masking!r}")
        if not 0.0 < mask_prob < 1.0:
            raise UserError(f"mask_prob must be in (0, 1), got {mask_prob!r}")
        self.reader = ShardReader(shards_dir)
        self.meta = self.reader.meta
        seq = int(self.meta["max_seq_length"])
        if max_predictions_per_seq is None:  # Google's rule of thumb: 20 for 128
            max_predictions_per_seq = math.ceil(mask_prob * seq)
        if max_predictions_per_seq < 1:
            raise UserError(f"max_predictions_per_seq must be >= 1, got {max_predictions_per_seq!r}")
        if max_predictions_per_seq < 0.9 * mask_prob * (seq - 3):
            warnings.warn(f"max_predictions_per_seq={max_predictions_per_seq} caps masking at "
                          f"{max_predictions_per_seq / (seq - 3):.1%} of a {seq}-token sequence (mask_prob "
                          f"{mask_prob}); use {math.ceil(mask_prob * seq)} or None (automatic)", stacklevel=2)
        self.max_predictions_per_seq = max_predictions_per_seq
        if masking == "entity" and not self.reader.has_units:
            raise UserError(f"{shards_dir}: entity masking needs knowledge units; prepare the data with "
                            "--lexicon or a Chinese segmenter (--segmenter jieba|gold|lexicon)")
        self.masking = masking
        self.seed = seed
        self.static_masking = static_masking
        self.pad_to_multiple_of = pad_to_multiple_of
        tok = self.meta["tokenizer"]
        self.collator = PretrainingCollator(
            vocab_size=tok["vocab_size"], pad_id=tok["pad_id"], mask_id=tok["mask_id"], special_ids=tok["special_ids"],
            continuation=self.reader.continuation, masking=masking, mask_prob=mask_prob,
            max_predictions_per_seq=max_predictions_per_seq, sbo=sbo, pad_to_multiple_of=pad_to_multiple_of,
            sentence_labels=self.meta["objective"] != "none",  # every other is a sentence-level objective's
            max_seq_length=seq,  # the cap of the padded width: `prepare --max-seq-length` = the model's positions
            lm_objective=lm_objective, transforms=[_transform(t) for t in transforms], **masking_options)

    @property
    def lengths(self) -> np.ndarray:
        """Length (tokens with specials) of every instance, for length bucketing."""
        return self.reader.lengths

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, item):
        if isinstance(item, (int, np.integer)):
            return self.reader.instance(int(item))
        epoch, step, indices = item
        indices = np.asarray(indices, dtype=np.int64)
        return self.batch(indices, epoch=int(epoch), step=int(step))

    def batch(self, indices: np.ndarray, *, epoch: int = 0, step: int = 0) -> dict:
        """The masked batch of instances ``indices`` (``step`` is only passed through)."""
        if len(indices) == 0:
            raise ValueError("empty batch")
        width = self.collator.width(int(self.reader.lengths[indices].max()))  # <= max_seq_length
        ids, bits, rows = self.reader.gather(indices, width, self.meta["tokenizer"]["pad_id"])
        key = [self.seed] if self.static_masking else [self.seed, epoch]
        rng = [np.random.default_rng([*key, i]) for i in indices.tolist()]  # one generator per example
        mode = None if self.collator.lm_objective is None else \
            draw_mode(self.collator.lm_objective, self.seed, epoch, step)
        batch = self.collator.collate_arrays(ids, rows[:, 1], rows[:, 2], rows[:, 3], bits, rng, mode)
        batch["epoch"] = epoch
        batch["step"] = step
        return batch


def _transform(t):

    if isinstance(t, str):
        if t not in TRANSFORMS:
            raise UserError(f"unknown batch transform {t!r} (known: {', '.join(sorted(TRANSFORMS))})")
        return TRANSFORMS[t]()
    return t


def make_pretraining_loader(shards_dir: str | os.PathLike, batch_size: int, *, seed: int = 0, rank: int = 0,
                            world_size: int = 1, num_workers: int = 0, bucket_size: int = 0, shuffle: bool = True,
                            drop_last: bool = True, pin_memory: bool = False, state: dict | None = None,
                            **dataset_options) -> tuple[DataLoader, ResumableBatchSampler]:
    """(loader, sampler) over prepared shards; ``state`` (from ``consumed_state``) resumes.

    ``batch_size`` is per rank; ``bucket_size`` > 0 groups examples of similar length
    (see ResumableBatchSampler); ``dataset_options`` go to PretrainingDataset.
    """
    dataset = PretrainingDataset(shards_dir, seed=seed, **dataset_options)
    sampler = ResumableBatchSampler(len(dataset), batch_size, seed=seed, shuffle=shuffle, drop_last=drop_last,
                                    rank=rank, world_size=world_size,
                                    lengths=dataset.lengths if bucket_size else None, bucket_size=bucket_size)
    if state is not None:
        sampler.load_state_dict(state)
    loader = DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=num_workers,
                        pin_memory=pin_memory and torch.cuda.is_available(),
                        persistent_workers=num_workers > 0)
    return loader, sampler
