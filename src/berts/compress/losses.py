"""The distillation losses, each a small function of tensors (tests/test_distill_losses.py checks
each against a hand computation). Every loss is a *mean over the items its part counts* (real
tokens, sequences, attention entries), so that the engine can weight micro-batches and ranks by
those counts exactly; the tasks multiply in their weights (alpha_*).

DistilBERT (huggingface/transformers examples/research_projects/distillation, distiller.py):

* ``soft_ce(s, t, T)``: KL(softmax(t/T) || softmax(s/T)) x T^2 per row, averaged over the rows:
  the reference's ``KLDivLoss(reduction="batchmean")`` times T^2. It is the soft-target
  cross-entropy minus the teacher's entropy (a constant of the student), so the gradient is the
  soft cross-entropy's; the value is 0 when the student matches.
* ``cosine(s, t)``: mean of 1 - cos(s_i, t_i) over the rows (``CosineEmbeddingLoss`` with target 1).

TinyBERT (huawei-noah/Pretrained-Language-Model TinyBERT, general_distill.py / task_distill.py):

* ``hidden_mse(s, t, proj)``: the mean squared error over real tokens and the teacher's
  dimensions, of proj(student) against the teacher (``loss_mse(fit_dense(s), t)``);
* ``attention_mse(s, t, mask)``: pre-softmax scores [B, heads, S, S]; entries whose query or key
  is padding are zeroed in both (the reference zeroes its -10000-masked entries with
  ``torch.where(att <= -1e2, 0, att)``), then the mean over the real (query, key) entries of
  every head. (The reference averages over all B x heads x S x S entries, padding included, so
  its value depends on the padding; ours is the same sum over the entries that are real.)
* ``soft_cross_entropy(s, t, T)``: the reference's prediction-layer loss
  ``(-softmax(t/T) * log_softmax(s/T)).sum(-1).mean()``, no T^2 (T = 1 by default).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_ce(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """[N, C] logits -> KL(teacher || student) at T, x T^2, mean over the N rows (DistilBERT)."""
    t = float(temperature)
    log_p = F.log_softmax(student_logits.float() / t, dim=-1)
    q = F.softmax(teacher_logits.float() / t, dim=-1)
    return F.kl_div(log_p, q, reduction="batchmean") * (t * t)


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       temperature: float = 1.0) -> torch.Tensor:
    """[N, C] logits -> sum_c -softmax(t/T) log_softmax(s/T), mean over the N rows (TinyBERT)."""
    t = float(temperature)
    q = F.softmax(teacher_logits.float() / t, dim=-1)
    return (-q * F.log_softmax(student_logits.float() / t, dim=-1)).sum(-1).mean()


def cosine(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """[N, H] rows (real tokens) -> mean of 1 - cos(s_i, t_i) (DistilBERT's cosine loss)."""
    return (1.0 - F.cosine_similarity(student.float(), teacher.float(), dim=-1)).mean()


def hidden_mse(student: torch.Tensor, teacher: torch.Tensor, proj=None) -> torch.Tensor:
    """[N, Hs] student rows (real tokens), [N, Ht] teacher rows -> mean over N x Ht of
    (proj(student) - teacher)^2; ``proj`` (Hs -> Ht) when the widths differ (TinyBERT)."""
    s = proj(student) if proj is not None else student
    return F.mse_loss(s.float(), teacher.float())


def real_pairs(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, S] padding mask -> [B, 1, S, S] bool: query i and key j both real tokens."""
    m = attention_mask.bool()
    return (m[:, :, None] & m[:, None, :])[:, None]


def attention_mse(student_scores: torch.Tensor, teacher_scores: torch.Tensor,
                  attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, heads, S, S] pre-softmax scores -> the mean squared error over the real (query, key)
    entries of every head; padding entries are zeroed in both first (so they add nothing)."""
    keep = real_pairs(attention_mask)
    s = torch.where(keep, student_scores.float(), 0.0)
    t = torch.where(keep, teacher_scores.float(), 0.0)
    entries = keep.sum() * student_scores.shape[1]
    return (s - t).pow(2).sum() / entries


def attention_entries(attention_mask: torch.Tensor, heads: int) -> int:
    """The number of items attention_mse averages over (a task's counts())."""
    n = attention_mask.bool().sum(1).long()
    return int((n * n).sum()) * heads


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """TinyBERT's uniform mapping: student layer m <- teacher layer floor(m * Lt / Ls), for
    m = 0..Ls (0 = the embeddings, Ls <- Lt). The reference asserts that Lt is a multiple of
    Ls; the floor extends it to any Ls <= Lt (4 of 6: 0, 1, 3, 4, 6). A student layer m >= 1
    learns the attention scores of the teacher layer it maps to."""
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"a student of {student_layers} layers for a teacher of {teacher_layers}: "
                         "the student needs 1 to the teacher's number of layers")
    return [m * teacher_layers // student_layers for m in range(student_layers + 1)]
