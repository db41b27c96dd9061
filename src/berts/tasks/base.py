"""Tasks: what the Trainer trains and on what. The loop is the Trainer's, the step the engine's.

A task declares

* ``modules() -> {name: nn.Module}``: the trainable modules; the first is the main one (its
  Hugging Face directory is a checkpoint's top level, and ``final/`` and ``best/``);
* ``frozen_modules() -> {name: nn.Module}`` (default none): modules the loss runs but nothing
  trains (a teacher): no gradients, no optimizer state, not in DDP, not checkpointed, eval mode;
* ``saved_modules() -> {name: subdirectory}``: which trainable modules are written as Hugging
  Face directories, and where (``""``: the top level). Default: the main one at the top, every
  other module with ``save_pretrained`` in a subdirectory of its name. A trainable module not
  listed (a projection, say) is kept in the checkpoint's ``modules.safetensors`` only: restored
  exactly on resume, absent from ``final/`` and ``best/``;
* ``train_dataset``: indexable by the sampler's ``(epoch, step, indices)`` items, returning a
  batch dict of tensors plus the python ints ``epoch`` and ``step`` (berts.data's datasets do);
* ``loss(modules, batch) -> (losses, metrics)``: ``modules`` holds the trainable modules by
  name (``modules.model``); ``losses`` is ``{part: mean}`` (not detached), each part a mean over
  ``counts(batch)[part]`` items; ``metrics`` a dict of detached scalars;
* ``counts(batch) -> {part: n}``: how many items each part averages over, from the batch alone.
  The engine weights every part by its share of the whole optimizer step (all micro-batches, all
  ranks), so the gradient is that of the mean over the global batch, exactly, even when ranks or
  micro-batches hold different numbers of masked tokens;
* ``loss_parts`` (every part name it can produce) and ``metric_parts`` (``{metric: part}``: a
  metric averaged like a part is weighted like it in the log), for the monitor;
* ``extra_files() -> {relative path: text}`` (default none): small files the task adds to every
  directory saved (final/, best/, checkpoints), e.g. a sentence encoder's pooling config;
* ``evaluate(engine) -> {metric: value}`` (optional) and ``metric``, the key that picks the best
  checkpoint. ``engine`` (train/engine.py) gives what evaluation needs: ``device``, ``autocast()``
  (the run's precision), ``to_device`` and ``is_main``; the loop itself is berts.model.runner's
  (``run`` / ``rows``), the one that serving uses too.

The BERT tasks below take all of it from the model (``out.losses``, ``out.metrics``,
``model.loss_counts``, ``model.loss_parts``, ``model.metric_parts``: see model/heads.py). A
distillation task would be a task with a frozen teacher in ``frozen_modules()`` and its own
``loss``; tests/multimodule_task.py is a small made-up one.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from berts.model.runner import rows

NON_MODEL_KEYS = ("epoch", "step", "index")
# What a bare encoder takes (the distillation methods feed the teacher and student only these).
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_inputs(batch: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor) and k not in NON_MODEL_KEYS}


class Task:
    name = "task"
    metric: str | None = None  # evaluate()'s key that chooses the best checkpoint
    train_dataset: Any = None
    loss_parts: tuple[str, ...] = ()
    metric_parts: dict[str, str] = {}

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def frozen_modules(self) -> dict[str, nn.Module]:
        return {}

    def saved_modules(self) -> dict[str, str]:
        out = {}
        for i, (name, module) in enumerate(self.modules().items()):
            if hasattr(module, "save_pretrained"):
                out[name] = "" if i == 0 else name
        return out

    def counts(self, batch: dict) -> dict[str, int]:
        raise NotImplementedError

    def loss(self, modules, batch: dict):
        raise NotImplementedError

    def tokens(self, batch: dict) -> int:
        """Real (not padding) tokens of a CPU batch, for throughput."""
        mask = batch.get("attention_mask")
        return int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())

    def evaluate(self, engine) -> dict[str, float] | None:
        return None

    def extra_files(self) -> dict[str, str]:
        return {}

    def describe(self) -> str:
        """The task's own settings that shape the run, for the start line ("" for none)."""
        return ""


class ModelTask(Task):
    """A task that trains one Hugging Face-style model whose objectives give everything: the
    loss parts and metrics of the forward, the counts, the part names."""

    model: nn.Module

    def modules(self):
        return {"model": self.model}

    @property
    def loss_parts(self):
        return tuple(self.model.loss_parts)

    @property
    def metric_parts(self):
        return dict(self.model.metric_parts)

    def inputs(self, batch: dict) -> dict:
        return model_inputs(batch)

    def counts(self, batch):
        return self.model.loss_counts(self.inputs(batch))

    def loss(self, modules, batch):
        out = modules.model(**self.inputs(batch))
        return out.losses, out.metrics or {}


# ----------------------------------------------------------------------------- fine-tuning
def predict_logits(model, dataset, batch_size: int = 64, device=None, autocast=None,
                   progress: str | None = None) -> np.ndarray:
    """Logits [N, C] (regression: [N, 1]) of every example of a ClassificationDataset, in order
    (berts.model.runner's loop, as serving's Classifier.logits). ``progress``: a bar's label, or None."""

    return rows(model, dataset, batch_size=batch_size, device=device, autocast=autocast, progress=progress,
                forward=lambda b: model(**{k: v for k, v in model_inputs(b).items() if k != "labels"}).logits)
