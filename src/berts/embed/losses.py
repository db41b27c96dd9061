"""Losses for sentence embeddings. Each takes embeddings (an Encoder's forward, [B, D]) and
returns a scalar; sentence-transformers' definitions and default scales.

* ``MultipleNegativesRankingLoss`` (MNRL, InfoNCE with in-batch negatives): anchor i should be
  closest to positive i among every positive of the batch (and every hard negative):
  cross-entropy over scale * cos(anchor_i, candidate_j). ``scale`` is 1 / temperature
  (20 = temperature 0.05). ``gather=True`` under torch.distributed: the candidates of every
  rank join each rank's softmax (see below).
* ``SimCSELoss``: unsupervised SimCSE, the same texts twice through the encoder in one batch
  (dropout as the noise between the two views), MNRL on the two views.
* ``CoSENTLoss``: for scored pairs, log(1 + sum over pairs (i, j) with gold_i > gold_j of
  exp(scale * (cos_j - cos_i))): a ranking loss on the cosines, scale 20.
* ``CosineSimilarityLoss``: MSE between cos(u, v) and the gold score (in [0, 1] or [-1, 1]).

Negatives across DDP ranks: each rank gathers every rank's candidates ([world * B, D]) with
an all_gather (``_AllGather``) whose backward sums the gradients that every rank's loss
sends to this rank's embeddings. With DDP averaging the parameter gradients over ranks, the
step is then the gradient of the mean of the ranks' losses, which is the loss of one process
with the whole (world * B) batch: tests/test_embed_losses.py checks it with 2 gloo processes.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _cos_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N, D], [M, D] -> [N, M] cosines."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


class _AllGather(torch.autograd.Function):
    """[B, ...] -> [world * B, ...]; backward: the gradient of every rank's copy summed (all_reduce),
    then this rank's rows. Ours rather than torch.distributed.nn.functional.all_gather (deprecated in
    torch 2.13): plain blocking collectives, so no async gloo work object lives on in the autograd
    graph to abort the process at exit ("terminate called without an active exception")."""

    @staticmethod
    def forward(ctx, x):
        ctx.rank, ctx.b = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.b:(ctx.rank + 1) * ctx.b]


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """[B, ...] on each rank -> ([world * B, ...] every rank's, in rank order; this rank's offset).
    Without torch.distributed initialised: (x, 0). Every rank must pass the same B."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    return _AllGather.apply(x.contiguous()), dist.get_rank() * x.shape[0]


class MultipleNegativesRankingLoss(nn.Module):
    def __init__(self, scale: float = 20.0, gather: bool = False):
        super().__init__()
        self.scale = float(scale)
        self.gather = bool(gather)

    def forward(self, anchors: torch.Tensor, positives: torch.Tensor,
                negatives: torch.Tensor | None = None) -> torch.Tensor:
        """anchors, positives [B, D]; negatives (hard ones) [B, D] or [B, K, D] or None."""
        b = anchors.shape[0]
        candidates = [positives]
        if negatives is not None:
            candidates.append(negatives.reshape(-1, negatives.shape[-1]))  # [B*K, D]
        offset = 0
        if self.gather:
            gathered = [gather_with_grad(c) for c in candidates]
            offset = gathered[0][1]
            candidates = [g for g, _ in gathered]
        cand = torch.cat(candidates, dim=0)  # [P + N, D]: positives first, so label i + offset is i's own
        logits = self.scale * _cos_matrix(anchors, cand)  # [B, P + N]
        labels = torch.arange(b, device=anchors.device) + offset
        return F.cross_entropy(logits, labels)


class SimCSELoss(nn.Module):
    """Unsupervised SimCSE: ``embed(input_ids, attention_mask) -> [B, D]`` (an Encoder in train
    mode, dropout on) runs once on the batch twice over ([2B, S]: every row gets its own dropout
    mask), and MNRL pairs each text's two views."""

    def __init__(self, scale: float = 20.0, gather: bool = False):
        super().__init__()
        self.mnrl = MultipleNegativesRankingLoss(scale, gather)

    def forward(self, embed, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        b = input_ids.shape[0]
        both = embed(input_ids.repeat(2, 1), attention_mask.repeat(2, 1))  # [2B, D]
        return self.mnrl(both[:b], both[b:])


class CoSENTLoss(nn.Module):
    def __init__(self, scale: float = 20.0):
        super().__init__()
        self.scale = float(scale)

    def forward(self, u: torch.Tensor, v: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        """u, v [B, D] (the pairs' two sides), gold [B] scores."""
        cos = F.cosine_similarity(u, v, dim=-1) * self.scale  # [B]
        diff = cos[None, :] - cos[:, None]  # [B, B]: diff[i, j] = cos_j - cos_i
        keep = gold[:, None] > gold[None, :]  # pairs where i should score higher than j
        diff = diff.masked_fill(~keep, float("-inf"))
        # log(1 + sum exp(.)) = logsumexp over [0, the kept differences]
        return torch.logsumexp(torch.cat([diff.new_zeros(1), diff.reshape(-1)]), dim=0)


class CosineSimilarityLoss(nn.Module):
    def forward(self, u: torch.Tensor, v: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        """u, v [B, D], gold [B] -> mean of (cos(u_i, v_i) - gold_i)^2."""
        return F.mse_loss(F.cosine_similarity(u, v, dim=-1), gold.to(u.dtype))
