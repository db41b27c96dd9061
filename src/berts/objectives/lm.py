"""Left-to-right language modelling on the BERT encoder (UniLM's generation side).

One objective, two uses, told apart by the targets a batch carries, both next-token prediction
(the hidden state at position i predicts the token at i + 1) under a mask where nothing sees
its future:

* causal LM (``berts pretrain --objective clm``, mode left-to-right): every real token but the
  first is a target;
* seq2seq LM (``--objective seq2seq`` / ``finetune --task seq2seq``, mode seq2seq): the tokens of
  segment B (the target, its closing [SEP] included) are the targets, predicted from all of A
  and B's prefix.

Why next-token and not UniLM's masked-token form for seq2seq: it trains the same mask and lets
generation read the next token off the last position with a key/value cache (berts.serve.generate),
one position per step; the masked form needs a [MASK] slot re-run each step. UniLM's masked
side (unified MLM under a mode) is the MLM objective with the batch's ``lm_mode``.

Sparse, like the MLM: ``lm_positions`` (flat indices into [B*S] of the predicting positions) and
``lm_labels`` (the next ids) select the rows, and the head runs there only. The head is the MLM
head (transform + decoder tied to the word embeddings), shared: this objective has no parameters
of its own, so a model trained with it saves as a plain BertForMaskedLM directory.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from berts.objectives.base import Objective, Result, accuracy, register
from berts.objectives.registry import ObjectiveSpec

# UniLM on the encoder: one model (BertForUnifiedLM), the attention mode drawn per batch
# (data.masking.draw_mode); model_fields say how generation runs a model trained so (config.json)
UNILM = ObjectiveSpec(
    name="unilm", kind="lm", help="UniLM: MLM under an attention mode drawn per batch",
    model="berts.model.heads:BertForUnifiedLM", model_fields={"lm_mode": "left-to-right", "lm_readout": "mask"},
    dataset_options={"lm_objective": "unilm"},
    batch_keys=("lm_mode", "mlm_positions", "mlm_labels"), eval_labels="mlm_labels",
    eval_logits="prediction_logits", eval_name="mlm")
CLM = ObjectiveSpec(
    name="clm", kind="lm", help="causal LM: the next token, left to right",
    model="berts.model.heads:BertForUnifiedLM", model_fields={"lm_mode": "left-to-right", "lm_readout": "next"},
    dataset_options={"lm_objective": "clm"},
    batch_keys=("lm_mode", "lm_positions", "lm_labels"), eval_labels="lm_labels", eval_logits="lm_logits",
    eval_name="lm")
SEQ2SEQ = ObjectiveSpec(
    name="seq2seq", kind="lm", help="seq2seq LM: segment B from A and B's prefix",
    model="berts.model.heads:BertForUnifiedLM", model_fields={"lm_mode": "seq2seq", "lm_readout": "next"},
    dataset_options={"lm_objective": "seq2seq"},
    batch_keys=("lm_mode", "lm_positions", "lm_labels"), eval_labels="lm_labels", eval_logits="lm_logits",
    eval_name="lm")


def next_token_targets(input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                       token_type_ids: torch.Tensor | None = None, target_only: bool = False):
    """(flat positions [N], next ids [N]): position i predicts token i + 1 where i + 1 is real
    (and, with ``target_only``, in segment B: token_type_ids == 1). Row-major order."""
    b, s = input_ids.shape
    real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    if real.dim() == 3:  # a full mask: the real tokens are the keys some query attends
        real = real.any(1)
    nxt = real[:, 1:]
    if target_only:
        if token_type_ids is None:
            raise ValueError("seq2seq targets need token_type_ids (1 = target segment)")
        nxt = nxt & (token_type_ids[:, 1:] == 1)
    keep = torch.zeros_like(real)
    keep[:, :-1] = nxt  # [B, S]: position i predicts i + 1
    positions = keep.reshape(-1).nonzero().squeeze(1)
    return positions, input_ids.reshape(-1).index_select(0, positions + 1)


class OnMLMHead(Objective):
    """Token predictions through a shared MLM head (its transform and tied decoder) at the flat
    positions ``batch[positions_key]`` with targets ``batch[labels_key]``: part ``name``, averaged
    over those positions, metric ``{name}_acc``. No parameters of its own: the MLM objective saves
    the head. NextTokenLM and structure.WordStructure are this with their own keys."""

    positions_key = labels_key = ""
    logits_field: str | None = None  # the output field the logits go to (None: not kept)
    hf_names = {}  # the MLM head's parameters, saved by the MLM objective

    def __init__(self, mlm):
        super().__init__()
        self.mlm = [mlm]  # a list: shared, not registered twice

    @classmethod
    def build(cls, model, config):
        return cls(model.mlm)

    def rows(self, batch):
        positions = batch.get(self.positions_key)
        return positions if positions is not None else batch["input_ids"].new_zeros(0)

    def counts(self, batch):
        labels = batch.get(self.labels_key)
        return {} if labels is None else {self.name: int(labels.numel())}

    def forward(self, enc, batch, picked):
        labels = batch.get(self.labels_key)
        if labels is None:
            return Result()
        logits = self.mlm[0].predict(picked)  # [N, vocab]
        metrics = {f"{self.name}_acc": accuracy(logits, labels)} if labels.numel() else {}
        fields = {self.logits_field: logits} if self.logits_field else {}
        return Result(fields, {self.name: F.cross_entropy(logits.float(), labels)}, metrics)


@register
class NextTokenLM(OnMLMHead):
    name = "lm"
    parts = ("lm",)
    metric_parts = {"lm_acc": "lm"}
    positions_key, labels_key, logits_field = "lm_positions", "lm_labels", "lm_logits"
    batch_keys = (positions_key, labels_key)
