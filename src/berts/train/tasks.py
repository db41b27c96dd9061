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
* ``evaluate(trainer) -> {metric: value}`` (optional) and ``metric``, the key that picks the best
  checkpoint.

The BERT tasks below take all of it from the model (``out.losses``, ``out.metrics``,
``model.loss_counts``, ``model.loss_parts``, ``model.metric_parts``: see heads.py). A
distillation task would be a task with a frozen teacher in ``frozen_modules()`` and its own
``loss``; tests/multimodule_task.py is a small made-up one.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from berts.objectives.base import top1

NON_MODEL_KEYS = ("epoch", "step", "index")
# the model keyword each sentence-level objective's label goes under (the data calls them all next_sentence_label)
SENTENCE_LABELS = {"nsp": "next_sentence_label", "sop": "sentence_order_label",
                   "reorder": "sentence_reorder_label", "distance": "sentence_distance_label"}


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

    def evaluate(self, trainer) -> dict[str, float] | None:
        return None

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
    def evaluate(self, trainer):
        if self.eval_dataset is None:
            return None
        metrics = self._evaluate(trainer, self.eval_dataset)
        if self.eval_transformed is not None:  # the transforms' parts only (wso_*), on transformed text
            metrics.update({k: v for k, v in self._evaluate(trainer, self.eval_transformed).items()
                            if k.startswith("wso_")})
        return metrics

    def _evaluate(self, trainer, dataset) -> dict:
        from berts.data.sampler import ResumableBatchSampler

        model = self.model
        sampler = ResumableBatchSampler(len(dataset), self.eval_batch_size, seed=0, shuffle=False,
                                        drop_last=False)
        was_training = model.training
        model.eval()
        pair = f"{self.objective}_acc"
        sums = {"mlm_loss": 0.0, "mlm_acc": 0.0, pair: 0.0}
        n_seq, counted = 0, {}
        try:
            for i, (epoch, step, indices) in enumerate(sampler):
                if i >= self.eval_batches:
                    break
                inputs = self.inputs(trainer.to_device(dataset[(epoch, step, indices)]))
                with trainer.autocast():
                    out = model(**inputs)
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
        finally:
            model.train(was_training)
        metrics = {f"{p}_{k}": sums[f"{p}_{k}"] / max(n, 1) for p, n in (counted or {"mlm": 0}).items()
                   for k in ("loss", "acc")}
        if n_seq:
            metrics[pair] = sums[pair] / n_seq
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


class ClassificationTask(ModelTask):
    """Sentence or sentence-pair classification, or regression, on a ClassificationDataset."""

    name = "classification"

    def __init__(self, model, train_dataset, dev_dataset=None, *, regression: bool = False, num_labels: int = 2,
                 metric: str | None = None, eval_batch_size: int = 64, label_smoothing: float = 0.0,
                 class_weights=None, positive: int = 1, label_names=None):
        """``label_smoothing``, ``class_weights`` ([num_labels] floats): the classifier's training loss
        (see objectives/classification.py), for this run only, not saved with the model;
        ``positive``: the label id whose F1 is ``f1`` (2 labels); ``label_names``: for the start line."""
        self.model = model
        model.classifier.set_training_options(label_smoothing, class_weights)
        self.label_smoothing = float(label_smoothing)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.positive = positive
        self.label_names = list(label_names) if label_names is not None else None
        self.train_dataset = train_dataset
        self.dev_dataset = dev_dataset
        self.regression = regression
        self.num_labels = num_labels
        self.metric = metric or ("pearson" if regression else "accuracy")
        self.eval_batch_size = eval_batch_size
        self.name = "regression" if regression else "classification"

    def evaluate(self, trainer):
        if self.dev_dataset is None:
            return None
        from berts.metrics import compute_metrics

        logits = predict_logits(self.model, self.dev_dataset, self.eval_batch_size, trainer.device, trainer.autocast)
        labels = self.dev_dataset.labels
        task = "regression" if self.regression else "classification"
        predictions = logits[:, 0] if self.regression else logits
        metrics = compute_metrics(task, predictions, labels, self.num_labels, positive=self.positive)
        t = torch.from_numpy(logits)
        y = torch.from_numpy(np.asarray(labels))
        # the plain loss (no smoothing, no class weights): comparable across runs and with `berts evaluate`
        metrics["loss"] = float(F.mse_loss(t[:, 0], y.float()) if self.regression else F.cross_entropy(t, y))
        return metrics

    def describe(self) -> str:
        if self.regression:
            return "regression (MSE)"
        names = self.label_names or [str(i) for i in range(self.num_labels)]
        weights = ("none" if self.class_weights is None else
                   ", ".join(f"{n}={w:g}" for n, w in zip(names, self.class_weights)))
        f1 = f"f1 of '{names[self.positive]}'" if self.num_labels == 2 else "f1 = f1_macro"
        return f"label smoothing {self.label_smoothing:g}; class weights {weights}; {f1}"



# ----------------------------------------------------------------------------- generation
class Seq2SeqTask(ModelTask):
    """Fine-tuning for generation (``finetune --task seq2seq``): a BertForUnifiedLM on a
    data.seq2seq.Seq2SeqDataset, next-token loss on the target under the seq2seq mask. Evaluation:
    ``loss`` and ``token_acc`` (teacher-forced, over every target token of the dev set), and
    ``bleu`` / ``rouge_l`` (berts.metrics, on whitespace words) of greedy generations for the
    first ``eval_generate`` dev examples (berts.generate, with the KV cache)."""

    name = "seq2seq"

    def __init__(self, model, train_dataset, dev_dataset=None, *, metric: str | None = None,
                 eval_batch_size: int = 64, eval_generate: int = 200, tokenizer=None):
        self.model, self.train_dataset, self.dev_dataset = model, train_dataset, dev_dataset
        self.metric = metric or "rouge_l"
        self.eval_batch_size, self.eval_generate, self.tokenizer = eval_batch_size, eval_generate, tokenizer

    @torch.no_grad()
    def evaluate(self, trainer):
        if self.dev_dataset is None:
            return None
        from berts.data.sampler import ResumableBatchSampler
        from berts.generate import generate_ids
        from berts.metrics import corpus_bleu, rouge_l

        model, ds = self.model, self.dev_dataset
        was_training = model.training
        model.eval()
        loss = correct = n = 0.0
        try:
            sampler = ResumableBatchSampler(len(ds), self.eval_batch_size, shuffle=False, drop_last=False)
            for epoch, step, indices in sampler:
                inputs = self.inputs(trainer.to_device(ds[(epoch, step, indices)]))
                with trainer.autocast():
                    out = model(**inputs)
                logits, labels = out.lm_logits.float(), inputs["lm_labels"]
                loss += float(F.cross_entropy(logits, labels, reduction="sum"))
                correct += float((logits.argmax(-1) == labels).sum())
                n += labels.numel()
            metrics = {"loss": loss / max(n, 1), "token_acc": correct / max(n, 1)}
            if self.tokenizer is not None and self.eval_generate:
                hyps, refs = [], []
                for i in range(min(self.eval_generate, len(ds))):
                    ids = generate_ids(model, ds.source_ids(i), mode="seq2seq", eos_token_id=self.tokenizer.sep_id,
                                       max_new_tokens=ds.max_target_length)
                    hyps.append(self.tokenizer.decode(ids).split())
                    refs.append(self.tokenizer.decode(self.tokenizer.encode_ids_batch([ds.targets[i]])[0]).split())
                metrics["bleu"] = corpus_bleu(hyps, refs)
                metrics["rouge_l"] = rouge_l(hyps, refs)
        finally:
            model.train(was_training)
        return metrics

    def describe(self) -> str:
        return f"seq2seq LM (next-token on the target); bleu / rouge_l on {self.eval_generate} dev generations"


# ----------------------------------------------------------------------------- ELECTRA
class ElectraPretrainingTask(Task):
    """ELECTRA's replaced-token detection (berts.electra): two trainable modules, the
    discriminator (``model``: a checkpoint's top level, ``final/``, ``best/``) and the generator
    (``generator``: saved in ``generator/``), their embedding block shared (one set of parameters,
    one optimizer state). Parts: ``mlm`` (the generator's, over masked tokens) and ``rtd``
    (``rtd_weight`` x the discriminator's BCE, over real tokens). Batches: the MLM collator's,
    with ``electra.SamplingNoise`` (the sampling's uniforms) for exact resume and DDP."""

    name = "electra"
    loss_parts = ("mlm", "rtd")
    metric_parts = {"mlm_acc": "mlm", "rtd_acc": "rtd", "rtd_loss": "rtd"}

    def __init__(self, model, generator, train_dataset, eval_dataset=None, *, rtd_weight: float = 50.0,
                 eval_batches: int = 20, eval_batch_size: int = 64):
        from berts.electra import SamplingNoise, tie_embeddings
        from berts.errors import UserError

        if not float(rtd_weight) > 0:
            raise UserError(f"electra.rtd_weight must be positive, got {rtd_weight!r}")
        tie_embeddings(model, generator)
        self.model, self.generator, self.rtd_weight = model, generator, float(rtd_weight)
        wrap = (lambda ds: ds if ds is None or isinstance(ds, SamplingNoise) else SamplingNoise(ds))
        self.train_dataset, self.eval_dataset = wrap(train_dataset), wrap(eval_dataset)
        self.eval_batches, self.eval_batch_size = eval_batches, eval_batch_size

    def modules(self):
        return {"model": self.model, "generator": self.generator}

    def counts(self, batch):
        mask = batch.get("attention_mask")
        real = int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
        return {"mlm": int(batch["mlm_labels"].numel()), "rtd": real}

    def loss(self, modules, batch):
        from berts.electra import replaced_token_step

        losses, metrics, _ = replaced_token_step(modules.model, modules.generator, model_inputs(batch),
                                                 self.rtd_weight)
        return losses, metrics

    @torch.no_grad()
    def evaluate(self, trainer):
        """On eval_shards: the generator's ``mlm_loss`` / ``mlm_acc``; the discriminator's
        ``rtd_acc`` (over real tokens), ``rtd_replaced_acc`` / ``rtd_original_acc`` (recall of each
        class), ``rtd_precision`` (of "replaced"), ``rtd_auc`` (the ROC area of the logits: the
        reference's ``disc_auc``; 0.5 = chance, and it moves long before accuracy does, since a
        discriminator unsure of plausible replacements answers "original" everywhere),
        ``rtd_loss`` (BCE) and ``replaced_share`` (1 - replaced_share is the accuracy of answering
        "original" everywhere, the baseline rtd_acc has to beat)."""
        if self.eval_dataset is None:
            return None
        from berts.data.sampler import ResumableBatchSampler
        from berts.electra import replaced_token_step
        from berts.metrics import roc_auc

        sampler = ResumableBatchSampler(len(self.eval_dataset), self.eval_batch_size, seed=0, shuffle=False,
                                        drop_last=False)
        mods = {"model": self.model, "generator": self.generator}
        was = {k: m.training for k, m in mods.items()}
        for m in mods.values():
            m.eval()
        s = dict.fromkeys(("mlm_loss", "mlm_acc", "n_mlm", "rtd_loss", "hit", "real", "rep", "rep_hit",
                           "orig_hit", "said_rep"), 0.0)
        zs, ys = [], []
        try:
            for i, (epoch, step, indices) in enumerate(sampler):
                if i >= self.eval_batches:
                    break
                batch = model_inputs(trainer.to_device(self.eval_dataset[(epoch, step, indices)]))
                with trainer.autocast():
                    _, _, x = replaced_token_step(self.model, self.generator, batch, self.rtd_weight)
                labels, logits = batch["mlm_labels"], x["generator"].prediction_logits.float()
                s["mlm_loss"] += float(F.cross_entropy(logits, labels, reduction="sum"))
                s["mlm_acc"] += float((top1(logits) == labels).sum())
                s["n_mlm"] += labels.numel()
                real = batch["attention_mask"] == 1
                z, y = x["discriminator"].logits.float()[real], x["labels"][real].float()
                hit = ((z > 0).float() == y).float()
                s["rtd_loss"] += float(F.binary_cross_entropy_with_logits(z, y, reduction="sum"))
                s["hit"] += float(hit.sum())
                s["real"] += y.numel()
                s["rep"] += float(y.sum())
                s["rep_hit"] += float((hit * y).sum())
                s["orig_hit"] += float((hit * (1 - y)).sum())
                s["said_rep"] += float((z > 0).sum())
                zs.append(z.cpu())
                ys.append(y.cpu())
        finally:
            for k, m in mods.items():
                m.train(was[k])
        n, real, rep = max(s["n_mlm"], 1), max(s["real"], 1), s["rep"]
        return {"mlm_loss": s["mlm_loss"] / n, "mlm_acc": s["mlm_acc"] / n, "rtd_loss": s["rtd_loss"] / real,
                "rtd_acc": s["hit"] / real, "rtd_replaced_acc": s["rep_hit"] / max(rep, 1),
                "rtd_original_acc": s["orig_hit"] / max(s["real"] - rep, 1),
                "rtd_precision": s["rep_hit"] / max(s["said_rep"], 1),
                "rtd_auc": roc_auc(torch.cat(zs).numpy(), torch.cat(ys).numpy()) if zs else float("nan"),
                "replaced_share": rep / real}

    def describe(self) -> str:
        g = self.generator.config
        return (f"ELECTRA: generator L{g.num_hidden_layers} H{g.hidden_size} A{g.num_attention_heads} "
                f"I{g.intermediate_size}; loss = mlm + {self.rtd_weight:g} x rtd")
