"""ELECTRA pretraining: a generator and a discriminator trained together (replaced-token detection)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from berts.objectives.base import top1
from berts.tasks.base import Task, model_inputs
from berts.errors import UserError
from berts.metrics import roc_auc
from berts.model.electra import SamplingNoise, tie_embeddings
from berts.model.electra import replaced_token_step
from berts.model.runner import run


# ----------------------------------------------------------------------------- ELECTRA
class ElectraPretrainingTask(Task):
    """ELECTRA's replaced-token detection (berts.model.electra): two trainable modules, the
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

        losses, metrics, _ = replaced_token_step(modules.model, modules.generator, model_inputs(batch),
                                                 self.rtd_weight)
        return losses, metrics

    @torch.no_grad()
    def evaluate(self, engine):
        """On eval_shards: the generator's ``mlm_loss`` / ``mlm_acc``; the discriminator's
        ``rtd_acc`` (over real tokens), ``rtd_replaced_acc`` / ``rtd_original_acc`` (recall of each
        class), ``rtd_precision`` (of "replaced"), ``rtd_auc`` (the ROC area of the logits: the
        reference's ``disc_auc``; 0.5 = chance, and it moves long before accuracy does, since a
        discriminator unsure of plausible replacements answers "original" everywhere),
        ``rtd_loss`` (BCE) and ``replaced_share`` (1 - replaced_share is the accuracy of answering
        "original" everywhere, the baseline rtd_acc has to beat)."""
        if self.eval_dataset is None:
            return None

        s = dict.fromkeys(("mlm_loss", "mlm_acc", "n_mlm", "rtd_loss", "hit", "real", "rep", "rep_hit",
                           "orig_hit", "said_rep"), 0.0)
        zs, ys = [], []
        for batch, (_, _, x) in run(self.modules(), self.eval_dataset, batch_size=self.eval_batch_size,
                                    max_batches=self.eval_batches, prepare=model_inputs, device=engine.device,
                                    autocast=engine.autocast,
                                    forward=lambda b: replaced_token_step(self.model, self.generator, model_inputs(b),
                                                                          self.rtd_weight)):
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
