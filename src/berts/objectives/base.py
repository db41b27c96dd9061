"""The Objective protocol and the registry of objectives by name.

An objective is an ``nn.Module`` (its head's parameters are its own) that a task model holds as an
attribute, e.g. ``self.mlm = MaskedLM(config, ...)``. The task model (heads.BertTaskModel) calls,
for each of its objectives, in this order:

1. ``prepare(batch)``: normalise its targets (e.g. transformers' ``labels`` [B, S] -> flat
   positions + ids); ``batch`` holds the encoder inputs and every target given (None ones left out);
2. ``rows(batch)``: the flat positions (into B*S) it needs from the last layer (None: all of them;
   an empty tensor: only the pooled [CLS]), for the sparse_output fast path;
3. ``forward(enc, batch, picked) -> Result``: ``enc`` the encoder's output, ``picked`` the last
   hidden states at its rows ([N, H]; None when it asked for all rows).

``build(model, config)`` makes the head for a task model (heads.ObjectiveHeads builds the heads
the registry's specs name: objectives/registry.py). ``counts(batch)``, from the batch alone (no
forward), gives {part: items its mean is over}, the same keys as the losses it produces for that
batch. Class attributes declare the rest: ``parts``
(every loss part it can produce), ``metric_parts`` ({metric: part it averages like}),
``batch_keys`` (the targets it reads) and ``hf_names`` ({our name prefix within the objective:
{"bert": HF name prefix, "albert": HF name prefix}}), which berts.hf reads to save and load it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Result:
    fields: dict[str, torch.Tensor] = field(default_factory=dict)  # output fields, e.g. prediction_logits
    losses: dict[str, torch.Tensor] = field(default_factory=dict)  # {part: mean loss}, not detached
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # {name: detached 0-d float}


class Objective(nn.Module):
    name: str = ""
    parts: tuple[str, ...] = ()
    metric_parts: dict[str, str] = {}
    batch_keys: tuple[str, ...] = ()
    hf_names: dict[str, dict[str, str]] = {}

    @classmethod
    def build(cls, model, config) -> "Objective":
        """The head for task model ``model`` (its encoder ``model.bert`` built, and the heads listed
        before it, e.g. ``model.mlm``), as a pretraining model builds it from the registry."""
        return cls(config)

    def prepare(self, batch: dict) -> dict:
        return batch

    def rows(self, batch: dict) -> torch.Tensor | None:
        return batch["input_ids"].new_zeros(0)  # the pooled [CLS] only

    def counts(self, batch: dict) -> dict[str, int]:
        raise NotImplementedError

    def forward(self, enc, batch: dict, picked: torch.Tensor | None) -> Result:
        raise NotImplementedError

    def hf_config(self, fmt: str) -> dict:
        """config.json entries transformers needs for this head in format ``fmt`` ("bert"/"albert")."""
        return {}


# the head classes by their ``name`` (for code that builds its own task model); which objectives a
# pretraining run can name, and what each needs besides its head, is the registry's (registry.py)
OBJECTIVES: dict[str, type[Objective]] = {}


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make an objective findable by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__}: an objective needs a name")
    OBJECTIVES[cls.name] = cls
    return cls


def top1(logits: torch.Tensor) -> torch.Tensor:
    """``logits.argmax(-1)``, the same indices (the first maximum on ties, NaN counted as the maximum),
    from torch's ``max(dim)`` kernel: on CPU it is 1.8x faster on [608, 30522] fp32 logits and 3-4x
    on bf16 (argmax took 3% of a mini pretraining step for the MLM accuracy alone)."""
    return logits.max(-1).indices


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Detached 0-d float: the share of argmax == label (tensor ops only, no host sync)."""
    return (top1(logits.detach()) == labels).float().mean()
