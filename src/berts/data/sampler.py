"""A deterministic, resumable, DDP-aware batch sampler.

It yields ``(epoch, step, indices)`` items. A dataset that receives the item (use
``DataLoader(dataset, batch_size=None, sampler=sampler)``) collates the batch itself and
seeds its randomness (masking) from ``(seed, epoch, step)``, so a batch is the same
whatever the number of loader workers, and a run resumed from ``state_dict()`` sees
exactly the batches that the uninterrupted run would have seen.

With ``world_size > 1`` each rank takes a disjoint slice of every global batch
(``global_batch_size`` examples are split into ``world_size`` parts).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class ResumableBatchSampler:
    def __init__(self, num_examples: int, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = True, rank: int = 0, world_size: int = 1,
                 lengths: Sequence[int] | None = None, bucket_size: int = 0):
        """batch_size is the per-rank batch size; the global batch is batch_size * world_size.

        lengths + bucket_size > 0: length bucketing. Examples are shuffled, cut into chunks of
        ``bucket_size`` global batches, sorted by length inside each chunk, and the batches of a
        chunk are shuffled again, so a batch holds examples of similar length (less padding).
        """
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.bucket_size = bucket_size
        self.epoch = 0
        self.step = 0  # batches of the current epoch already handed out

    # ------------------------------------------------------------------ order
    def _global_batches(self, epoch: int) -> list[np.ndarray]:
        gbs = self.batch_size * self.world_size
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.num_examples) if self.shuffle else np.arange(self.num_examples)
        if self.lengths is not None and self.bucket_size > 0:
            chunk = gbs * self.bucket_size
            parts = []
            for start in range(0, len(order), chunk):
                part = order[start:start + chunk]
                parts.append(part[np.argsort(-self.lengths[part], kind="stable")])
            order = np.concatenate(parts) if parts else order
        n_full = len(order) // gbs
        batches = [order[i * gbs:(i + 1) * gbs] for i in range(n_full)]
        rest = order[n_full * gbs:]
        if len(rest) and not self.drop_last:
            batches.append(rest)
        if self.lengths is not None and self.bucket_size > 0 and self.shuffle:
            perm = rng.permutation(len(batches))
            batches = [batches[i] for i in perm]
        return batches

    def __len__(self) -> int:
        gbs = self.batch_size * self.world_size
        return self.num_examples // gbs if self.drop_last else -(-self.num_examples // gbs)

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray]]:
        batches = self._global_batches(self.epoch)
        epoch = self.epoch
        while self.step < len(batches):
            step = self.step
            batch = batches[step]
            self.step += 1
            # rank r takes a strided slice: disjoint across ranks, same sizes where possible
            yield epoch, step, batch[self.rank::self.world_size]
        self.epoch += 1
        self.step = 0

    # ----------------------------------------------------------------- resume
    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.step = epoch, 0

    @property
    def width(self) -> int:
        """Examples per step of this sampler: one micro-batch of every rank (the global batch /
        grad_accum). The epoch's order does not depend on it (without bucketing), so a position
        counted in examples is the same position for any width."""
        return self.batch_size * self.world_size

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "seed": self.seed, "width": self.width}

    def load_state_dict(self, state: dict) -> None:
        """``state["width"]`` (absent before: then this sampler's) is the width it was saved at: a
        run resumed with another world size or grad_accum continues at the same example of the
        epoch (exact), or is refused where no step of the new width starts there (ValueError)."""
        epoch, step = int(state["epoch"]), int(state["step"])
        saved = int(state.get("width") or self.width)
        if saved != self.width:
            if self.lengths is not None and self.bucket_size > 0:
                raise ValueError(f"length bucketing cuts the epoch into chunks of {self.bucket_size} x the micro-batch "
                                 f"width, which was {saved} examples and is {self.width} now: the data order would "
                                 "change; resume with the same train.batch_size / train.grad_accum")
            seen = step * saved  # examples of this epoch already trained on
            if seen % self.width:
                raise ValueError(f"the checkpoint is {seen} examples into its epoch, not a whole number of "
                                 f"micro-batches of {self.width} (train.batch_size / train.grad_accum); "
                                 f"use a width that divides {seen}")
            step = seen // self.width
        self.epoch, self.step = epoch, step
        self.seed = int(state.get("seed", self.seed))


def consumed_state(batch_epoch: int, batch_step: int, sampler: ResumableBatchSampler) -> dict:
    """The sampler state to save after the trainer has *consumed* batch (epoch, step).

    Loader workers prefetch, so ``sampler.state_dict()`` runs ahead of training; the
    trainer saves this instead, from the (epoch, step) that came with the batch.
    """
    return {"epoch": batch_epoch, "step": batch_step + 1, "seed": sampler.seed, "width": sampler.width}
