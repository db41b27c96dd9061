"""Attention, in one function, and the masks it takes.

``attention(q, k, v, mask)`` is the only attention code in berts: BertAttention calls it on every
path (plain, unpadded, packed). It runs SDPA when nothing but the context is wanted, and the math
path (scores -> mask -> softmax -> dropout -> @ v) when the caller wants the pre-softmax scores
(TinyBERT) or the probabilities (``output_attentions``), or when dropout runs on the CPU with
``fast_dropout`` (SDPA's CPU dropout draws a float per element: slow).

Masks are bool, True = attend, broadcast against [rows, heads, S, S]:

* padding: ``padding_mask(attention_mask)`` -> [B, 1, 1, S];
* full: [B, 1, S, S], query i may attend key j: ``causal_mask(S)``, ``right_to_left_mask(S)``,
  ``prefix_mask(token_type_ids)`` (UniLM's seq2seq mask), or any hand-built one;
* ``mode_mask(mode, attention_mask, token_type_ids)``: UniLM's four modes (``MODES``) as a full
  [B, S, S] mask, intersected with the padding (padding queries attend nothing, so the fast
  paths drop them); ``UNILM_MIX`` is UniLM's share of each mode in pretraining;
* ``combine(a, b, ...)``: their intersection (None ones skipped).

A float mask is an additive bias (added to the scores), as SDPA takes it. The block-diagonal mask
of packed rows is built in padding.py from any of these.

The modern encoder's two pieces live here too: rotary positions (``rope_angles``, ``apply_rope``:
transformers' convention, the two halves of each head rotated together; ``rope_qkv``: the same on
the fused q, k, v in one pass, what the encoder runs) and sliding-window
attention (``local_attention``: chunked, memory linear in S; ``band_mask``: its dense reference).
Packed rows (padding.Unpadded) never get a mask quadratic in their width: global attention runs
per sequence (``varlen_attention``, no mask), local attention compares segment ids within its
blocks (``local_attention(segments=...)``; ``segment_mask``: the dense block-diagonal reference).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

WANTS = (None, "scores", "probs", ("scores", "probs"))


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


_fast_dropout = fast_dropout  # attention()'s keyword of the same name hides it there


def attention(q, k, v, mask=None, *, dropout_p: float = 0.0, fast_dropout: bool = False, want=None):
    """q, k, v: [rows, heads, S, d]; mask: bool (True = attend) or float (added), broadcastable to
    [rows, heads, S, S], or None. ``dropout_p``: dropout on the probabilities (pass 0.0 in eval).

    ``want``: None (context only), "scores" (the scaled q.k^T BEFORE the mask, [rows, heads, S, S]),
    "probs" (the softmax probabilities, before dropout) or ("scores", "probs") (both, a tuple).
    Returns (context [rows, heads, S, d], extra or None).
    """
    if want not in WANTS:
        raise ValueError(f"want must be one of {WANTS}, got {want!r}")
    cpu_fast = fast_dropout and dropout_p > 0 and q.device.type == "cpu"
    if want is None and not cpu_fast:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p), None
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # [rows, heads, S, S]
    masked = scores
    if mask is not None:
        masked = scores.masked_fill(~mask, torch.finfo(scores.dtype).min) if mask.dtype == torch.bool \
            else scores + mask
    probs = masked.softmax(-1)
    dropped = _fast_dropout(probs, dropout_p) if cpu_fast else F.dropout(probs, dropout_p, dropout_p > 0)
    ctx = dropped @ v
    extra = {None: None, "scores": scores, "probs": probs}.get(want) if not isinstance(want, tuple) \
        else (scores, probs)
    return ctx, extra


# ------------------------------------------------------------------------------ masks
def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, S] 1/0 (1 = real token) -> bool [B, 1, 1, S]: every query sees the real keys."""
    return attention_mask.bool()[:, None, None, :]


def causal_mask(seq: int, device=None) -> torch.Tensor:
    """bool [1, 1, S, S]: query i sees keys j <= i."""
    return torch.ones(seq, seq, dtype=torch.bool, device=device).tril()[None, None]


def prefix_mask(segments: torch.Tensor, seq: int | None = None) -> torch.Tensor:
    """UniLM's seq2seq mask, bool [B, 1, S, S]: segment A (the prefix) sees all of A; a token of
    segment B sees A and B up to itself.

    ``segments``: token_type_ids [B, S] (0 = A, 1 = B), or prefix lengths [B] (then ``seq`` is S).
    """
    if segments.dim() == 1:
        segments = (torch.arange(seq, device=segments.device)[None, :] >= segments[:, None]).long()
    s = segments.shape[1]
    a = segments == 0  # [B, S]
    earlier = torch.ones(s, s, dtype=torch.bool, device=segments.device).tril()  # [S(query), S(key)]
    allowed = a[:, None, :] | (~a[:, :, None] & earlier)  # key in A, or (query in B and key not later)
    return allowed[:, None]


def combine(*masks):
    """The intersection of bool masks (None ones skipped; None when all are None)."""
    out = None
    for m in masks:
        if m is not None:
            out = m if out is None else out & m
    return out


def right_to_left_mask(seq: int, device=None) -> torch.Tensor:
    """bool [1, 1, S, S]: query i sees keys j >= i (the mirror of ``causal_mask``)."""
    return torch.ones(seq, seq, dtype=torch.bool, device=device).triu()[None, None]


# UniLM's self-attention modes, in this order everywhere (the mode index a batch carries is the
# place in this tuple); UNILM_MIX is UniLM's mix: 1/3 bidirectional, 1/6 each direction, 1/3 seq2seq.
MODES = ("bidirectional", "left-to-right", "right-to-left", "seq2seq")
UNILM_MIX = (1 / 3, 1 / 6, 1 / 6, 1 / 3)


def mode_index(mode) -> int:
    """A mode name (or its index) -> its index in MODES."""
    if isinstance(mode, str):
        if mode not in MODES:
            raise ValueError(f"attention mode must be one of {', '.join(MODES)}, got {mode!r}")
        return MODES.index(mode)
    mode = int(mode)
    if not 0 <= mode < len(MODES):
        raise ValueError(f"attention mode index must be 0..{len(MODES) - 1}, got {mode}")
    return mode


def mode_mask(mode, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
    """The full mask of one of UniLM's modes: bool [B, S, S], query i may attend key j.

    ``attention_mask``: the padding mask [B, S] (1 = real). Query i attends key j when both are
    real and the mode allows it: bidirectional (all), left-to-right (j <= i), right-to-left
    (j >= i), seq2seq (``prefix_mask`` on ``token_type_ids``: A sees A, B sees A and B up to
    itself). Padding queries attend nothing (the model gives them their own key: no NaN).
    """
    m = mode_index(mode)
    real = attention_mask.bool()  # [B, S]
    b, s = real.shape
    allowed = real[:, None, :] & real[:, :, None]  # [B, S(query), S(key)]
    if m == 1:
        allowed = allowed & causal_mask(s, real.device)[0]
    elif m == 2:
        allowed = allowed & right_to_left_mask(s, real.device)[0]
    elif m == 3:
        if token_type_ids is None:
            raise ValueError("the seq2seq mode needs token_type_ids (0 = source, 1 = target)")
        allowed = allowed & prefix_mask(token_type_ids)[:, 0]
    return allowed


# ------------------------------------------------------------------ rotary positions
def rope_angles(positions: torch.Tensor, dim: int, theta: float):
    """positions [...] (any shape, integer) -> (cos, sin), each [..., dim]: the angle of pair
    (i, i + dim/2) at position p is p / theta ** (2i / dim) (RoFormer; transformers' layout, where
    the pairs are the two halves of the head, not neighbours)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim))
    freqs = positions[..., None].float() * inv_freq  # [..., dim/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [..., dim]
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [..., d] by the angles (cos, sin broadcastable to x): x cos + rotate_half(x) sin,
    rotate_half(x) = (-x2, x1) for the halves (x1, x2). Computed in float32 (as transformers)."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos + torch.cat((-x2, x1), dim=-1) * sin).to(x.dtype)


def _rotate_qk(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, heads: int) -> torch.Tensor:
    """``rope_qkv``'s computation, outside autograd: a new [.., 3 heads d] tensor whose q and k are
    turned by (cos, sin) and whose v is copied. Each half written in place of a fresh tensor with
    two fused ops (x1 c - x2 s, x2 c + x1 s; c, s: the first half of cos, sin, the second repeats
    it): no rotate_half copy, no cat, no stack (experiments/2026-12-06-modern/ab_pieces.py times it)."""
    dtype, work = qkv.dtype, torch.promote_types(qkv.dtype, torch.float32)  # bf16/fp16: float32
    y = qkv.to(work).unflatten(-1, (3, heads, 2, -1))  # [.., 3, heads, 2, d/2]: q|k|v, the two halves
    half = y.shape[-1]
    c, s = cos[..., None, None, :half].to(work), sin[..., None, None, :half].to(work)  # [.., 1, 1, d/2]
    out = torch.empty_like(y)
    x1, x2, o1, o2 = y[..., :2, :, 0, :], y[..., :2, :, 1, :], out[..., :2, :, 0, :], out[..., :2, :, 1, :]
    torch.mul(x1, c, out=o1).addcmul_(x2, s, value=-1)
    torch.mul(x2, c, out=o2).addcmul_(x1, s)
    out[..., 2, :, :, :] = y[..., 2, :, :, :]
    return out.flatten(-4).to(dtype)


class _RopeQKV(torch.autograd.Function):
    """Autograd for ``_rotate_qk``: the rotation is orthogonal, so the gradient of q and k is the
    upstream gradient turned back (sin negated); v's passes through."""

    @staticmethod
    def forward(ctx, qkv, cos, sin, heads):
        ctx.save_for_backward(cos, sin)
        ctx.heads = heads
        return _rotate_qk(qkv, cos, sin, heads)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        return _rotate_qk(grad.contiguous(), cos, -sin, ctx.heads), None, None, None


def rope_qkv(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, heads: int) -> torch.Tensor:
    """The fused projection's output [.., 3 heads d] ([q; k; v], as BertAttention's ``qkv``) with q and
    k rotated by (cos, sin) [.., d] (``rope_angles`` of each token's position, broadcast over the
    heads): the same numbers as ``apply_rope`` on q and on k (within float rounding: fused
    multiply-adds), in one pass. Computed in float32, returned in qkv's dtype."""
    return _RopeQKV.apply(qkv, cos, sin, heads)


# ------------------------------------------------------------- packed rows, per sequence
def varlen_attention(qkv: torch.Tensor, lengths: list[int], heads: int, *, dropout_p: float = 0.0,
                     fast_dropout: bool = False) -> torch.Tensor:
    """Full attention of several sequences laid end to end: qkv [T, 3 heads d] (the unpadded
    tokens, each sequence's contiguous, T = sum of ``lengths``) -> context [T, heads d], each
    sequence attending within itself. No mask at all: each run of consecutive sequences of one
    length L is one ``attention`` call on a [n, heads, L, d] view (a single sequence: n = 1), so
    the scores are sum L_i^2, not a packed row's S^2, and no block-diagonal [S, S] mask is built
    (SDPA's CPU kernels would also turn it into an [S, S] float bias). On the CPU's flash kernel
    the memory is linear in the length. ``dropout_p``, ``fast_dropout``: as ``attention``'s.

    The same numbers as ``attention`` on packed rows with the block mask, within float rounding
    (the kernel sums a sequence's keys in other blocks: about 1e-7). A length of 0 is skipped."""
    out, start, i = [], 0, 0
    while i < len(lengths):
        length, n = lengths[i], 1
        while i + n < len(lengths) and lengths[i + n] == length:
            n += 1
        i += n
        if length == 0:
            continue
        part = qkv[start:start + n * length]  # [n L, 3 heads d]
        start += n * length
        # 4-d, [n, heads, L, d]: SDPA's CPU flash kernel (3-d inputs take the math path, [L, L] scores)
        q, k, v = part.reshape(n, length, 3, heads, -1).permute(2, 0, 3, 1, 4)
        ctx, _ = attention(q, k, v, dropout_p=dropout_p, fast_dropout=fast_dropout)
        out.append(ctx.transpose(1, 2).reshape(n * length, -1))  # [n L, heads d]
    if not out:
        return qkv.new_zeros(0, qkv.shape[-1] // 3)
    return out[0] if len(out) == 1 else torch.cat(out)


def segment_mask(segments: torch.Tensor) -> torch.Tensor:
    """Packed rows' segment ids [rows, S] (each slot's sequence, -1 for an empty slot) -> the
    block-diagonal bool [rows, 1, S, S]: a slot attends the slots of its own sequence (empty slots
    nothing; ``band_mask`` and ``local_attention`` then let a query see itself). Dense: for short
    rows (``local_attention``'s dense band) and references in tests."""
    return ((segments[:, :, None] == segments[:, None, :]) & (segments[:, :, None] >= 0))[:, None]


# ------------------------------------------------------------ sliding-window attention
def band_mask(seq: int, window: int, mask=None, device=None) -> torch.Tensor:
    """The dense reference of ``local_attention``'s keys: bool [.., S, S], query i sees key j when
    |i - j| <= window // 2 and ``mask`` allows it (broadcast as attention's), or when j == i (a
    query with no key in reach, padding far from the text, then sees itself: no NaN)."""
    pos = torch.arange(seq, device=device)
    dist = (pos[:, None] - pos[None, :]).abs()
    band = dist <= window // 2  # [S, S]
    if mask is None:
        return band[None, None]
    return band & (mask.bool() | (dist == 0))


DENSE_BLOCKS = 4  # local_attention: S up to 4 h (h = window // 2) takes the dense band mask


def local_attention(q, k, v, mask=None, *, window: int, dropout_p: float = 0.0,
                    segments: torch.Tensor | None = None) -> torch.Tensor:
    """Sliding-window attention without an [S, S] matrix: query i attends key j when
    |i - j| <= h = window // 2 (ModernBERT's local layers) and ``mask`` allows it; the same numbers
    as ``attention(q, k, v, band_mask(S, window, mask))``.

    Chunked: the S positions are cut into blocks of h; block b's queries can only reach blocks
    b - 1, b, b + 1, so each block attends a 3h-key window (the band applied within it) in one
    batched SDPA call over [rows, heads, S/h, h, 3h] scores: memory 3 h S per head, linear in S.

    q, k, v: [rows, heads, S, d]; mask: bool [rows|1, 1, 1, S] (keys) or [rows|1, 1, S, S] (full:
    gathered into the blocks), or None. ``segments``: long [rows, S], packed rows' sequence of each
    slot (-1 empty; padding.Unpadded.segments): a query attends keys of its own sequence only, the
    same as the mask ``segment_mask(segments)`` but compared within the blocks ([rows, S/h, h, 3h]),
    never as an [S, S] matrix; with ``mask`` too, both apply. Returns the context [rows, heads, S, d].

    Short sequences (S <= DENSE_BLOCKS h) take one SDPA call on the dense band mask instead: its
    S^2 scores are at most DENSE_BLOCKS / 3 of the blocks' 3 h S, and it skips copying keys and
    values into the overlapping windows, which costs more than that at these lengths (128 tokens,
    a 64-token window: 1.3x the blocks' work, no copies). Memory stays linear: bounded S.
    """
    r, nh, s, d = q.shape
    h = max(window // 2, 1)
    if segments is not None and s <= DENSE_BLOCKS * h:  # the dense paths below: S is small, S^2 bools are cheap
        mask, segments = combine(mask, segment_mask(segments)), None
    if s <= h + 1:  # every key within reach: the band is all True, plain attention (S <= h + 1: small)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else band_mask(s, window, mask),
                                              dropout_p=dropout_p)
    if s <= DENSE_BLOCKS * h:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=band_mask(s, window, mask, device=q.device),
                                              dropout_p=dropout_p)
    nb = -(-s // h)  # blocks
    extra = nb * h - s  # the last block's padding
    dev = q.device

    def windows(x):  # [.., S, d] -> [.., nb, 3h, d]: block b's keys are positions (b - 1) h .. (b + 2) h - 1
        x = F.pad(x, (0, 0, h, extra + h))  # [.., (nb + 2) h, d]
        return x.unfold(-2, 3 * h, h).transpose(-1, -2)

    qb = F.pad(q, (0, 0, 0, extra)).reshape(r, nh, nb, h, d)
    kb, vb = windows(k), windows(v)  # [rows, heads, nb, 3h, d]
    # query b h + i and key (b - 1) h + j (place j of block b's window) are i + h - j apart whatever
    # b: the band and the diagonal are one [h, 3h] pattern; only the ends (keys before 0 or past S) vary
    i = torch.arange(h, device=dev)[:, None]
    j = torch.arange(3 * h, device=dev)[None, :]
    same = j == i + h  # [h, 3h]
    kpos = torch.arange(-h, (nb + 1) * h, device=dev).unfold(0, 3 * h, h)  # [nb, 3h]
    allowed = ((j - i - h).abs() <= h) & ((kpos >= 0) & (kpos < s))[:, None, :]  # [nb, h, 3h]
    if mask is not None:
        m = mask.bool()
        if m.shape[-2] == 1:  # keys only: [R, 1, 1, S] -> [R, 1, nb, 1, 3h]
            mk = F.pad(m[:, :, 0], (h, extra + h)).unfold(-1, 3 * h, h)[:, :, :, None, :]
        else:  # full: entry (query, key) of each block's window
            qpos = torch.arange(nb * h, device=dev).view(nb, h)  # [nb, h]
            mp = F.pad(m, (h, extra + h, 0, extra))  # [R, 1, nb h, (nb + 2) h]
            mk = mp[:, :, qpos[:, :, None], (kpos + h)[:, None, :]]  # [R, 1, nb, h, 3h]
        allowed = allowed & (mk | same)  # as band_mask: a query out of reach of every key sees itself
    if segments is not None:  # packed rows: query and key of one sequence, [R, 1, nb, h, 3h]
        sq = F.pad(segments, (0, extra), value=-1).view(r, nb, h)  # the queries' blocks
        sk = F.pad(segments, (h, extra + h), value=-1).unfold(-1, 3 * h, h)  # each block's 3h keys
        ms = (sq[:, :, :, None] == sk[:, :, None, :]) & (sq >= 0)[:, :, :, None]  # [R, nb, h, 3h]
        allowed = allowed & (ms[:, None] | same)
    if extra:  # the last block's padding queries (places h - extra .. h - 1) see themselves: no NaN
        allowed[..., -1, :, :] |= same & (i >= h - extra)
    # SDPA takes 4-d batches: the blocks join the rows, [rows nb, heads, h | 3h, d]
    allowed = allowed.expand(r, 1, nb, h, 3 * h)
    flat = lambda x: x.transpose(1, 2).reshape(r * nb, *x.shape[1:2], *x.shape[3:])  # noqa: E731
    ctx = F.scaled_dot_product_attention(flat(qb), flat(kb), flat(vb), attn_mask=flat(allowed), dropout_p=dropout_p)
    return ctx.view(r, nb, nh, h, d).transpose(1, 2).reshape(r, nh, nb * h, d)[:, :, :s]
