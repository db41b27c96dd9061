"""TinyBERT (Jiao et al. 2020; huawei-noah/Pretrained-Language-Model TinyBERT) as a Task for the
one engine: the student and one projection train, the teacher is frozen.

Layer mapping (``losses.uniform_layer_map``): student layer m <- teacher layer floor(m Lt / Ls),
m = 0..Ls, 0 = the embeddings. Loss parts (each its mean times its ``distill.alpha_*``):

* ``emb``: MSE of proj(student embeddings) against the teacher's, over real tokens;
* ``hidden``: the same for every student layer m >= 1 against its teacher layer, summed over m;
* ``att``: MSE of the pre-softmax attention scores of student layer m against its teacher layer
  (padding entries zeroed, mean over real (query, key) entries and heads), summed over m; the
  student needs the teacher's number of heads (as in the reference);
* ``pred`` (task distillation): soft cross-entropy of the student's logits against the teacher's
  at T (1 by default).

``stage``: ``intermediate`` (emb + hidden + att: general distillation, and task distillation's
first stage), ``prediction`` (pred only: its second stage), ``all`` (the four together).

The projection (hidden_s -> hidden_t, one shared by every layer, the reference's ``fit_dense``;
none when the widths are equal) is a trainable module named ``proj``: checkpointed with the
student in ``modules.safetensors`` (resume is exact) and not in ``final/`` or ``best/``, which
stay plain Hugging Face BERT directories.
"""
from __future__ import annotations

import torch
from torch import nn

from berts.compress import losses as L
from berts.errors import UserError
from berts.tasks.base import ENCODER_INPUTS, Task, model_inputs

STAGES = {"intermediate": ("emb", "hidden", "att"), "prediction": ("pred",), "all": ("emb", "hidden", "att", "pred")}


class TinyBertTask(Task):
    name = "tinybert"

    def __init__(self, student, teacher, train_dataset, dev_dataset=None, *, mode: str, stage: str = "intermediate",
                 temperature: float = 1.0, alphas: dict | None = None, evaluator=None, metric: str | None = None,
                 proj: nn.Module | None = None):
        """``mode``: ``general`` (any batches with input_ids / attention_mask; the student is an
        encoder; MLM-masked batches are unmasked first) or ``task`` (classification batches; the
        teacher and the student are classifiers). ``proj``: the projection (default: a new
        Linear when the widths differ)."""
        if mode not in ("general", "task"):
            raise ValueError(f"mode must be general or task, got {mode!r}")
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        if mode == "general" and "pred" in STAGES[stage]:
            raise UserError("TinyBERT's prediction-layer loss is task distillation's: general distillation "
                            "trains the intermediate layers (distill.stage intermediate)")
        self.student, self.teacher, self.mode, self.stage = student, teacher, mode, stage
        self.train_dataset, self.dev_dataset = train_dataset, dev_dataset
        self.temperature = float(temperature)
        self.alphas = {"emb": 1.0, "att": 1.0, "hidden": 1.0, "pred": 1.0, **(alphas or {})}
        self.loss_parts = STAGES[stage]
        self.metric_parts = {"agree": "pred"} if "pred" in self.loss_parts else {}
        self.evaluator, self.metric = evaluator, metric
        sc, tc = student.config, teacher.config
        self.layer_map = L.uniform_layer_map(sc.num_hidden_layers, tc.num_hidden_layers)
        self.intermediate = stage != "prediction"
        if self.intermediate and sc.num_attention_heads != tc.num_attention_heads:
            raise UserError(f"TinyBERT's attention loss compares heads one to one: the student has "
                            f"{sc.num_attention_heads} heads, the teacher {tc.num_attention_heads} (give the student "
                            f"{tc.num_attention_heads}: model.num_attention_heads)")
        if proj is None and self.intermediate and sc.hidden_size != tc.hidden_size:
            proj = nn.Linear(sc.hidden_size, tc.hidden_size)
            proj.weight.data.normal_(0.0, sc.initializer_range)  # as the reference's BertPreTrainedModel init
            proj.bias.data.zero_()
        self.proj = proj
        self.heads = tc.num_attention_heads

    @classmethod
    def from_config(cls, k, student, teacher, train_dataset, dev_dataset=None, *, mode: str, evaluator=None,
                    metric=None):
        """The task of `berts distill --method tinybert` (``k``: the config's distill section,
        berts.compress.registry); stage auto: intermediate for general distillation, all for task."""
        stage = k.stage if k.stage != "auto" else ("intermediate" if mode == "general" else "all")
        return cls(student, teacher, train_dataset, dev_dataset, mode=mode, stage=stage, temperature=k.temperature,
                   alphas=dict(emb=k.alpha_emb, att=k.alpha_att, hidden=k.alpha_hidden, pred=k.alpha_pred),
                   evaluator=evaluator, metric=metric)

    def modules(self):
        return {"model": self.student, **({"proj": self.proj} if self.proj is not None else {})}

    def frozen_modules(self):
        return {"teacher": self.teacher}

    def counts(self, batch):
        mask = batch["attention_mask"]
        real = int(mask.sum())
        n = {"emb": real, "hidden": real, "att": L.attention_entries(mask, self.heads),
             "pred": int(batch["input_ids"].shape[0])}
        return {p: n[p] for p in self.loss_parts}

    @staticmethod
    def unmasked(batch) -> dict:
        """The encoder inputs, with an MLM batch's masked tokens put back (general distillation
        learns from the text itself, as the reference)."""
        x = {k: v for k, v in model_inputs(batch).items() if k in ENCODER_INPUTS}
        if "mlm_positions" in batch:
            ids = x["input_ids"].clone()
            ids.view(-1)[batch["mlm_positions"]] = batch["mlm_labels"].to(ids.dtype)
            x["input_ids"] = ids
        return x

    def loss(self, modules, batch):
        x = self.unmasked(batch)
        inter = self.intermediate
        s = modules.model(**x, output_hidden_states=inter, output_attention_scores=inter)
        with torch.no_grad():
            t = self.teacher(**x, output_hidden_states=inter, output_attention_scores=inter)
        losses, metrics = {}, {}
        if inter:
            mask = x["attention_mask"]
            real = mask.bool()
            proj = getattr(modules, "proj", None) if self.proj is not None else None
            hs, ht = s.hidden_states, t.hidden_states
            losses["emb"] = self.alphas["emb"] * L.hidden_mse(hs[0][real], ht[0][real], proj)
            hidden = att = 0.0
            for m in range(1, len(self.layer_map)):
                k = self.layer_map[m]
                hidden = hidden + L.hidden_mse(hs[m][real], ht[k][real], proj)
                att = att + L.attention_mse(s.attention_scores[m - 1], t.attention_scores[k - 1], mask)
            losses["hidden"] = self.alphas["hidden"] * hidden
            losses["att"] = self.alphas["att"] * att
        if "pred" in self.loss_parts:
            losses["pred"] = self.alphas["pred"] * L.soft_cross_entropy(s.logits, t.logits, self.temperature)
            metrics["agree"] = (s.logits.detach().argmax(-1) == t.logits.argmax(-1)).float().mean()
        return losses, metrics

    def evaluate(self, engine):
        return self.evaluator.evaluate(engine) if self.evaluator is not None else None

    def describe(self) -> str:
        width = (f"projection {self.student.config.hidden_size} -> {self.teacher.config.hidden_size}"
                 if self.proj is not None else "no projection")
        return (f"TinyBERT {self.mode}, stage {self.stage} ({' + '.join(self.loss_parts)}); layer map "
                f"{','.join(map(str, self.layer_map))}; {width}"
                + (f"; T={self.temperature:g}" if "pred" in self.loss_parts else ""))
