"""Padding machinery, in one place (MosaicBERT's ``bert_padding.py`` is the model for it).

Two jobs:

* **the padding rule** (``pad_width``): how wide a batch is padded. Every batch maker
  (pretraining collator, classification dataset, benchmark) calls it, so they agree: the
  longest sequence rounded up to a multiple (8: tensor-core friendly), never past the cap (the
  model's positions, or the data's maximum length).
* **unpadding** (``Unpadded``, ``unpad_index``): the real tokens of a padded [B, S] batch, so
  that everything but attention runs on the T real tokens only, and attention scatters them
  into rows of S slots: the batch's own rows with the padding mask, or (``pack``) fewer rows
  holding several sequences each, with a block-diagonal mask (kept as segment ids, built only
  when asked: the encoder attends packed rows by sequence and segment). A full [B, S, S] mask (causal,
  prefix, custom: query i may attend key j) works on both: its real tokens are the keys some
  query attends, and it is gathered into slot coordinates and intersected with the block.
  ``Unpadded.maps_to_batch`` brings attention maps back to [B, heads, S, S]; ``Unpadded.select``
  keeps a subset of the rows (early exit, model.EncoderState.select).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def pad_width(longest: int, multiple: int | None = 8, cap: int | None = None) -> int:
    """The width to pad a batch whose longest sequence is ``longest`` tokens to: rounded up to
    ``multiple``, but never past ``cap`` (and never below ``longest``, which the caller keeps
    within the model's positions)."""
    longest = max(int(longest), 1)
    m = int(multiple or 1)
    width = -(-longest // m) * m
    if cap is not None:
        width = min(width, max(int(cap), longest))
    return width


@dataclass(eq=False)
class Unpadded:
    """The real tokens of a padded [B, S] batch (the unpad fast path): linear layers, LayerNorm,
    dropout and the FFN run on the T real tokens only; attention scatters them into rows of S
    slots for one batched SDPA call: the batch's own rows with the padding mask, or (``pack``)
    fewer rows holding several sequences each, with a block-diagonal mask. A full [B, S, S] mask
    (causal, prefix, custom) is carried into slot coordinates and intersected with the block.

    Packed rows from a [B, S] mask keep the block as ``segments`` (each slot's sequence) and build
    the [rows, 1, S, S] ``mask`` only when something asks for it (the attention maps): the encoder's
    global layers attend each sequence alone (``lengths``, attention.varlen_attention) and its local
    layers read ``segments`` (attention.local_attention), so a forward never holds a mask quadratic
    in the row width."""

    index: torch.Tensor  # [T] flat positions of the real tokens in B*S, ascending
    batch: int
    seq: int
    slots: torch.Tensor  # [T] their places in attention's rows (= index unless packed)
    rows: int  # attention's rows: B, or fewer when packed
    given_mask: torch.Tensor | None  # ``mask`` when built up front (None: built from ``segments`` on demand)
    source: torch.Tensor | None = None  # the bool mask it was built from: [B, S] or [B, S, S]
    packed: bool = False
    # packed rows: long [rows, S], each slot's sequence (its row in the batch), -1 for an empty slot;
    # None when not packed or when the source is a full [B, S, S] mask (``mask`` holds that one)
    segments: torch.Tensor | None = None
    seq_lengths: list[int] | None = None  # ``lengths``, when known up front

    @property
    def mask(self) -> torch.Tensor:
        """bool, True = attend: [B, 1, 1, S], or [rows, 1, S, S] (packed, or a full mask). On packed
        rows from a [B, S] mask: built from ``segments`` at the first call (rows x S^2 bools), kept."""
        if self.given_mask is None:
            seg = self.segments
            block = (seg[:, :, None] == seg[:, None, :]) & (seg[:, :, None] >= 0)
            # an empty slot sees itself: no empty softmax
            self.given_mask = (block | torch.eye(self.seq, dtype=torch.bool, device=seg.device))[:, None]
        return self.given_mask

    def pad(self, x):
        """[T, ...] -> [B, S, ...], zeros at the padding."""
        return _scatter(x, self.index, self.batch, self.seq)

    def unpad(self, x):
        """[B, S, ...] -> [T, ...]."""
        return x.reshape(self.batch * self.seq, *x.shape[2:]).index_select(0, self.index)

    def to_rows(self, x):
        """[T, ...] -> attention's [rows, S, ...]."""
        return _scatter(x, self.slots, self.rows, self.seq)

    def from_rows(self, x):
        """attention's [rows, S, ...] -> [T, ...]."""
        return x.reshape(self.rows * self.seq, *x.shape[2:]).index_select(0, self.slots)

    @property
    def lengths(self) -> list[int] | None:
        """Each sequence's real tokens, in order (they lie end to end in the T), or None when the
        source is a full [B, S, S] mask (a sequence's tokens may then not all see each other)."""
        if self.source is None or self.source.dim() != 2:
            return None
        if self.seq_lengths is None:
            self.seq_lengths = self.source.sum(1).tolist()
        return self.seq_lengths

    def positions(self, flat):
        """Flat indices into B*S (real tokens; a padding position maps to token 0) -> indices into the T."""
        where = torch.zeros(self.batch * self.seq, dtype=torch.long, device=self.index.device)
        where[self.index] = torch.arange(self.index.numel(), device=self.index.device)
        return where[flat]

    @property
    def real(self) -> torch.Tensor:
        """bool [B, S]: the real tokens."""
        return real_tokens(self.source) if self.source is not None else \
            _scatter(torch.ones_like(self.index, dtype=torch.bool), self.index, self.batch, self.seq)

    def maps_to_batch(self, maps):
        """Attention maps in slot coordinates [rows, heads, S, S] -> [B, heads, S, S] (query, key in
        the batch's positions), zeros where the query or the key is not a real token."""
        s = self.seq
        slot_of = torch.zeros(self.batch * s, dtype=torch.long, device=self.index.device)
        slot_of[self.index] = self.slots
        slot_of = slot_of.view(self.batch, s)
        row, col = slot_of // s, slot_of % s  # a sequence's tokens share one row
        out = maps[row[:, :, None], :, col[:, :, None], col[:, None, :]]  # [B, S, S, heads]
        real = self.real
        return (out * (real[:, :, None] & real[:, None, :])[..., None]).permute(0, 3, 1, 2)

    def select(self, keep: torch.Tensor):
        """Keep the batch rows ``keep`` ([K] indices, in the new order) -> (Unpadded of those rows,
        [T'] indices into this one's T tokens giving the new tokens). Always unpadded (no None),
        packed again if this one was."""
        new = unpad_index(self.source[keep], pack=self.packed, force=True)
        old_flat = keep[new.index // self.seq] * self.seq + new.index % self.seq
        return new, self.positions(old_flat)


def _scatter(x, index, rows, seq):
    out = x.new_zeros(rows * seq, *x.shape[1:]).index_copy(0, index, x)
    return out.view(rows, seq, *x.shape[1:])


def real_tokens(attention_mask: torch.Tensor) -> torch.Tensor:
    """bool [B, S] real tokens of a [B, S] 1/0 mask, or of a full [B, S, S] mask (query i may attend
    key j): the keys some query attends."""
    mask = attention_mask.bool()
    return mask.any(1) if mask.dim() == 3 else mask


def guard_empty_rows(mask: torch.Tensor) -> torch.Tensor:
    """A query row that attends no key gets its own key (no empty softmax, no NaN); its output
    is never used (berts.model.attention uses it too)."""
    s = mask.shape[-1]
    empty = ~mask.any(-1, keepdim=True)
    return mask | (empty & torch.eye(s, dtype=torch.bool, device=mask.device))


def unpad_index(attention_mask: torch.Tensor, pack: bool = False, force: bool = False) -> Unpadded | None:
    """[B, S] 1/0 mask, or a full [B, S, S] bool mask -> Unpadded, or None when nothing is padded
    (``force``: an Unpadded all the same).

    ``pack``: first-fit-decreasing packing of the sequences into rows of S slots (right-padded
    rows only; otherwise the batch's own rows are kept).
    """
    source = attention_mask.bool()
    full = source.dim() == 3
    b, s = source.shape[0], source.shape[-1]
    mask = real_tokens(source)
    index = mask.reshape(-1).nonzero().squeeze(1)
    if index.numel() == b * s and not force:
        return None
    lengths = mask.sum(1)
    if not pack or not bool((mask[:, 1:] <= mask[:, :-1]).all()):
        attn = guard_empty_rows(source[:, None]) if full else mask[:, None, None, :]
        return Unpadded(index, b, s, index, b, attn, source, False)
    sizes = lengths.tolist()
    row_of, start_of, free = [0] * b, [0] * b, []
    for i in sorted(range(b), key=lambda i: -sizes[i]):  # longest first, each into the first row it fits
        r = next((r for r, room in enumerate(free) if room >= sizes[i]), len(free))
        if r == len(free):
            free.append(s)
        row_of[i], start_of[i] = r, s - free[r]
        free[r] -= sizes[i]
    rows = len(free)
    device = attention_mask.device
    seq_of = index // s  # each real token's sequence
    base = torch.tensor(row_of, device=device) * s + torch.tensor(start_of, device=device)
    slots = base[seq_of] + index % s
    segment = torch.full((rows * s,), -1, dtype=torch.long, device=device)
    segment[slots] = seq_of
    segment = segment.view(rows, s)
    if not full:  # the block stays implicit: Unpadded.mask builds it from the segments if asked
        return Unpadded(index, b, s, slots, rows, None, source, True, segments=segment, seq_lengths=sizes)
    block = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0)
    # the sequence's own mask, gathered into slot coordinates: slot -> (sequence, position)
    position = torch.zeros(rows * s, dtype=torch.long, device=device)
    position[slots] = index % s
    position = position.view(rows, s)
    seq = segment.clamp(min=0)
    block &= source[seq[:, :, None], position[:, :, None], position[:, None, :]]
    # an empty slot (or a query its mask leaves nothing) sees itself: no empty softmax
    return Unpadded(index, b, s, slots, rows, guard_empty_rows(block)[:, None], source, True)
