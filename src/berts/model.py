"""The BERT encoder: embeddings -> post-LN Transformer layers -> pooler.

One file, read top to bottom. ALBERT is this model with two switches:
``embedding_size`` (factorized V x E table, then E -> H) and ``share_layers``
(cross-layer sharing of attention, FFN, or whole layers). Task heads live in heads.py.
Parameter names here are ours; hf.py maps them to and from transformers' names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from berts.config import BertConfig


def activation(name: str):
    return {
        "gelu": F.gelu,  # exact (erf) GELU, as BERT
        "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # ALBERT's default
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
        "silu": F.silu,
        "tanh": torch.tanh,
    }[name]


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None

    def __getitem__(self, key):  # transformers-style access: out["last_hidden_state"]
        return getattr(self, key)


class BertEmbeddings(nn.Module):
    """token + segment + position embeddings, summed, LayerNorm, dropout; optional E -> H."""

    def __init__(self, config: BertConfig):
        super().__init__()
        e = config.emb_size
        self.word_embeddings = nn.Embedding(config.vocab_size, e, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, e)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, e)
        self.LayerNorm = nn.LayerNorm(e, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        # ALBERT: E -> H (present whenever embedding_size is set, as transformers' ALBERT has it)
        self.projection = nn.Linear(e, config.hidden_size) if config.embedding_size is not None else None

    def forward(self, input_ids, token_type_ids=None, position_ids=None):
        seq_len = input_ids.shape[1]
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=input_ids.device).unsqueeze(0)
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        x = self.dropout(self.LayerNorm(x))
        if self.projection is not None:
            x = self.projection(x)
        return x


class BertAttention(nn.Module):
    """Multi-head self-attention (fused QKV projection) + output projection + residual + LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(h, 3 * h)  # rows: [query; key; value]
        self.out = nn.Linear(h, h)
        self.norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.attn_dropout = config.attention_probs_dropout_prob

    def forward(self, x, mask=None, output_attentions=False):
        """x: [B, S, H]; mask: bool [B, 1, 1, S] (True = attend) or None."""
        b, s, h = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        probs = None
        if output_attentions:  # SDPA does not return the weights: the plain math path
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            probs = scores.softmax(-1)
            ctx = F.dropout(probs, p, self.training) @ v
        else:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        ctx = ctx.transpose(1, 2).reshape(b, s, h)
        return self.norm(x + self.dropout(self.out(ctx))), probs


class BertFeedForward(nn.Module):
    """H -> I -> H with activation, residual + LayerNorm (post-LN)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.act = activation(config.hidden_act)

    def forward(self, x):
        return self.norm(x + self.dropout(self.down(self.act(self.up(x)))))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig, attention: BertAttention | None = None,
                 ffn: BertFeedForward | None = None):
        super().__init__()
        self.attention = attention or BertAttention(config)
        self.ffn = ffn or BertFeedForward(config)

    def forward(self, x, mask=None, output_attentions=False):
        x, probs = self.attention(x, mask, output_attentions)
        return self.ffn(x), probs


class BertEncoder(nn.Module):
    """A stack of layers. With sharing, several entries of ``layers`` hold the same module."""

    def __init__(self, config: BertConfig):
        super().__init__()
        share = config.share_layers
        first = BertLayer(config)
        layers = [first]
        for _ in range(config.num_hidden_layers - 1):
            if share == "all":
                layers.append(first)
            elif share == "attention":
                layers.append(BertLayer(config, attention=first.attention))
            elif share == "ffn":
                layers.append(BertLayer(config, ffn=first.ffn))
            else:
                layers.append(BertLayer(config))
        self.layers = nn.ModuleList(layers)

    def forward(self, x, mask=None, output_hidden_states=False, output_attentions=False):
        hidden = [x] if output_hidden_states else None
        attentions = [] if output_attentions else None
        for layer in self.layers:
            x, probs = layer(x, mask, output_attentions)
            if output_hidden_states:
                hidden.append(x)
            if output_attentions:
                attentions.append(probs)
        return x, hidden, attentions


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


def attention_mask_4d(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """[B, S] 1/0 padding mask -> bool [B, 1, 1, S] for SDPA; None when nothing is padded."""
    if attention_mask is None:
        return None
    mask = attention_mask.bool()
    if not mask.device.type == "cuda" and bool(mask.all()):  # no sync on GPU; CPU: skip the mask
        return None
    return mask[:, None, None, :]


def _init_module(module: nn.Module, std: float) -> None:
    """BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class BertPreTrainedModel(nn.Module):
    """Shared plumbing: init, parameter counting, Hugging Face save/load (see hf.py)."""

    base_model_prefix = "bert"

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config

    def init_weights(self):
        self.apply(lambda m: _init_module(m, self.config.initializer_range))
        return self

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        params = {id(p): p for p in self.parameters()}  # shared parameters counted once
        if exclude_embeddings:
            for m in self.modules():
                if isinstance(m, nn.Embedding):
                    params.pop(id(m.weight), None)
        return sum(p.numel() for p in params.values())

    def save_pretrained(self, directory, tokenizer=None, safe_serialization: bool = True):
        from berts.hf import save_pretrained

        save_pretrained(self, directory, tokenizer=tokenizer)

    @classmethod
    def from_pretrained(cls, directory, **config_overrides):
        from berts.hf import from_pretrained

        return from_pretrained(cls, directory, **config_overrides)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class BertModel(BertPreTrainedModel):
    """The bare encoder. ``forward`` returns last_hidden_state and pooler_output."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                output_hidden_states=False, output_attentions=False, **unused) -> EncoderOutput:
        x = self.embeddings(input_ids, token_type_ids, position_ids)
        mask = attention_mask_4d(attention_mask)
        if output_attentions and mask is None:
            mask = torch.ones_like(input_ids, dtype=torch.bool)[:, None, None, :]
        x, hidden, attentions = self.encoder(x, mask, output_hidden_states, output_attentions)
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden) if hidden is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
        )
