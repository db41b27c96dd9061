"""DistributedDataParallel plumbing: the process group from torchrun's variables, and the few
collectives the trainer needs. One process (no ``WORLD_SIZE``) is a world of one: every helper
is then a no-op."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from berts.util.device import resolve_device  # here before; still importable from here


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce(self, t: torch.Tensor, op=dist.ReduceOp.SUM) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(t, op=op)
        return t

    def broadcast(self, obj):
        """rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's ``obj``, on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    @property
    def collective_device(self) -> torch.device:
        """Where tensors for collectives live: the GPU for NCCL, the CPU for gloo."""
        return self.device if self.enabled and dist.get_backend() == "nccl" else torch.device("cpu")


def setup(device_name: str = "auto") -> Dist:
    """Join the process group when launched by torchrun (RANK, WORLD_SIZE, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local)
    if world > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return Dist(rank=rank, world_size=world, local_rank=local, device=device)


def teardown() -> None:
    """Leave the process group together and before interpreter shutdown: gloo work objects
    destroyed during finalization abort the process ("terminate called without an active
    exception"), so the caller drops its Trainer (and DDP wrapper) first."""
    if dist.is_available() and dist.is_initialized():
        import gc

        gc.collect()  # DDP reducers and their pending work go while the interpreter is whole
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
