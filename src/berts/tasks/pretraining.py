"""Pretraining: the model's objectives on prepared shards; evaluation on dev shards."""
from __future__ import annotations

import torch

from berts.objectives import registry
from berts.tasks.base import ModelTask, model_inputs
from berts.model.runner import run


# ----------------------------------------------------------------------------- pretraining
class PretrainingTask(ModelTask):
    """The model's objectives on prepared shards (MLM sparse, + a sentence-level head, + SBO / WSO, or
    UniLM's), each loss part averaged over its own items (masked tokens, sequences) and weighted by
    the engine. ``objectives``: the run's list of registry names (berts.objectives.registry); the
    shards' label (``next_sentence_label`` for every sentence objective) goes to the model under
    the sentence-level spec's ``label_key`` (none listed: dropped). ``objective`` (one name, or
    none) is the old spelling of ``["mlm", objective]``."""

    name = "pretraining"

    def __init__(self, model, train_dataset, eval_dataset=None, *, objectives: list[str] | None = None,
                 objective: str | None = None, eval_batches: int = 20, eval_batch_size: int = 64,
                 eval_transformed=None):
        """``eval_dataset``: held-out shards as they are (MLM and the sentence task are measured on
        clean text, comparable across runs); ``eval_transformed``: the same shards through the
        training's batch transforms (WSO's shuffled trigrams), for the transforms' own metrics."""
        if objectives is None:
            objective = objective or "nsp"
            if objective != "none" and registry.get_kind(objective) != "sentence":
                raise ValueError(f"objective must be {', '.join(registry.sentence_names())}, got {objective!r}")
            objectives = ["mlm"] + ([] if objective == "none" else [objective])
        self.specs = [registry.get(n) for n in objectives]
        self.model = model
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        self.eval_transformed = eval_transformed
        sentence = [s for s in self.specs if s.kind == "sentence"]
        self.sentence = sentence[0] if sentence else None
        self.objective = self.sentence.name if self.sentence else "none"
        self.eval_batches = eval_batches
        self.eval_batch_size = eval_batch_size

    def describe(self) -> str:
        return "objectives: " + ", ".join(s.name for s in self.specs)

    def inputs(self, batch):
        inputs = model_inputs(batch)
        label = inputs.pop("next_sentence_label", None)  # the data's name for every sentence objective
        if label is not None and self.sentence is not None:
            inputs[self.sentence.label_key] = label
        return inputs

    @torch.no_grad()
    def evaluate(self, engine):
        if self.eval_dataset is None:
            return None
        apart = self.eval_transformed is not None  # else every objective on eval_dataset (as it is given)
        clean = [s for s in self.specs if not (apart and s.eval_transformed)]
        metrics = self._evaluate(engine, self.eval_dataset, clean)
        if apart:  # the transforms' objectives (wso), on transformed text
            metrics.update(self._evaluate(engine, self.eval_transformed,
                                          [s for s in self.specs if s.eval_transformed]))
        return metrics

    def _evaluate(self, engine, dataset, specs) -> dict:
        """Each spec's evaluation sums (ObjectiveSpec.eval_sums: {metric: (sum, items)}) over the
        first ``eval_batches`` batches (in order, masked as epoch 0, step i), then sum / items."""

        sums: dict[str, list] = {}  # {metric: [sum, items]}
        for inputs, out in run(self.model, dataset, batch_size=self.eval_batch_size, max_batches=self.eval_batches,
                               prepare=self.inputs, device=engine.device, autocast=engine.autocast):
            for spec in specs:
                for metric, (total, n) in spec.eval_sums(inputs, out).items():
                    acc = sums.setdefault(metric, [0.0, 0])
                    acc[0] += total
                    acc[1] += n
        if not sums and any(s.name == "mlm" for s in specs):  # no masked token at all
            return {"mlm_loss": 0.0, "mlm_acc": 0.0}
        return {metric: total / max(n, 1) for metric, (total, n) in sums.items()}
