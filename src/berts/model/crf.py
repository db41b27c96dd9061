"""A linear-chain CRF over per-token emissions, for token tagging (``--crf``).

Why our own and not pytorch-crf: that library is not a dependency, and we need two things it
lacks: hard transition constraints from a tagging scheme (BIO: no ``O -> I-X``) and positions
that are masked out in the middle of a sequence (the sub-tokens after a word's first one), not only
right padding. The whole thing is ~150 lines of log-space dynamic programming.

Shapes: emissions [B, S, T] (B sequences, S positions, T tags), tags [B, S], mask [B, S] (1 = a
position that carries a tag). Masked positions are skipped, not cut: the transition goes from the
last unmasked position to the next one, so a mask may have holes and may start with zeros.

Parameters: ``start_transitions`` [T] (score of a sequence starting with tag j),
``transitions`` [T, T] (``transitions[i, j]``: tag i followed by tag j), ``end_transitions`` [T].
Constraints are fixed 0/1 buffers of the same shapes (``allowed_*``); a disallowed move costs
``FORBIDDEN`` (a finite -1e4 rather than -inf, so that a gold path that breaks the scheme still has
a finite loss and gradients never go NaN).

``free_start`` (optional bool [B]): rows that do not begin at their sequence's start (a window of a
long sentence cut after its first word, which may begin inside an entity with ``I-X``). For those
rows the first tag gets neither the start score nor the start constraint: the row is scored as a
piece of a longer path, not as a whole one. ``score``, ``log_partition``, ``forward``, ``viterbi``
and ``decode`` all take it, so training and decoding treat such a window alike.

``free_end`` (optional bool [B]) is its twin at the other edge: rows that stop before their
sequence's end (a window cut before its sentence's last word, which may end inside an entity, with
``B-X`` or ``I-X`` where BIOES wants ``E-X``). Their last tag gets neither the end score nor the
end constraint, in the same five methods. A row may be both (a middle window).

On disk (:func:`save_crf` / :func:`load_crf`), beside a ``...ForTokenClassification`` directory:
``crf.safetensors`` holds the six tensors above under those names (float32; the ``allowed_*`` as
float 0/1), and ``crf.json`` holds ``{"format": "berts-crf", "version": 1, "num_tags": T,
"labels": [tag names in id order, the model's id2label], "scheme": name or null, "note": ...}``.
The emission model knows nothing of the CRF: transformers loads the directory and gives the
emissions as ``logits``; decoding them with the CRF is ours.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from berts.errors import UserError

FORBIDDEN = -1e4  # the score added to a disallowed transition (finite: see the module docstring)
CRF_WEIGHTS = "crf.safetensors"
CRF_CONFIG = "crf.json"


class CRF(nn.Module):
    """Linear-chain CRF with ``num_tags`` tags.

    ``allowed``: optional ``(start [T], transitions [T, T], end [T])`` of booleans (see
    berts.data.tagging.allowed_transitions for a scheme's), None allows everything.
    """

    def __init__(self, num_tags: int, allowed: tuple | None = None):
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"a CRF needs at least one tag, got {num_tags}")
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.zeros(num_tags))
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.end_transitions = nn.Parameter(torch.zeros(num_tags))
        nn.init.uniform_(self.start_transitions, -0.1, 0.1)
        nn.init.uniform_(self.transitions, -0.1, 0.1)
        nn.init.uniform_(self.end_transitions, -0.1, 0.1)
        if allowed is None:
            allowed = (torch.ones(num_tags), torch.ones(num_tags, num_tags), torch.ones(num_tags))
        start, trans, end = (torch.as_tensor(a, dtype=torch.float32) for a in allowed)
        if start.shape != (num_tags,) or trans.shape != (num_tags, num_tags) or end.shape != (num_tags,):
            raise ValueError(f"allowed shapes must be ({num_tags},), ({num_tags}, {num_tags}), ({num_tags},)")
        self.register_buffer("allowed_start", start)
        self.register_buffer("allowed_transitions", trans)
        self.register_buffer("allowed_end", end)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    # the scores actually used: parameters plus the constraint penalty
    def _start(self):
        return self.start_transitions + (1 - self.allowed_start) * FORBIDDEN

    def _trans(self):
        return self.transitions + (1 - self.allowed_transitions) * FORBIDDEN

    def _end(self):
        return self.end_transitions + (1 - self.allowed_end) * FORBIDDEN

    @staticmethod
    def _edge(scores: torch.Tensor, B: int, free: torch.Tensor | None, name: str) -> torch.Tensor:
        """[T] edge scores (start or end) -> [B, T] per row; 0 (no score, no constraint) on ``free`` rows."""
        scores = scores.expand(B, scores.shape[-1])
        if free is None:
            return scores
        if free.shape != (B,):
            raise ValueError(f"{name} must be [B] = [{B}], got shape {tuple(free.shape)}")
        return torch.where(free.bool().to(scores.device).unsqueeze(1), torch.zeros_like(scores), scores)

    def _starts(self, B: int, free_start: torch.Tensor | None) -> torch.Tensor:
        """[B, T]: the score of each first tag per row (free_start rows: none)."""
        return self._edge(self._start(), B, free_start, "free_start")

    def _ends(self, B: int, free_end: torch.Tensor | None) -> torch.Tensor:
        """[B, T]: the score of each last tag per row (free_end rows: none)."""
        return self._edge(self._end(), B, free_end, "free_end")

    @staticmethod
    def _check(emissions: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if emissions.dim() != 3:
            raise ValueError(f"emissions must be [B, S, T], got shape {tuple(emissions.shape)}")
        if mask is None:
            return torch.ones(emissions.shape[:2], dtype=torch.bool, device=emissions.device)
        if mask.shape != emissions.shape[:2]:
            raise ValueError(f"mask shape {tuple(mask.shape)} != emissions' [B, S] {tuple(emissions.shape[:2])}")
        return mask.bool()

    def score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor | None = None,
              free_start: torch.Tensor | None = None, free_end: torch.Tensor | None = None) -> torch.Tensor:
        """The unnormalised log score of ``tags`` [B, S] (values at masked positions ignored) -> [B]."""
        mask = self._check(emissions, mask)
        B, S, _ = emissions.shape
        tags = tags.masked_fill(~mask, 0).long()
        start, trans, end = self._starts(B, free_start), self._trans(), self._ends(B, free_end)
        rows = torch.arange(B, device=emissions.device)
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # [B, S] the gold tag's emission
        total = (emit * mask).sum(1)
        last = torch.zeros(B, dtype=torch.long, device=emissions.device)  # the previous unmasked tag
        started = torch.zeros(B, dtype=torch.bool, device=emissions.device)
        for t in range(S):
            m, tag = mask[:, t], tags[:, t]
            step = torch.where(started, trans[last, tag], start[rows, tag])  # [B]
            total = total + step * m
            last = torch.where(m, tag, last)
            started = started | m
        return total + end[rows, last] * started

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor | None = None,
                      free_start: torch.Tensor | None = None, free_end: torch.Tensor | None = None) -> torch.Tensor:
        """log Z: logsumexp of the score over every tag sequence (forward algorithm) -> [B].
        A row with no unmasked position has log Z = 0 (one empty sequence)."""
        mask = self._check(emissions, mask)
        B, S, T = emissions.shape
        start, trans, end = self._starts(B, free_start), self._trans(), self._ends(B, free_end)
        alpha = torch.zeros(B, T, dtype=emissions.dtype, device=emissions.device)  # [B, T] log sum ending in tag j
        started = torch.zeros(B, dtype=torch.bool, device=emissions.device)
        for t in range(S):
            m = mask[:, t].unsqueeze(1)  # [B, 1]
            step = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1)  # [B, T]: sum over the previous tag i
            new = torch.where(started.unsqueeze(1), step, start) + emissions[:, t]
            alpha = torch.where(m, new, alpha)
            started = started | mask[:, t]
        logz = torch.logsumexp(alpha + end, dim=1)
        return torch.where(started, logz, torch.zeros_like(logz))

    def forward(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor | None = None,
                reduction: str = "mean", free_start: torch.Tensor | None = None,
                free_end: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood of the gold ``tags``: log Z - score. ``reduction``: "mean" (over
        sequences), "sum" or "none" ([B])."""
        nll = (self.log_partition(emissions, mask, free_start, free_end)
               - self.score(emissions, tags, mask, free_start, free_end))
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        if reduction == "mean":
            return nll.mean()
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

    @torch.no_grad()
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor | None = None,
                free_start: torch.Tensor | None = None,
                free_end: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The best tag sequence per row, batched: (tags [B, S] with -100 at masked positions,
        its score [B])."""
        mask = self._check(emissions, mask)
        B, S, T = emissions.shape
        start, trans, end = self._starts(B, free_start), self._trans(), self._ends(B, free_end)
        same = torch.arange(T, device=emissions.device).expand(B, T)
        best = torch.zeros(B, T, dtype=emissions.dtype, device=emissions.device)
        started = torch.zeros(B, dtype=torch.bool, device=emissions.device)
        pointers = []  # S x [B, T]: the best previous tag for each tag (itself where masked / first)
        for t in range(S):
            m = mask[:, t].unsqueeze(1)
            cand, arg = (best.unsqueeze(2) + trans).max(dim=1)  # [B, T] over the previous tag i
            first = ~started.unsqueeze(1)
            new = torch.where(first, start, cand) + emissions[:, t]
            best = torch.where(m, new, best)
            pointers.append(torch.where(m & ~first, arg, same))
            started = started | mask[:, t]
        final = best + end
        score, tag = final.max(dim=1)  # [B]
        out = torch.empty(B, S, dtype=torch.long, device=emissions.device)
        for t in range(S - 1, -1, -1):  # walk back; masked steps point to themselves
            out[:, t] = tag
            tag = pointers[t].gather(1, tag.unsqueeze(1)).squeeze(1)
        out = out.masked_fill(~mask, -100)
        return out, torch.where(started, score, torch.zeros_like(score))

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor | None = None,
               free_start: torch.Tensor | None = None, free_end: torch.Tensor | None = None) -> list[list[int]]:
        """The best tags at the unmasked positions of each row (a list per row)."""
        mask = self._check(emissions, mask)
        tags, _ = self.viterbi(emissions, mask, free_start, free_end)
        return [row[m].tolist() for row, m in zip(tags, mask)]


def save_crf(directory: str | os.PathLike, crf: CRF, labels: Sequence[str], scheme: str | None = None) -> Path:
    """Write ``crf.safetensors`` and ``crf.json`` into ``directory`` (beside the emission model)."""
    from safetensors.torch import save_file

    labels = list(labels)
    if len(labels) != crf.num_tags:
        raise ValueError(f"{len(labels)} labels for a CRF of {crf.num_tags} tags")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in crf.state_dict().items()}
    save_file(tensors, str(d / CRF_WEIGHTS), metadata={"format": "pt"})
    meta = {"format": "berts-crf", "version": 1, "num_tags": crf.num_tags, "labels": labels, "scheme": scheme,
            "note": "transitions[i, j] scores tag i followed by tag j; start/end_transitions score the first/last "
                    "tag; allowed_* are 0/1 constraints (a 0 adds -1e4); labels are in id order (the model's id2label)"}
    (d / CRF_CONFIG).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return d


def load_crf(directory: str | os.PathLike, labels: Sequence[str] | None = None) -> tuple[CRF, list[str]]:
    """Read what :func:`save_crf` wrote -> (the CRF, its labels). One-line UserError when missing or
    broken, or when ``labels`` (the emission model's id2label, in id order) differ from the CRF's."""
    from safetensors.torch import load_file

    d = Path(directory)
    cfg, weights = d / CRF_CONFIG, d / CRF_WEIGHTS
    for p in (cfg, weights):
        if not p.is_file():
            raise UserError(f"{p}: no such file (a CRF directory has {CRF_CONFIG} and {CRF_WEIGHTS})")
    try:
        meta = json.loads(cfg.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{cfg}:{e.lineno}: not valid JSON ({e.msg})") from None
    if meta.get("format") != "berts-crf" or meta.get("version") != 1:
        raise UserError(f"{cfg}: not a berts CRF file of version 1 (format {meta.get('format')!r}, "
                        f"version {meta.get('version')!r})")
    names = list(meta["labels"])
    crf = CRF(int(meta["num_tags"]))
    state = load_file(str(weights))
    if len(names) != crf.num_tags or set(state) != set(crf.state_dict()):
        raise UserError(f"{weights}: tensors {sorted(state)} do not make a CRF of {crf.num_tags} tags")
    try:
        crf.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{weights}: {str(e).splitlines()[-1].strip()}") from None
    if labels is not None and list(labels) != names:
        raise UserError(f"{cfg}: the CRF's labels {names} are not the model's {list(labels)} (same names, same order)")
    return crf, names
