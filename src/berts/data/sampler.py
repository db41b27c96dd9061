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

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.seed = int(state.get("seed", self.seed))


def consumed_state(batch_epoch: int, batch_step: int, sampler: ResumableBatchSampler) -> dict:
    """The sampler state to save after the trainer has *consumed* batch (epoch, step).

    Loader workers prefetch, so ``sampler.state_dict()`` runs ahead of training; the
    trainer saves this instead, from the (epoch, step) that came with the batch.
    """
    return {"epoch": batch_epoch, "step": batch_step + 1, "seed": sampler.seed}
