"""Pretraining: the model's objectives on prepared shards; evaluation on dev shards."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from berts.objectives.base import top1
from berts.tasks.base import ModelTask, model_inputs

# the model keyword each sentence-level objective's label goes under (the data calls them all next_sentence_label)
SENTENCE_LABELS = {"nsp": "next_sentence_label", "sop": "sentence_order_label",
                   "reorder": "sentence_reorder_label", "distance": "sentence_distance_label"}


# ----------------------------------------------------------------------------- pretraining
class PretrainingTask(ModelTask):
    """MLM (sparse) + NSP or SOP (+ SBO, + WSO), each part averaged over its own items (masked tokens,
    sequences) and weighted by the engine. ``objective``: the sentence-level objective, ``nsp``,
    ``sop`` (the data's labels passed as ``sentence_order_label``), ``reorder`` / ``distance``
    (ERNIE 2.0: ``sentence_reorder_label`` / ``sentence_distance_label``) or ``none`` (labels dropped)."""

    name = "pretraining"

    def __init__(self, model, train_dataset, eval_dataset=None, *, objective: str = "nsp",
                 eval_batches: int = 20, eval_batch_size: int = 64, eval_transformed=None):
        """``eval_dataset``: held-out shards as they are (MLM and the sentence task are measured on
        clean text, comparable across runs); ``eval_transformed``: the same shards through the
        training's batch transforms (WSO's shuffled trigrams), for the transforms' own metrics."""
        if objective not in SENTENCE_LABELS and objective != "none":
            raise ValueError(f"objective must be {', '.join(SENTENCE_LABELS)} or none, got {objective!r}")
        self.model = model
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        self.eval_transformed = eval_transformed
        self.objective = objective
        self.eval_batches = eval_batches
        self.eval_batch_size = eval_batch_size

    def inputs(self, batch):
        inputs = model_inputs(batch)
        label = inputs.pop("next_sentence_label", None)  # the data's name for every sentence objective
        if label is not None and self.objective != "none":
            inputs[SENTENCE_LABELS[self.objective]] = label
        return inputs

    @torch.no_grad()
    def evaluate(self, engine):
        if self.eval_dataset is None:
            return None
        metrics = self._evaluate(engine, self.eval_dataset)
        if self.eval_transformed is not None:  # the transforms' parts only (wso_*), on transformed text
            metrics.update({k: v for k, v in self._evaluate(engine, self.eval_transformed).items()
                            if k.startswith("wso_")})
        return metrics

    def _evaluate(self, engine, dataset) -> dict:
        from berts.model.runner import run

        pair = f"{self.objective}_acc"
        sums = {"mlm_loss": 0.0, "mlm_acc": 0.0, pair: 0.0}
        n_seq, counted = 0, {}
        # the first eval_batches batches of the shards in order, masked as epoch 0, step i
        for inputs, out in run(self.model, dataset, batch_size=self.eval_batch_size, max_batches=self.eval_batches,
                               prepare=self.inputs, device=engine.device, autocast=engine.autocast):
            for key, field in (("mlm_labels", "prediction_logits"), ("lm_labels", "lm_logits")):
                if key not in inputs:  # UniLM's clm / seq2seq batches: next-token targets (lm)
                    continue
                part = key[:-7]
                labels, logits = inputs[key], getattr(out, field).float()
                sums[f"{part}_loss"] = sums.get(f"{part}_loss", 0.0) + float(
                    F.cross_entropy(logits, labels, reduction="sum"))
                sums[f"{part}_acc"] = sums.get(f"{part}_acc", 0.0) + float((top1(logits) == labels).sum())
                counted[part] = counted.get(part, 0) + labels.numel()
            y = inputs.get(SENTENCE_LABELS.get(self.objective, ""))
            if y is not None:
                y = y.reshape(-1)
                logits = out.structure_logits if self.objective in ("reorder", "distance") \
                    else out.seq_relationship_logits
                sums[pair] += float((logits.argmax(-1) == y).sum())
                n_seq += y.numel()
            n_wso = inputs["wso_labels"].numel() if inputs.get("wso_labels") is not None else 0
            if n_wso and out.losses and "wso" in out.losses:  # StructBERT's shuffled trigrams
                for k, v in (("loss", out.losses["wso"]), ("acc", out.metrics["wso_acc"])):
                    sums[f"wso_{k}"] = sums.get(f"wso_{k}", 0.0) + float(v) * n_wso
                counted["wso"] = counted.get("wso", 0) + n_wso
        metrics = {f"{p}_{k}": sums[f"{p}_{k}"] / max(n, 1) for p, n in (counted or {"mlm": 0}).items()
                   for k in ("loss", "acc")}
        if n_seq:
            metrics[pair] = sums[pair] / n_seq
        return metrics
