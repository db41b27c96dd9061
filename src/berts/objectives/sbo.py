"""SpanBERT's span boundary objective: predict each masked token of a span from the two tokens
just outside the span and its place in it, through the MLM head's tied decoder.

y = LN(GeLU(W2 · LN(GeLU(W1 · [x_left; x_right; p_rel])))), then MaskedLM.decode. Its own loss part
"sbo", over the same masked tokens as "mlm". Batch keys: ``sbo_left``, ``sbo_right`` (flat
positions), ``sbo_rel`` (0..max_span-1), with the MLM targets. It reads positions other than the
masked ones, so it asks the encoder for every row (no sparse output).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from berts.model.config import BertConfig
from berts.objectives.base import Objective, Result, accuracy, register
from berts.objectives.registry import ObjectiveSpec

# the masking makes its targets (data.masking, sbo=True: the span ends of each masked span)
SPEC = ObjectiveSpec(
    name="sbo", kind="token", help="SpanBERT's span boundary objective (with masking: span)",
    head="berts.objectives.sbo:SpanBoundary", attr="sbo", batch_keys=("sbo_left", "sbo_right", "sbo_rel"),
    dataset_options={"sbo": True})


@register
class SpanBoundary(Objective):
    name = "sbo"
    parts = ("sbo",)
    metric_parts = {"sbo_acc": "sbo"}
    batch_keys = ("sbo_left", "sbo_right", "sbo_rel")
    hf_names = {"": {"bert": "cls.span_boundary.", "albert": "span_boundary."}}

    def __init__(self, config: BertConfig, mlm, max_span: int | None = None):
        super().__init__()
        h = config.hidden_size
        self.position_embeddings = nn.Embedding(max_span or config.sbo_max_span, h)
        self.dense1 = nn.Linear(3 * h, h)
        self.norm1 = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dense2 = nn.Linear(h, config.emb_size)  # E: it feeds the tied decoder
        self.norm2 = nn.LayerNorm(config.emb_size, eps=config.layer_norm_eps)
        self.mlm = [mlm]  # a list: its decoder is shared, not registered twice

    @classmethod
    def build(cls, model, config):
        return cls(config, model.mlm)

    def head(self, flat_hidden, left, right, rel):
        x = torch.cat([flat_hidden[left], flat_hidden[right], self.position_embeddings(rel)], dim=-1)
        x = self.norm1(F.gelu(self.dense1(x)))
        return self.norm2(F.gelu(self.dense2(x)))

    def active(self, batch) -> bool:
        return batch.get("sbo_left") is not None

    def rows(self, batch):
        return None if self.active(batch) else batch["input_ids"].new_zeros(0)

    def counts(self, batch):
        if not self.active(batch):
            return {}
        return {"sbo": self.mlm[0].counts(batch).get("mlm", 0)}

    def forward(self, enc, batch, picked):
        if not self.active(batch) or batch.get("mlm_labels") is None:
            return Result()
        x = enc.last_hidden_state
        logits = self.mlm[0].decode(self.head(x.reshape(-1, x.shape[-1]), batch["sbo_left"], batch["sbo_right"],
                                              batch["sbo_rel"]))
        labels = batch["mlm_labels"]
        metrics = {"sbo_acc": accuracy(logits, labels)} if labels.numel() else {}
        return Result(losses={"sbo": F.cross_entropy(logits.float(), labels)}, metrics=metrics)
