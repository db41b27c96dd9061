"""Tasks: what the Trainer trains on and how it scores it. The loop itself is the Trainer's.

A task gives

* ``train_dataset``: indexable by the sampler's ``(epoch, step, indices)`` items, returning a
  batch dict of tensors plus the python ints ``epoch`` and ``step`` (berts.data's datasets do);
* ``loss(model, batch) -> (loss, logs)``: ``loss`` is a scalar, the *mean* over the batch's
  examples, or a dict ``{part: mean}`` whose parts are means over ``counts(batch)[part]`` items;
  ``logs`` is a dict of detached scalars to log: each is weighted like the loss part it is named
  after (``mlm_acc`` like ``mlm``; or the task's ``log_parts``; every log when there is one part),
  else averaged plainly over micro-batches and ranks;
* ``counts(batch) -> {part: n}``: how many items each part averages over. The Trainer weights
  every part by its share of the whole optimizer step (all micro-batches, all ranks), so the
  gradient is that of the mean over the global batch, exactly, even when ranks or micro-batches
  hold different numbers of masked tokens;
* ``evaluate(model, trainer) -> {metric: value}`` (optional) and ``metric``, the key that picks
  the best checkpoint.

A distillation task is a task whose ``loss`` also runs a frozen teacher.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

NON_MODEL_KEYS = ("epoch", "step", "index")


def model_inputs(batch: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor) and k not in NON_MODEL_KEYS}


class Task:
    name = "task"
    metric: str | None = None  # evaluate()'s key that chooses the best checkpoint
    train_dataset: Any = None

    def counts(self, batch: dict) -> dict[str, int]:
        return {"loss": int(batch["input_ids"].shape[0])}

    def loss(self, model, batch: dict):
        out = model(**model_inputs(batch))
        return out.loss, dict(out.losses or {})

    def tokens(self, batch: dict) -> int:
        """Real (not padding) tokens of a CPU batch, for throughput."""
        mask = batch.get("attention_mask")
        return int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())

    def evaluate(self, model, trainer) -> dict[str, float] | None:
        return None


# ----------------------------------------------------------------------------- pretraining
class PretrainingTask(Task):
    """MLM (sparse) + NSP/SOP (+ SBO): the loss parts come from the model, weighted by counts.

    ``mlm`` (with SBO, which predicts the same tokens) averages over the masked tokens, ``nsp``
    over the sequences. The model's ``loss`` is their sum; the NSP part is recomputed from the
    returned logits (B x 2, free) so that the two can be weighted apart.
    """

    name = "pretraining"
    log_parts = {"sbo": "mlm"}  # SBO predicts the masked tokens too

    def __init__(self, train_dataset, eval_dataset=None, *, eval_batches: int = 20, eval_batch_size: int = 64,
                 pair_objective: bool = True):
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        self.eval_batches = eval_batches
        self.eval_batch_size = eval_batch_size
        self.pair_objective = pair_objective  # False: drop the NSP/SOP labels (MLM only)

    def _inputs(self, batch):
        inputs = model_inputs(batch)
        if not self.pair_objective:
            inputs.pop("next_sentence_label", None)
        return inputs

    def counts(self, batch):
        out = {"mlm": int(batch["mlm_labels"].numel())}
        if self.pair_objective and "next_sentence_label" in batch:
            out["nsp"] = int(batch["input_ids"].shape[0])
        return out

    def loss(self, model, batch):
        inputs = self._inputs(batch)
        out = model(**inputs)
        logs = dict(out.losses or {})
        labels = inputs["mlm_labels"]
        if labels.numel():
            logs["mlm_acc"] = (out.prediction_logits.detach().argmax(-1) == labels).float().mean()
        if "next_sentence_label" in inputs:
            nsp = F.cross_entropy(out.seq_relationship_logits.float(), inputs["next_sentence_label"].reshape(-1))
            logs["nsp_acc"] = (out.seq_relationship_logits.detach().argmax(-1)
                               == inputs["next_sentence_label"].reshape(-1)).float().mean()
            return {"mlm": out.loss - nsp, "nsp": nsp}, logs
        return {"mlm": out.loss}, logs

    @torch.no_grad()
    def evaluate(self, model, trainer):
        if self.eval_dataset is None:
            return None
        from berts.data.sampler import ResumableBatchSampler

        sampler = ResumableBatchSampler(len(self.eval_dataset), self.eval_batch_size, seed=0, shuffle=False,
                                        drop_last=False)
        was_training = model.training
        model.eval()
        sums = {"mlm_loss": 0.0, "mlm_acc": 0.0, "nsp_acc": 0.0}
        n_mlm = n_seq = 0
        try:
            for i, (epoch, step, indices) in enumerate(sampler):
                if i >= self.eval_batches:
                    break
                batch = trainer.to_device(self.eval_dataset[(epoch, step, indices)])
                inputs = self._inputs(batch)
                with trainer.autocast():
                    out = model(**inputs)
                labels = inputs["mlm_labels"]
                logits = out.prediction_logits.float()
                sums["mlm_loss"] += float(F.cross_entropy(logits, labels, reduction="sum"))
                sums["mlm_acc"] += float((logits.argmax(-1) == labels).sum())
                n_mlm += labels.numel()
                if "next_sentence_label" in inputs:
                    y = inputs["next_sentence_label"].reshape(-1)
                    sums["nsp_acc"] += float((out.seq_relationship_logits.argmax(-1) == y).sum())
                    n_seq += y.numel()
        finally:
            model.train(was_training)
        metrics = {"mlm_loss": sums["mlm_loss"] / max(n_mlm, 1), "mlm_acc": sums["mlm_acc"] / max(n_mlm, 1)}
        if n_seq:
            metrics["nsp_acc"] = sums["nsp_acc"] / n_seq
        return metrics


# ----------------------------------------------------------------------------- fine-tuning
@torch.no_grad()
def predict_logits(model, dataset, batch_size: int = 64, device=None, autocast=None) -> np.ndarray:
    """Logits [N, C] (regression: [N, 1]) of every example of a ClassificationDataset, in order."""
    from berts.data.sampler import ResumableBatchSampler

    device = device or next(model.parameters()).device
    sampler = ResumableBatchSampler(len(dataset), batch_size, shuffle=False, drop_last=False)
    was_training = model.training
    model.eval()
    out = []
    try:
        for epoch, step, indices in sampler:
            batch = dataset[(epoch, step, indices)]
            inputs = {k: v.to(device) for k, v in model_inputs(batch).items() if k != "labels"}
            with (autocast() if autocast else nullcontext()):
                logits = model(**inputs).logits
            out.append(logits.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


class ClassificationTask(Task):
    """Sentence or sentence-pair classification, or regression, on a ClassificationDataset."""

    name = "classification"

    def __init__(self, train_dataset, dev_dataset=None, *, regression: bool = False, num_labels: int = 2,
                 metric: str | None = None, eval_batch_size: int = 64):
        self.train_dataset = train_dataset
        self.dev_dataset = dev_dataset
        self.regression = regression
        self.num_labels = num_labels
        self.metric = metric or ("pearson" if regression else "accuracy")
        self.eval_batch_size = eval_batch_size
        self.name = "regression" if regression else "classification"

    def loss(self, model, batch):
        out = model(**model_inputs(batch))
        logs = {}
        if not self.regression:
            logs["train_acc"] = (out.logits.detach().argmax(-1) == batch["labels"]).float().mean()
        return out.loss, logs

    def evaluate(self, model, trainer):
        if self.dev_dataset is None:
            return None
        from berts.metrics import compute_metrics

        logits = predict_logits(model, self.dev_dataset, self.eval_batch_size, trainer.device, trainer.autocast)
        labels = self.dev_dataset.labels
        task = "regression" if self.regression else "classification"
        predictions = logits[:, 0] if self.regression else logits
        metrics = compute_metrics(task, predictions, labels, self.num_labels)
        t = torch.from_numpy(logits)
        y = torch.from_numpy(np.asarray(labels))
        metrics["loss"] = float(F.mse_loss(t[:, 0], y.float()) if self.regression else F.cross_entropy(t, y))
        return metrics
