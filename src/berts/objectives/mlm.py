"""Masked language modelling: predict the original id at each masked position.

Sparse: the targets are flat positions into [B*S] + their ids (``mlm_positions``/``mlm_labels``,
what our collator gives), or transformers' ``labels`` [B, S] (-100 = not predicted), turned into
the same. The head then runs at those positions only and ``prediction_logits`` is [N, vocab], in
row-major order (the loss equals the dense one). Without targets it is the full [B, S, vocab].

Head: transform (dense H -> E, activation, LayerNorm), then the decoder tied to the word embeddings.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from berts.model.config import BertConfig
from berts.model.encoder import activation
from berts.objectives.base import Objective, Result, accuracy, register
from berts.objectives.registry import ObjectiveSpec

# the registry reads this statement without importing the module (objectives/registry.py)
SPEC = ObjectiveSpec(
    name="mlm", kind="token", help="masked language modelling (BERT)",
    head="berts.objectives.mlm:MaskedLM", attr="mlm", batch_keys=("mlm_positions", "mlm_labels"),
    eval_labels="mlm_labels", eval_logits="prediction_logits")


def mlm_targets(batch: dict):
    """(flat positions [N], ids [N]) from ``mlm_positions``/``mlm_labels`` or from ``labels`` [B, S]; or (None, None)."""
    if batch.get("mlm_positions") is not None:
        return batch["mlm_positions"], batch["mlm_labels"]
    labels = batch.get("labels")
    if labels is None:
        return None, None
    flat = labels.reshape(-1)
    positions = (flat != -100).nonzero().squeeze(1)
    return positions, flat.index_select(0, positions)


@register
class MaskedLM(Objective):
    name = "mlm"
    parts = ("mlm",)
    metric_parts = {"mlm_acc": "mlm"}
    batch_keys = ("labels", "mlm_positions", "mlm_labels")
    hf_names = {
        "dense.": {"bert": "cls.predictions.transform.dense.", "albert": "predictions.dense."},
        "norm.": {"bert": "cls.predictions.transform.LayerNorm.", "albert": "predictions.LayerNorm."},
        "bias": {"bert": "cls.predictions.bias", "albert": "predictions.bias"},
    }

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.emb_size)
        self.act = activation(config.hidden_act)
        self.norm = nn.LayerNorm(config.emb_size, eps=config.layer_norm_eps)
        self.word_embeddings = [word_embeddings]  # a list: tied, not registered twice
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    @classmethod
    def build(cls, model, config):
        return cls(config, model.bert.embeddings.word_embeddings)

    def decode(self, h):
        """[.., E] -> [.., vocab] through the tied word embeddings."""
        return F.linear(h, self.word_embeddings[0].weight, self.bias)

    def predict(self, h):
        """[.., H] -> [.., vocab]."""
        return self.decode(self.norm(self.act(self.dense(h))))

    def prepare(self, batch):
        if batch.get("mlm_positions") is None and batch.get("labels") is not None:
            positions, ids = mlm_targets(batch)
            batch = dict(batch, mlm_positions=positions, mlm_labels=ids)
        return batch

    def rows(self, batch):
        return batch.get("mlm_positions")  # None (no targets): dense logits at every position

    def counts(self, batch):
        if batch.get("mlm_labels") is not None:
            return {"mlm": int(batch["mlm_labels"].numel())}
        if batch.get("labels") is not None:
            return {"mlm": int((batch["labels"] != -100).sum())}
        return {}

    def forward(self, enc, batch, picked):
        labels = batch.get("mlm_labels")
        if labels is None:
            return Result(fields={"prediction_logits": self.predict(enc.last_hidden_state)})
        logits = self.predict(picked)  # [N, vocab]
        metrics = {"mlm_acc": accuracy(logits, labels)} if labels.numel() else {}
        return Result({"prediction_logits": logits}, {"mlm": F.cross_entropy(logits.float(), labels)}, metrics)
