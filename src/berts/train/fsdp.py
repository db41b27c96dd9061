"""FSDP2 (``torch.distributed.fsdp.fully_shard``): ``train.strategy: fsdp``, the engine's other way
of spreading a step over ranks (ddp being the first). Each encoder layer is one shard group (its
weights gathered just before it runs, freed after), the rest (embeddings, heads, a tied decoder)
one group at the top. Each rank then holds 1/world of the weights, gradients and AdamW moments
(16 of the 20 bytes a fp32 parameter costs in training, counting the full copy below).

Why a full copy: everything outside the step (rank 0's evaluation, checkpoints, final/, best/,
resume) reads and writes plain modules. The engine keeps them as they were and calls
``gather_into`` (a collective, all ranks) before each of those, so none of it knows about DTensors.
The copy is one model's weights on the device; a model whose plain weights do not fit one device
at all needs sharded evaluation and checkpoints (torch.distributed.checkpoint), not done here.

Gradients are averaged over ranks by the reduce-scatter, as DDP's all-reduce averages them, so
the engine's per-micro-batch loss weights are the same for both.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from torch import nn


def options(**kw):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kw)


def shard(container: nn.Module, layer_types: tuple[type, ...]) -> nn.Module:
    """A sharded twin of ``container`` (deep-copied; ``container`` stays plain): every submodule
    of ``layer_types`` its own group, then the root."""
    from torch.distributed.fsdp import fully_shard

    twin = copy.deepcopy(container)
    seen = set()
    for m in twin.modules():
        if isinstance(m, layer_types) and id(m) not in seen:  # a layer shared (ALBERT) once
            seen.add(id(m))
            fully_shard(m)
    fully_shard(twin)
    return twin


@contextmanager
def no_sync(sharded: nn.Module, sync: bool):
    """DDP's no_sync for FSDP2: gradients of accumulation micro-batches stay unreduced."""
    if sync:
        yield
        return
    sharded.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        sharded.set_requires_gradient_sync(True)


def gather_into(sharded: nn.Module, plain: nn.Module) -> None:
    """The full weights (all-gathered, on every rank) into the plain modules. A collective."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    full = get_model_state_dict(sharded, options=options())
    with torch.no_grad():
        plain.load_state_dict(full, strict=True)


def scatter_from(plain: nn.Module, sharded: nn.Module) -> None:
    """The plain modules' weights (the same on every rank: loaded from a checkpoint) into the shards."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    set_model_state_dict(sharded, plain.state_dict(), options=options())


def optimizer_state(sharded: nn.Module, optimizer) -> dict:
    """The optimizer state, full and keyed by parameter name (every rank calls it)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(sharded, optimizer, options=options())


def load_optimizer_state(sharded: nn.Module, optimizer, state: dict) -> None:
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    set_optimizer_state_dict(sharded, optimizer, state, options=options())
