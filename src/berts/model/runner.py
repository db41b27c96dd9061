"""The one batched loop that runs a model without training it: evaluation (every task's
``evaluate``), serving (``Classifier.logits``, ``berts predict`` / ``berts evaluate``) and the
bench's accuracy check all go through it::

    for batch, out in run(model, dev_set, batch_size=64, device=engine.device, autocast=engine.autocast):
        ...                                              # batch: on the device; out: model(**batch)
    logits = rows(lambda b: model(**b).logits, dev_set)  # [N, C] numpy, in the dataset's order

It owns what each loop used to do on its own: cutting the dataset into batches, eval mode (put
back as it was afterwards, even on an error), no_grad (or inference_mode), the device move,
autocast around the forward only (given by the caller: the engine's precision, or serving's),
and an optional cap on the number of batches.

Batches. ``dataset`` is a berts dataset: ``dataset[(epoch, step, indices)]`` is a padded batch
(the sampler's items; each dataset pads with berts.model.padding's ``pad_width``; an object with
only ``collate(indices)``, as ``Classifier.logits`` has always taken, works too), or a list of
encoded examples (dicts of 1-D token lists), padded here with the same rule. Batch ``i`` holds
``order[i * batch_size:(i + 1) * batch_size]`` (default: the dataset's order), as epoch 0 step
``i``: what an unshuffled ``ResumableBatchSampler`` hands out, so a dataset that masks per
(epoch, step) (pretraining shards) masks exactly as before. Every batch carries ``index`` (the
dataset positions of its rows, on the CPU) for putting results back in order.

Why below train/ and serve/ (in model/): serving must not import training (tests/test_layering.py),
and both need this loop; it knows models and tensors, nothing of tasks, engines or directories.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from berts.model.padding import pad_width
from berts.util.progress import progress as progress_bar

# the keys that say where a batch came from: never model inputs, and kept on the CPU
BOOKKEEPING = ("epoch", "step", "index")


def batch_indices(n: int, batch_size: int, order: np.ndarray | None = None,
                  max_batches: int | None = None) -> list[np.ndarray]:
    """The dataset positions of each batch: ``order`` (default 0..n-1) cut into ``batch_size``
    pieces, the last one shorter; at most ``max_batches`` of them."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch size must be a whole number >= 1, got {batch_size!r}")
    order = np.arange(n, dtype=np.int64) if order is None else np.asarray(order, dtype=np.int64).reshape(-1)
    out = [order[lo:lo + batch_size] for lo in range(0, len(order), batch_size)]
    return out if max_batches is None else out[:max(int(max_batches), 0)]


def pad_examples(examples: Sequence[dict], pad_id: int = 0, multiple: int | None = 8) -> dict[str, torch.Tensor]:
    """Encoded examples (``input_ids`` and optionally ``token_type_ids``: 1-D lists or tensors) as
    one right-padded batch [B, W], W = ``pad_width`` of the longest, with its attention mask."""
    ids = [torch.as_tensor(e["input_ids"], dtype=torch.long).reshape(-1) for e in examples]
    width = pad_width(max(len(x) for x in ids), multiple)
    batch = {"input_ids": torch.full((len(ids), width), int(pad_id), dtype=torch.long),
             "attention_mask": torch.zeros(len(ids), width, dtype=torch.long),
             "token_type_ids": torch.zeros(len(ids), width, dtype=torch.long)}
    for i, (x, e) in enumerate(zip(ids, examples)):
        batch["input_ids"][i, :len(x)] = x
        batch["attention_mask"][i, :len(x)] = 1
        if e.get("token_type_ids") is not None:
            batch["token_type_ids"][i, :len(x)] = torch.as_tensor(e["token_type_ids"], dtype=torch.long)
    return batch


def fetch(dataset, step: int, indices: np.ndarray, pad_id: int = 0) -> dict:
    """Batch ``step`` (positions ``indices``) of a berts dataset or a list of encoded examples."""
    if isinstance(dataset, (list, tuple)):
        batch = pad_examples([dataset[int(i)] for i in indices], pad_id)
    elif hasattr(dataset, "__getitem__"):
        batch = dict(dataset[(0, step, indices)])
    else:  # serving's older protocol: ``lengths`` and ``collate(indices)`` (a view of a dataset, say)
        batch = dict(dataset.collate(indices))
    batch["index"] = torch.from_numpy(np.array(indices, dtype=np.int64))
    return batch


def to_device(batch: dict, device: torch.device | str | None) -> dict:
    """Tensors to ``device`` (non-blocking), except the bookkeeping keys; other values as they are."""
    if device is None:
        return batch
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) and k not in BOOKKEEPING else v)
            for k, v in batch.items()}


def _modules(modules) -> list[nn.Module]:
    if modules is None:
        return []
    if isinstance(modules, nn.Module):
        return [modules]
    return list(modules.values()) if isinstance(modules, dict) else list(modules)


def run(modules, dataset, *, forward: Callable[[dict], Any] | None = None, batch_size: int = 64,
        order: np.ndarray | None = None, max_batches: int | None = None, device=None,
        autocast: Callable[[], Any] | None = None, inference: bool = False,
        prepare: Callable[[dict], dict] | None = None, pad_id: int = 0,
        progress: str | None = None) -> Iterator[tuple[dict, Any]]:
    """Yield ``(batch, out)`` for each batch of ``dataset`` (see the module docstring).

    ``modules``: a module, a list or a dict of them: put in eval mode for the loop and back in
    their own mode after it (finished, stopped early or failed). ``forward(batch) -> out``
    (default: the first module called on the batch's tensors other than the bookkeeping keys).
    ``prepare(batch) -> batch``: applied on the CPU before the device move (a task's ``inputs``);
    the prepared batch is the one yielded, with ``index`` kept. ``device``: default the first
    module's (None without modules: no move). ``autocast()``: a context for the forward only (the
    caller's code between batches runs outside it, as before). ``inference``: inference_mode
    instead of no_grad (serving: its outputs never meet autograd). ``progress``: a bar on stderr
    with this label, one tick per batch (the caller has decided: berts.util.progress.progress_on)."""
    mods = _modules(modules)
    if device is None and mods:
        device = next(iter(mods[0].parameters()), torch.empty(0)).device
    if forward is None:
        model = mods[0]

        def forward(batch):
            return model(**{k: v for k, v in batch.items() if k not in BOOKKEEPING and isinstance(v, torch.Tensor)})
    grad = torch.inference_mode if inference else torch.no_grad
    # eval() only on a module in training mode: train(False) walks every submodule (160 setattr
    # calls on a 6-layer BERT), a quarter of a batch-1 predict on a small model. A module already
    # in eval is trusted to be all eval (as model.eval() leaves it)
    was = [m.training for m in mods]
    for m, training in zip(mods, was):
        if training:
            m.eval()
    try:
        steps = batch_indices(len(dataset), batch_size, order, max_batches)
        steps = progress_bar(steps, total=len(steps), desc=progress, unit="batch", enabled=progress is not None)
        for step, indices in enumerate(steps):
            batch = fetch(dataset, step, indices, pad_id)
            if prepare is not None:
                index = batch["index"]
                batch = dict(prepare(batch))
                batch.setdefault("index", index)
            batch = to_device(batch, device)
            with grad(), (autocast() if autocast is not None else nullcontext()):
                out = forward(batch)
            yield batch, out
    finally:
        for m, mode in zip(mods, was):
            if mode:
                m.train(mode)


def reduce(fn: Callable[[Any, dict, Any], Any], state, modules, dataset, **kwargs):
    """``state = fn(state, batch, out)`` over every batch of ``run(modules, dataset, **kwargs)``; the last state."""
    for batch, out in run(modules, dataset, **kwargs):
        state = fn(state, batch, out)
    return state


def rows(modules, dataset, *, forward: Callable[[dict], Any] | None = None, **kwargs):
    """Per-example outputs in the dataset's order, whatever ``order`` the batches were run in:
    ``forward`` returns a tensor [B, ...] (or a tuple of them), this returns a numpy array
    [N, ...] (or a tuple), float tensors as float32. N = the examples run (all, or the
    ``max_batches`` cap's)."""
    n = len(dataset)
    out: list | None = None
    seen = np.zeros(n, dtype=bool)
    for batch, y in run(modules, dataset, forward=forward, **kwargs):
        ys = y if isinstance(y, tuple) else (y,)
        idx = batch["index"].numpy()
        arrays = [(t.float() if t.is_floating_point() else t).cpu().numpy() for t in ys]
        if out is None:
            out = [np.empty((n, *a.shape[1:]), dtype=a.dtype) for a in arrays]
        for o, a in zip(out, arrays):
            o[idx] = a  # back to the dataset's order
        seen[idx] = True
    if out is None:
        return None
    if not seen.all():  # a step cap: only the rows that ran, in the dataset's order
        out = [o[seen] for o in out]
    return tuple(out) if len(out) > 1 else out[0]
