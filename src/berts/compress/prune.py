"""Structured pruning: a smaller BERT cut out of a bigger one, as a student's init.

Minitron (Muralidharan et al. 2024, "Compact Language Models via Pruning and Knowledge
Distillation") prunes depth and width by *activation* importance measured on a few batches, then
distils; it reports that a pruned init beats a random one by far at the same distillation budget.
berts uses it for a TinyBERT-shaped student when there is no time for general distillation
(``berts distill --student-init prune``): the student keeps

* the teacher layers that TinyBERT's uniform map gives it (student layer m <- teacher layer
  floor(m Lt / Ls), so the intermediate losses compare each layer with the one it came from);
* the ``hidden_size`` residual dimensions with the largest mean |activation| over the embeddings'
  and every layer's output (one set for the whole residual stream: embeddings, every LayerNorm,
  every projection's rows or columns, the pooler and the classifier);
* in each kept layer, the ``num_attention_heads`` heads whose context vectors have the largest
  mean norm, and in each head ``head_dim`` query/key dimensions (by mean |q_d| x mean |k_d|, what a
  dimension adds to the scores) and ``head_dim`` value dimensions (by mean |context_d|). The queries
  are scaled by sqrt(head_dim_student / head_dim_teacher), so the kept dimensions give the scores
  they gave in the teacher (softmax's 1/sqrt(head_dim) changes with the width);
* in each kept layer, the ``intermediate_size`` FFN neurons with the largest mean |activation|
  (``ffn: glu``: a neuron is a row of the up matrix's value half and its row in the gate half);
* the heads on the residual stream cut to the kept dimensions: the pooler's dense and norm, and a
  task head's linear over H (``classifier``, ``qa_outputs``) with, when it reads each token through
  ModernBERT's transform first (``token_head: transform``: dense, act, norm), that transform's dense
  (rows and columns) and norm.

Exactness (tests/test_prune.py): cutting heads, head dimensions and neurons (all layers and the full
residual width kept) gives exactly the teacher with the cut rows zeroed; cutting nothing gives the
teacher. Cutting residual dimensions or layers has no such equivalent (the LayerNorms then see other
statistics): that is what the distillation after it is for.

BERT and the modern switches (pre-LN with its final norm, GeGLU/SwiGLU, no bias, RMSNorm, no
embedding norm, RoPE, no token types): the student must have the teacher's switches, only smaller;
with RoPE it keeps the teacher's ``head_dim`` (the rotation pairs dimensions i and i + d/2 at
frequencies set by d: a head's dimensions cannot be cut). Factorised embeddings and shared layers are
refused.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from berts.errors import UserError

__all__ = ["Importance", "measure_importance", "prune_model", "check_prunable"]


@dataclass
class Importance:
    """Mean |activation| statistics of a model on some batches (L layers, nh heads of hd dims)."""

    dims: torch.Tensor  # [H]: residual dimensions (embeddings' and every layer's output)
    heads: torch.Tensor  # [L, nh]: mean norm of each head's context vector
    q: torch.Tensor  # [L, nh, hd]: mean |query_d|
    k: torch.Tensor  # [L, nh, hd]: mean |key_d|
    v: torch.Tensor  # [L, nh, hd]: mean |context_d| (the attention-weighted values)
    neurons: torch.Tensor  # [L, I]: mean |FFN activation|


def _encoder(model):
    return model.bert if hasattr(model, "bert") else model


# what a student must share with its teacher for the teacher's weights to mean the same in it
# (the heads' own switches, pooler_norm and token_head, are compared on the modules in prune_model: a
# classifier's token_head, or a token head's pooler_norm, means nothing)
SAME_SWITCHES = ("norm_position", "norm_type", "ffn", "bias", "has_norm_bias", "embedding_norm", "first_attn_norm",
                 "position_embedding_type")


def check_prunable(teacher_config, student_config, where: str = "--student-init prune") -> None:
    """One-line errors for shapes pruning cannot make."""
    t, s = teacher_config, student_config
    for c, who in ((t, "the teacher"), (s, "the student")):
        if c.embedding_size not in (None, c.hidden_size) or c.share_layers != "none":
            raise UserError(f"{where}: {who} must have no factorised embeddings and no shared layers")
    for key in SAME_SWITCHES:
        if getattr(s, key) != getattr(t, key):
            raise UserError(f"{where}: the student's {key} ({getattr(s, key)}) differs from the teacher's "
                            f"({getattr(t, key)}); pruning keeps the architecture, only smaller")
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "head_dim"):
        if getattr(s, key) > getattr(t, key):
            raise UserError(f"{where}: the student's {key} ({getattr(s, key)}) is larger than the teacher's "
                            f"({getattr(t, key)}); pruning only removes")
    if s.num_attention_heads * s.head_dim != s.hidden_size:
        raise UserError(f"{where}: hidden_size {s.hidden_size} is not num_attention_heads x head_dim")
    if t.position_embedding_type == "rope" and s.head_dim != t.head_dim:
        raise UserError(f"{where}: with RoPE the student keeps the teacher's head_dim ({t.head_dim}, not "
                        f"{s.head_dim}): cut heads, not dimensions within them")
    for key in ("vocab_size", "max_position_embeddings", "type_vocab_size"):
        if getattr(s, key) != getattr(t, key):
            raise UserError(f"{where}: the student's {key} ({getattr(s, key)}) differs from the teacher's "
                            f"({getattr(t, key)})")


@torch.no_grad()
def measure_importance(model, batches) -> Importance:
    """Activation statistics of ``model`` (eval mode, fast paths off) over ``batches`` (dicts with
    input_ids, attention_mask and optionally token_type_ids [B, S]); padding is left out."""
    enc = _encoder(model)
    cfg = enc.config
    L, nh, hd, inter = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim, cfg.intermediate_size
    h = cfg.hidden_size
    sums = dict(dims=torch.zeros(h, dtype=torch.float64), heads=torch.zeros(L, nh, dtype=torch.float64),
                q=torch.zeros(L, nh, hd, dtype=torch.float64), k=torch.zeros(L, nh, hd, dtype=torch.float64),
                v=torch.zeros(L, nh, hd, dtype=torch.float64), neurons=torch.zeros(L, inter, dtype=torch.float64))
    real = {}

    def rows(x):  # [B, S, D] -> [real tokens, D]
        return x.reshape(-1, x.shape[-1])[real["mask"]].double()

    def on_qkv(i):
        def hook(module, inputs, out):
            q, k, _ = rows(out).view(-1, 3, nh, hd).unbind(1)
            sums["q"][i] += q.abs().sum(0)
            sums["k"][i] += k.abs().sum(0)
        return hook

    def on_ctx(i):
        def hook(module, inputs):
            ctx = rows(inputs[0]).view(-1, nh, hd)
            sums["v"][i] += ctx.abs().sum(0)
            sums["heads"][i] += ctx.norm(dim=-1).sum(0)
        return hook

    def on_inner(i):
        def hook(module, inputs):
            sums["neurons"][i] += rows(inputs[0]).abs().sum(0)
        return hook

    was_training = model.training
    model.eval()
    model.set_fast_path(unpad=False, pack=False)
    handles = []
    for i, layer in enumerate(enc.encoder.layers):
        handles.append(layer.attention.qkv.register_forward_hook(on_qkv(i)))
        handles.append(layer.attention.out.register_forward_pre_hook(on_ctx(i)))
        handles.append(layer.ffn.down.register_forward_pre_hook(on_inner(i)))
    tokens = 0
    try:
        for batch in batches:
            mask = batch["attention_mask"].bool()
            real["mask"] = mask.reshape(-1)
            out = enc(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      token_type_ids=batch.get("token_type_ids"), output_hidden_states=True)
            for state in out.hidden_states:  # the embeddings' output, then every layer's
                sums["dims"] += rows(state).abs().sum(0)
            tokens += int(mask.sum())
    finally:
        for handle in handles:
            handle.remove()
        model.set_fast_path(unpad=None, pack=None)
        model.train(was_training)
    if not tokens:
        raise UserError("--student-init prune: the batches hold no real tokens to measure")
    return Importance(**{key: (value / tokens).float() for key, value in sums.items()})


def _top(scores: torch.Tensor, n: int) -> torch.Tensor:
    """The indices of the ``n`` largest scores, in increasing index order (ties: the lower index)."""
    order = torch.argsort(-scores, stable=True)[:n]
    return order.sort().values


@torch.no_grad()
def prune_model(model, config, imp: Importance, layers: list[int]):
    """A new ``type(model)`` of ``config`` (the student's shape) whose weights are cut out of ``model``:
    student layer j <- teacher layer ``layers[j]`` (0-based); see the module docstring for what is kept."""
    src = _encoder(model)
    t = src.config
    check_prunable(t, config)
    if len(layers) != config.num_hidden_layers:
        raise ValueError(f"{len(layers)} layers for a student of {config.num_hidden_layers}")
    student = type(model)(config)
    dst = _encoder(student)
    dims = _top(imp.dims, config.hidden_size)
    nh_s, hd_s, hd_t, h_t = config.num_attention_heads, config.head_dim, t.head_dim, t.hidden_size
    scale = math.sqrt(hd_s / hd_t)

    se, de = src.embeddings, dst.embeddings
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        if getattr(se, name) is not None:  # RoPE: no position table; type_vocab_size 0: no segment table
            getattr(de, name).weight.copy_(getattr(se, name).weight[:, dims])
    _cut_norm(de.LayerNorm, se.LayerNorm, dims)

    for j, i in enumerate(layers):
        sa, da = src.encoder.layers[i].attention, dst.encoder.layers[j].attention
        heads = _top(imp.heads[i], nh_s)
        qk = torch.stack([(_top(imp.q[i, hh] * imp.k[i, hh], hd_s) + hh * hd_t) for hh in heads.tolist()]).reshape(-1)
        vv = torch.stack([(_top(imp.v[i, hh], hd_s) + hh * hd_t) for hh in heads.tolist()]).reshape(-1)
        rows = torch.cat([qk, qk + h_t, vv + 2 * h_t])  # the fused [query; key; value] rows kept
        w = sa.qkv.weight[rows][:, dims].clone()
        w[:len(qk)] *= scale  # the queries: the same scores with fewer dimensions
        da.qkv.weight.copy_(w)
        if sa.qkv.bias is not None:
            b = sa.qkv.bias[rows].clone()
            b[:len(qk)] *= scale
            da.qkv.bias.copy_(b)
        _cut_linear(da.out, sa.out, dims, vv)
        _cut_norm(da.norm, sa.norm, dims)  # post-LN: after the residual; pre-LN: on the input (none: layer 0)
        sf, df = src.encoder.layers[i].ffn, dst.encoder.layers[j].ffn
        neurons = _top(imp.neurons[i], config.intermediate_size)
        # glu: up is [value; gate], each I_t rows: a neuron keeps its row in both halves
        up = torch.cat([neurons, neurons + t.intermediate_size]) if sf.glu else neurons
        _cut_linear(df.up, sf.up, up, dims)
        _cut_linear(df.down, sf.down, dims, neurons)
        _cut_norm(df.norm, sf.norm, dims)
    if src.encoder.final_norm is not None:  # pre-LN's norm on the last layer's output
        _cut_norm(dst.encoder.final_norm, src.encoder.final_norm, dims)

    if getattr(src, "pooler", None) is not None and getattr(dst, "pooler", None) is not None:
        _same_modules(src.pooler.norm, dst.pooler.norm, "pooler_norm", t, config)
        _cut_transform(dst.pooler, src.pooler, dims)
    for name in ("classifier", "qa_outputs"):  # a task head's linear over H: its columns (and its transform)
        head, cut = getattr(model, name, None), getattr(student, name, None)
        if isinstance(head, torch.nn.Linear) and isinstance(cut, torch.nn.Linear):
            _cut_linear(cut, head, None, dims)
            _same_modules(getattr(head, "transform", None), getattr(cut, "transform", None), "token_head", t, config)
            if getattr(head, "transform", None) is not None:  # token_head: transform (ModernBERT's)
                _cut_transform(cut.transform, head.transform, dims)
    return student


def _same_modules(teacher_part, student_part, key: str, t, s) -> None:
    """A head part the teacher has and the student not (or the reverse) would be lost (or left random)."""
    if (teacher_part is None) != (student_part is None):
        raise UserError(f"--student-init prune: the student's {key} ({getattr(s, key)}) differs from the "
                        f"teacher's ({getattr(t, key)}); pruning keeps the architecture, only smaller")


def _cut_linear(dst, src, rows, cols) -> None:
    """dst's weight <- src's at [rows][:, cols] (None: all), its bias (if any) <- src's at rows."""
    w = src.weight if rows is None else src.weight[rows]
    dst.weight.copy_(w if cols is None else w[:, cols])
    if src.bias is not None:
        dst.bias.copy_(src.bias if rows is None else src.bias[rows])


def _cut_norm(dst, src, dims) -> None:
    """A LayerNorm / RMSNorm's weight and bias (those it has) at ``dims``. Where either side has none
    (Identity, None), nothing: with ``first_attn_norm: false`` the student's layer 0 has no attention
    norm (it reads the embedding norm as it is), so a later teacher layer cut into it leaves its norm."""
    for name in ("weight", "bias"):
        p, q = getattr(src, name, None), getattr(dst, name, None)
        if p is not None and q is not None:
            q.copy_(p[dims])


def _cut_transform(dst, src, dims) -> None:
    """encoder.HeadTransform (the pooler's, or a token head's): dense H -> H at [dims][:, dims], its norm."""
    _cut_linear(dst.dense, src.dense, dims, dims)
    if src.norm is not None:
        _cut_norm(dst.norm, src.norm, dims)
