"""Heads and task models: BertForPreTraining, BertForMaskedLM, BertForSequenceClassification.

Calling convention and output field names follow transformers, so code written for
transformers trains berts unchanged. Additions:

* Sparse MLM. With ``labels`` ([B, S], -100 = not predicted) or with ``mlm_positions``
  (flat indices into [B*S]) + ``mlm_labels`` (as our collator gives), the MLM head gathers
  the masked positions first and computes logits only there: ``prediction_logits`` is then
  [N, vocab] for the N predicted positions, in row-major order. Without labels it is the
  full [B, S, vocab], as transformers gives.
* Sparse output (fast path ``sparse_output``, on while training): the heads ask the encoder
  for the rows they need only (masked positions, [CLS]), so the last layer's output projection
  and FFN skip the others; ``last_hidden_state`` is then None.
* Span boundary objective (SpanBERT), enabled by ``config.span_boundary_objective``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from berts.config import BertConfig
from berts.model import BertModel, BertPreTrainedModel, Dropout, activation


@dataclass
class ModelOutput:
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    # the parts of the loss, for logging (detached)
    losses: dict[str, torch.Tensor] | None = None

    def __getitem__(self, key):
        return getattr(self, key)


class MLMHead(nn.Module):
    """transform (dense H -> E, activation, LayerNorm) then decoder tied to the word embeddings."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.emb_size)
        self.act = activation(config.hidden_act)
        self.norm = nn.LayerNorm(config.emb_size, eps=config.layer_norm_eps)
        self.word_embeddings = [word_embeddings]  # a list: tied, not registered twice
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def decode(self, h):
        """[.., E] -> [.., vocab] through the tied word embeddings."""
        return F.linear(h, self.word_embeddings[0].weight, self.bias)

    def forward(self, h):
        return self.decode(self.norm(self.act(self.dense(h))))


class SpanBoundaryHead(nn.Module):
    """SpanBERT's SBO: predict each span token from the two boundary tokens + its position in the span.

    y = LN(GeLU(W2 · LN(GeLU(W1 · [x_left; x_right; p_rel])))), then the tied decoder of the MLM head.
    """

    def __init__(self, config: BertConfig, max_span: int = 10):
        super().__init__()
        h = config.hidden_size
        self.position_embeddings = nn.Embedding(max_span, h)
        self.dense1 = nn.Linear(3 * h, h)
        self.norm1 = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dense2 = nn.Linear(h, config.emb_size)  # E: it feeds the tied decoder
        self.norm2 = nn.LayerNorm(config.emb_size, eps=config.layer_norm_eps)

    def forward(self, flat_hidden, left, right, rel):
        x = torch.cat([flat_hidden[left], flat_hidden[right], self.position_embeddings(rel)], dim=-1)
        x = self.norm1(F.gelu(self.dense1(x)))
        return self.norm2(F.gelu(self.dense2(x)))


def _mlm_targets(labels, mlm_positions, mlm_labels):
    """transformers-style labels [B, S] (-100 ignored) -> flat positions + ids."""
    if mlm_positions is None and labels is not None:
        flat = labels.reshape(-1)
        mlm_positions = (flat != -100).nonzero().squeeze(1)
        mlm_labels = flat.index_select(0, mlm_positions)
    return mlm_positions, mlm_labels


class BertForPreTraining(BertPreTrainedModel):
    """Encoder + MLM head (+ NSP/SOP head on the pooled [CLS]) (+ optional SBO head)."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.mlm = MLMHead(config, self.bert.embeddings.word_embeddings)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)
        self.sbo = SpanBoundaryHead(config, config.sbo_max_span) if config.span_boundary_objective else None
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, next_sentence_label=None, sentence_order_label=None,
                mlm_positions=None, mlm_labels=None, sbo_left=None, sbo_right=None, sbo_rel=None,
                output_hidden_states=False, output_attentions=False, **unused) -> ModelOutput:
        mlm_positions, mlm_labels = _mlm_targets(labels, mlm_positions, mlm_labels)
        sbo = self.sbo is not None and sbo_left is not None  # SBO reads other positions: full output
        enc = self.bert(input_ids, attention_mask, token_type_ids, position_ids,
                        output_hidden_states=output_hidden_states, output_attentions=output_attentions,
                        output_rows=None if sbo else mlm_positions)
        x = enc.last_hidden_state
        losses = {}
        if mlm_positions is not None:  # sparse: gather first, then transform and project
            flat = x.reshape(-1, x.shape[-1])
            prediction_logits = self.mlm(flat if enc.rows is not None else flat.index_select(0, mlm_positions))
            losses["mlm"] = F.cross_entropy(prediction_logits.float(), mlm_labels)
            if sbo:
                sbo_logits = self.mlm.decode(self.sbo(flat, sbo_left, sbo_right, sbo_rel))
                losses["sbo"] = F.cross_entropy(sbo_logits.float(), mlm_labels)
        else:
            prediction_logits = self.mlm(x)
        seq_relationship_logits = self.seq_relationship(enc.pooler_output)
        pair_label = next_sentence_label if next_sentence_label is not None else sentence_order_label
        if pair_label is not None:
            losses["nsp"] = F.cross_entropy(seq_relationship_logits.float(), pair_label.reshape(-1))
        loss = sum(losses.values()) if losses else None
        return ModelOutput(
            loss=loss, prediction_logits=prediction_logits, seq_relationship_logits=seq_relationship_logits,
            last_hidden_state=x if enc.rows is None else None, pooler_output=enc.pooler_output,
            hidden_states=enc.hidden_states, attentions=enc.attentions,
            losses={k: v.detach() for k, v in losses.items()} or None,
        )


class BertForMaskedLM(BertPreTrainedModel):
    """Encoder (no pooler, as transformers) + MLM head. Sparse logits when labels are given."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.mlm = MLMHead(config, self.bert.embeddings.word_embeddings)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, mlm_positions=None, mlm_labels=None,
                output_hidden_states=False, output_attentions=False, **unused) -> ModelOutput:
        mlm_positions, mlm_labels = _mlm_targets(labels, mlm_positions, mlm_labels)
        enc = self.bert(input_ids, attention_mask, token_type_ids, position_ids,
                        output_hidden_states=output_hidden_states, output_attentions=output_attentions,
                        output_rows=mlm_positions)
        x = enc.last_hidden_state
        loss = None
        if mlm_positions is not None:
            picked = x if enc.rows is not None else x.reshape(-1, x.shape[-1]).index_select(0, mlm_positions)
            logits = self.mlm(picked)
            loss = F.cross_entropy(logits.float(), mlm_labels)
        else:
            logits = self.mlm(x)
        return ModelOutput(loss=loss, logits=logits, prediction_logits=logits,
                           last_hidden_state=x if enc.rows is None else None,
                           hidden_states=enc.hidden_states, attentions=enc.attentions,
                           losses={"mlm": loss.detach()} if loss is not None else None)


class BertForSequenceClassification(BertPreTrainedModel):
    """Pooled [CLS] -> dropout -> linear. One sentence or a pair; classification or regression."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    @property
    def is_regression(self) -> bool:
        return self.config.problem_type == "regression" or self.config.num_labels == 1

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, output_hidden_states=False, output_attentions=False, **unused) -> ModelOutput:
        enc = self.bert(input_ids, attention_mask, token_type_ids, position_ids,
                        output_hidden_states=output_hidden_states, output_attentions=output_attentions,
                        output_rows=input_ids.new_zeros(0))  # only [CLS] is needed
        logits = self.classifier(self.dropout(enc.pooler_output))
        loss = None
        if labels is not None:
            if self.is_regression:
                loss = F.mse_loss(logits.float().squeeze(-1), labels.float().reshape(-1))
            else:
                loss = F.cross_entropy(logits.float(), labels.reshape(-1))
        return ModelOutput(loss=loss, logits=logits,
                           last_hidden_state=enc.last_hidden_state if enc.rows is None else None,
                           pooler_output=enc.pooler_output, hidden_states=enc.hidden_states,
                           attentions=enc.attentions,
                           losses={"task": loss.detach()} if loss is not None else None)


TASK_MODELS = {
    "BertModel": BertModel,
    "BertForPreTraining": BertForPreTraining,
    "BertForMaskedLM": BertForMaskedLM,
    "BertForSequenceClassification": BertForSequenceClassification,
}
