"""Pooling: token states -> one sentence embedding, as a module of the model.

The modes are sentence-transformers' (``1_Pooling/config.json`` names them, berts.embed.st_format
reads and writes that file), with the same numbers (tests/test_embed.py checks against
sentence-transformers itself):

* ``cls``: the first token's state ([CLS]);
* ``mean``: the mean over the real tokens (padding excluded; [CLS] and [SEP] included, as ST does);
* ``max``: the per-feature max over the real tokens;
* ``mean_sqrt_len_tokens`` (alias ``mean-sqrt-len``): the sum divided by sqrt(number of tokens);
* ``weightedmean``: token i (1-based) weighs i (SGPT's position weighting);
* ``lasttoken``: the last real token.

Several modes concatenate, in the order given: [B, len(modes) * H]. ``normalize`` divides each
embedding by its L2 norm (ST's ``2_Normalize`` module).

Two input layouts, the same numbers:

* padded: ``hidden`` [B, S, H] with ``attention_mask`` [B, S] (1 = real token; right padding or
  left padding both work, except ``weightedmean``/``cls``/``lasttoken``, which count positions
  from the first real token as ST does);
* unpadded: ``hidden`` [T, H], the real tokens of B sequences one after another, with
  ``cu_seqlens`` [B + 1] (sequence b is tokens cu_seqlens[b]:cu_seqlens[b+1]). This is what
  berts' encoder computes on its unpad fast path (berts.model.padding.Unpadded: ``index`` is
  ascending, so the tokens come grouped by sequence, in order); pooling there skips the scatter
  back to [B, S, H].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
ALIASES = {"mean-sqrt-len": "mean_sqrt_len_tokens", "mean_sqrt_len": "mean_sqrt_len_tokens",
           "weighted-mean": "weightedmean", "weighted_mean": "weightedmean", "last": "lasttoken",
           "last-token": "lasttoken"}


def pooling_modes(modes) -> tuple[str, ...]:
    """A mode name or a sequence of them -> the canonical names (ValueError on an unknown one)."""
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    if not modes:
        raise ValueError("no pooling mode given")
    out = []
    for m in modes:
        m = ALIASES.get(str(m).lower(), str(m).lower())
        if m not in MODES:
            raise ValueError(f"unknown pooling mode {m!r} (known: {', '.join(MODES)}, mean-sqrt-len)")
        out.append(m)
    return tuple(out)


class Pooling(nn.Module):
    """Token states -> sentence embeddings [B, len(modes) * H] (see the module's docstring)."""

    def __init__(self, hidden_size: int, modes="mean", normalize: bool = False):
        super().__init__()
        self.hidden_size = int(hidden_size)
        self.modes = pooling_modes(modes)
        self.normalize = bool(normalize)

    @property
    def dim(self) -> int:
        return self.hidden_size * len(self.modes)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, modes={self.modes}, normalize={self.normalize}"

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None,
                cu_seqlens: torch.Tensor | None = None, normalize: bool | None = None) -> torch.Tensor:
        """hidden [B, S, H] + attention_mask [B, S] (None: every token is real), or hidden [T, H] +
        cu_seqlens [B + 1] -> [B, len(modes) * H]. ``normalize`` overrides the module's flag."""
        if cu_seqlens is not None:
            parts = self._unpadded(hidden, cu_seqlens)
        else:
            if attention_mask is None:
                attention_mask = hidden.new_ones(hidden.shape[:2])
            parts = self._padded(hidden, attention_mask)
        out = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        if self.normalize if normalize is None else normalize:
            out = F.normalize(out, p=2, dim=-1)  # x / max(||x||, 1e-12), as ST's Normalize
        return out

    # --------------------------------------------------------------- [B, S, H] + mask
    def _padded(self, hidden, attention_mask) -> list[torch.Tensor]:
        b, s, _ = hidden.shape
        mask = attention_mask.to(hidden.dtype)[:, :, None]  # [B, S, 1]
        count = mask.sum(1).clamp(min=1e-9)  # [B, 1] real tokens (an all-padding row: no NaN)
        first = attention_mask.long().argmax(1)  # [B] the first real token (0 with right padding)
        out = []
        for mode in self.modes:
            if mode == "cls":
                out.append(hidden[torch.arange(b, device=hidden.device), first])  # [B, H]
            elif mode == "max":
                out.append(hidden.masked_fill(mask == 0, float("-inf")).max(1).values)
            elif mode == "mean":
                out.append((hidden * mask).sum(1) / count)
            elif mode == "mean_sqrt_len_tokens":
                out.append((hidden * mask).sum(1) / count.sqrt())
            elif mode == "weightedmean":
                # weight of position p: p + 1 - first (1 for the first real token)
                w = torch.arange(1, s + 1, device=hidden.device, dtype=hidden.dtype)[None, :, None] \
                    - first.to(hidden.dtype)[:, None, None]
                w = mask * w  # [B, S, 1]
                out.append((hidden * w).sum(1) / w.sum(1).clamp(min=1e-9))
            else:  # lasttoken: the last real token (position S-1 for an all-padding row, as ST)
                flipped = attention_mask.long().flip(1)
                seen, last = flipped.max(1)
                last = torch.where(seen == 0, torch.zeros_like(last), last)
                out.append((hidden * mask)[torch.arange(b, device=hidden.device), s - 1 - last])
        return out

    # --------------------------------------------------------------- [T, H] + cu_seqlens
    def _unpadded(self, x, cu_seqlens) -> list[torch.Tensor]:
        t, h = x.shape
        cu = cu_seqlens.long()
        lengths = cu[1:] - cu[:-1]  # [B]
        b = lengths.numel()
        seq = torch.repeat_interleave(torch.arange(b, device=x.device), lengths)  # [T] each token's sequence
        pos = torch.arange(t, device=x.device) - cu[:-1][seq]  # [T] its position, 0-based
        count = lengths.to(x.dtype)[:, None].clamp(min=1e-9)  # [B, 1]
        out = []
        for mode in self.modes:
            if mode == "cls":
                out.append(x[cu[:-1].clamp(max=max(t - 1, 0))] * (lengths > 0).to(x.dtype)[:, None])
            elif mode == "lasttoken":
                out.append(x[(cu[1:] - 1).clamp(min=0)] * (lengths > 0).to(x.dtype)[:, None])
            elif mode == "max":
                m = x.new_full((b, h), float("-inf"))
                out.append(m.scatter_reduce(0, seq[:, None].expand(t, h), x, reduce="amax"))
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                total = x.new_zeros(b, h).index_add(0, seq, x)
                out.append(total / (count if mode == "mean" else count.sqrt()))
            else:  # weightedmean
                w = (pos + 1).to(x.dtype)[:, None]  # [T, 1]
                total = x.new_zeros(b, h).index_add(0, seq, x * w)
                out.append(total / x.new_zeros(b, 1).index_add(0, seq, w).clamp(min=1e-9))
        return out


def cu_seqlens_of(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, S] right-padded 1/0 mask -> cu_seqlens [B + 1] (int64): 0, len0, len0+len1, ..."""
    lengths = attention_mask.long().sum(1)
    return torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
