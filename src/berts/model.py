"""The BERT encoder: embeddings -> post-LN Transformer layers -> pooler.

One file, read top to bottom. ALBERT is this model with two switches:
``embedding_size`` (factorized V x E table, then E -> H) and ``share_layers``
(cross-layer sharing of attention, FFN, or whole layers). Task heads live in heads.py.
Parameter names here are ours; hf.py maps them to and from transformers' names.

Fast paths, each a switch (``set_fast_path``) with the plain path beside it, tested equal within
1e-5 (tests/test_fastpath.py): ``unpad``/``pack`` (see Unpadded), ``sparse_output`` (the
``output_rows`` of BertModel.forward), ``fast_dropout``; ``compile_model`` wraps torch.compile
with a clean fallback. benchmarks/README.md says what each one gives.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from berts.config import BertConfig
from berts.padding import Unpadded, unpad_index


def activation(name: str):
    return {
        "gelu": F.gelu,  # exact (erf) GELU, as BERT
        "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # ALBERT's default
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
        "silu": F.silu,
        "tanh": torch.tanh,
    }[name]


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Dropout that draws 16 random bits per element (four from each int64) instead of a float:
    on CPU the draw is most of dropout's cost, and this one is about 3x cheaper. ``p`` is rounded
    to a multiple of 2**-16 (0.1 -> 0.100006) and the scale is 1 / (1 - that), so the
    expectation is exact. Off the CPU it is F.dropout (CUDA's is fused already)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    n, cut = x.numel(), round(p * 65536)
    bits = torch.randint(-2 ** 63, 2 ** 63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
    keep = bits.view(torch.int16)[:n].view(x.shape) >= cut - 32768
    return torch.where(keep, x * (65536 / (65536 - cut)), 0.0)


class Dropout(nn.Dropout):
    """nn.Dropout with the ``fast_dropout`` switch (see set_fast_path)."""

    fast_dropout: bool = True

    def forward(self, x):
        if self.fast_dropout:
            return fast_dropout(x, self.p, self.training)
        return F.dropout(x, self.p, self.training)


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    rows: torch.Tensor | None = None  # sparse output: last_hidden_state holds these flat positions only

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
        self.dropout = Dropout(config.hidden_dropout_prob)
        # ALBERT: E -> H (present whenever embedding_size is set, as transformers' ALBERT has it)
        self.projection = nn.Linear(e, config.hidden_size) if config.embedding_size is not None else None

    def forward(self, input_ids, token_type_ids=None, position_ids=None):
        """input_ids [B, S], or [T] (unpadded: then position_ids are given)."""
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[-1], device=input_ids.device).unsqueeze(0)
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
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.attn_dropout = config.attention_probs_dropout_prob

    def forward(self, x, mask=None, output_attentions=False, unpadded: Unpadded | None = None, rows=None):
        """x: [B, S, H] (or [T, H] with ``unpadded``); mask: bool [B, 1, 1, S] or [B, 1, S, S]
        (True = attend; unpadded.mask with ``unpadded``) or None.

        ``rows``: flat indices of the tokens whose output is wanted; the output projection (and
        what follows) then runs on those rows only and the result is [N, H].
        """
        h = x.shape[-1]
        qkv = self.qkv(x) if unpadded is None else unpadded.to_rows(self.qkv(x))
        b, s = qkv.shape[:2]
        q, k, v = qkv.view(b, s, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        probs = None
        fast = self.dropout.fast_dropout and p > 0 and x.device.type == "cpu"
        if output_attentions or fast:  # the math path: SDPA gives no weights, and its CPU dropout is slow
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            probs = scores.softmax(-1)
            ctx = (fast_dropout(probs, p) if fast else F.dropout(probs, p, self.training)) @ v
            probs = probs if output_attentions else None
        else:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        ctx = ctx.transpose(1, 2).reshape(b, s, h)
        if unpadded is not None:
            ctx = unpadded.from_rows(ctx)
        if rows is not None:
            ctx, x = ctx.reshape(-1, h).index_select(0, rows), x.reshape(-1, h).index_select(0, rows)
        return self.norm(x + self.dropout(self.out(ctx))), probs


class BertFeedForward(nn.Module):
    """H -> I -> H with activation, residual + LayerNorm (post-LN)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.act = activation(config.hidden_act)

    def forward(self, x):
        return self.norm(x + self.dropout(self.down(self.act(self.up(x)))))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig, attention: BertAttention | None = None,
                 ffn: BertFeedForward | None = None):
        super().__init__()
        self.attention = attention or BertAttention(config)
        self.ffn = ffn or BertFeedForward(config)

    def forward(self, x, mask=None, output_attentions=False, unpadded=None, rows=None):
        x, probs = self.attention(x, mask, output_attentions, unpadded, rows)
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

    def forward(self, x, mask=None, output_hidden_states=False, output_attentions=False, unpadded=None,
                rows=None):
        """``rows``: compute only these (flat) rows in the last layer's output projection and FFN."""
        hidden = [x] if output_hidden_states else None
        attentions = [] if output_attentions else None
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x, probs = layer(x, mask, output_attentions, unpadded, rows if i == last else None)
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

    def set_fast_path(self, **switches):
        """Switch fast paths on (True), off (False) or back to their default (None), e.g.
        ``model.set_fast_path(unpad=False)``. Known: unpad, pack, sparse_output, fast_dropout.

        Each fast path computes the same numbers as its plain path (tests/test_fastpath.py).
        """
        for name, value in switches.items():
            if name not in FAST_PATHS:
                raise ValueError(f"unknown fast path {name!r} (known: {', '.join(FAST_PATHS)})")
            for m in self.modules():
                if hasattr(type(m), name):
                    if value is None:  # back to the class default
                        m.__dict__.pop(name, None)
                    else:
                        setattr(m, name, bool(value))
        return self

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

    # Fast paths (set_fast_path). None = on while training, off in eval, where every output then
    # matches transformers, padding positions included.
    # * unpad: with padding in the batch, everything but attention runs on the real tokens only
    #   (hidden states at padding positions are then zeros; the rest is equal).
    # * pack (with unpad): attention packs several sequences into each row (see Unpadded).
    # * sparse_output: a head that needs a few positions only (masked tokens, [CLS]) names them in
    #   ``output_rows``; the last layer's output projection and FFN run on those rows only.
    unpad: bool | None = None
    pack: bool | None = None
    sparse_output: bool | None = None

    def fast(self, name: str) -> bool:
        value = getattr(self, name)
        return self.training if value is None else value

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                output_hidden_states=False, output_attentions=False, output_rows=None, **unused) -> EncoderOutput:
        """``output_rows``: flat indices into B*S of the positions a head needs. With the sparse_output
        fast path on, last_hidden_state is then [N, H] for those rows (``rows`` says so); the pooler
        still sees every [CLS]. Otherwise it is the usual [B, S, H]."""
        b, s = input_ids.shape
        full = output_hidden_states or output_attentions
        rows = None
        if output_rows is not None and not full and self.fast("sparse_output"):
            rows = output_rows
            if self.pooler is not None:  # the [CLS] rows first
                rows = torch.cat([torch.arange(b, device=input_ids.device) * s, output_rows])
        unpadded = None
        if attention_mask is not None and not full and self.fast("unpad"):
            unpadded = unpad_index(attention_mask, pack=self.fast("pack"))
        if unpadded is not None:
            if position_ids is None:
                position_ids = unpadded.index % unpadded.seq
            else:
                position_ids = unpadded.unpad(position_ids.expand(input_ids.shape))
            token_type_ids = unpadded.unpad(token_type_ids) if token_type_ids is not None else None
            x = self.embeddings(unpadded.unpad(input_ids), token_type_ids, position_ids)
            x, hidden, attentions = self.encoder(x, unpadded.mask, unpadded=unpadded,
                                                 rows=None if rows is None else unpadded.positions(rows))
            if rows is None:
                x = unpadded.pad(x)
        else:
            x = self.embeddings(input_ids, token_type_ids, position_ids)
            mask = attention_mask_4d(attention_mask)
            if output_attentions and mask is None:
                mask = torch.ones_like(input_ids, dtype=torch.bool)[:, None, None, :]
            x, hidden, attentions = self.encoder(x, mask, output_hidden_states, output_attentions, rows=rows)
        if rows is not None:
            pooled = self.pooler(x[:b, None]) if self.pooler is not None else None
            return EncoderOutput(last_hidden_state=x[b:] if self.pooler is not None else x,
                                 pooler_output=pooled, rows=output_rows)
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden) if hidden is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
        )


FAST_PATHS = ("unpad", "pack", "sparse_output", "fast_dropout")


def compile_model(model: nn.Module, **options) -> nn.Module:
    """``torch.compile`` the model's forward in place (options go to torch.compile).

    Falls back cleanly: when compiling is unavailable, or the compiled forward fails where the
    plain one works, it warns once and runs the plain forward from then on.
    """
    plain = model.forward
    try:
        compiled = torch.compile(plain, **options)
    except Exception as exc:  # no compiler, unsupported platform or Python
        warnings.warn(f"torch.compile is unavailable ({type(exc).__name__}: {exc}); running the plain model",
                      stacklevel=2)
        return model

    def forward(*args, **kwargs):
        nonlocal compiled
        if compiled is not None:
            try:
                return compiled(*args, **kwargs)
            except Exception as exc:
                out = plain(*args, **kwargs)  # a mistake in the inputs raises here, as without compile
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); "
                              "running the plain model", stacklevel=2)
                compiled = None
                return out
        return plain(*args, **kwargs)

    model.forward = forward
    return model
