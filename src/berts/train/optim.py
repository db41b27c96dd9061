"""Optimizers (AdamW, LAMB, StableAdamW) with BERT's weight-decay groups, and learning-rate schedules.

A schedule is a function of *progress* p in [0, 1]: the fraction of the run done, measured in
steps (step / max_steps) or, in budget mode, in wall-clock time (elapsed / budget), as cramming
does. The same shapes serve both.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from berts.errors import UserError


# ----------------------------------------------------------------------------- LAMB
class Lamb(torch.optim.Optimizer):
    """LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning"), as NVIDIA's BERT:

        m = b1 m + (1 - b1) g            v = b2 v + (1 - b2) g^2
        u = m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd * w
        r = ||w|| / ||u||   (1 when either norm is 0)
        w = w - lr * r * u

    The trust ratio r is applied to the groups with weight decay only (``adapt=None``), as
    NVIDIA's apex FusedLAMB (``use_nvlamb=False``) and TF-Addons' LAMB (biases and LayerNorm are
    excluded from layer adaptation like from decay); pass ``adapt=True`` to adapt every group.
    Gradient clipping is the trainer's (a global norm clip before the step, as NVIDIA's).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.01, adapt: bool | None = None):
        if lr <= 0 or eps <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError("invalid LAMB hyper-parameters")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, adapt=adapt))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            wd, eps, lr = group["weight_decay"], group["eps"], group["lr"]
            adapt = group["adapt"] if group["adapt"] is not None else wd > 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if g.is_sparse:
                    raise RuntimeError("LAMB does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1  # a CPU tensor, as torch's optimizers keep it: no device sync
                t = int(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
                update = (m / bc1) / ((v / bc2).sqrt_().add_(eps))
                if wd:
                    update.add_(p, alpha=wd)
                if adapt:  # no host sync: the ratio stays a tensor
                    w_norm = p.norm()
                    u_norm = update.norm()
                    ratio = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
                    update.mul_(ratio)
                p.add_(update, alpha=-lr)
        return loss


# ----------------------------------------------------------------------------- StableAdamW
class StableAdamW(torch.optim.Optimizer):
    """AdamW with per-tensor update clipping: StableAdamW (Wortsman et al. 2023, "Stable and
    low-precision training for large-scale vision-language models", arXiv 2304.13013, Alg. 2),
    the optimizer of ModernBERT (arXiv 2412.13663, section 2.2.1, through the optimi library)::

        m = b1 m + (1 - b1) g            v = b2 v + (1 - b2) g^2
        m^ = m / (1 - b1^t)              v^ = v / (1 - b2^t)
        rms = sqrt(mean(g^2 / max(v^, eps^2)))       # per parameter tensor
        lr' = lr / max(1, rms)                       # the update clipping: only ever smaller
        w = w (1 - lr' wd) - lr' m^ / (sqrt(v^) + eps)

    Why: when a gradient is suddenly much larger than the second moment remembers (v lags, b2
    near 1), Adam's update m^/sqrt(v^) is large; rms measures that and scales this tensor's step
    back to AdamW's usual size, Adafactor-style, in place of (or beside) global gradient clipping.
    On the first step v^ = g^2, so rms = 1 and the step is AdamW's. Weight decay is decoupled and
    uses the clipped lr' (as optimi). Plain per-tensor loop: clear rather than fused.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.98), eps: float = 1e-6, weight_decay: float = 0.01):
        if lr <= 0 or eps <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError("invalid StableAdamW hyper-parameters")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            wd, eps, lr = group["weight_decay"], group["eps"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if g.is_sparse:
                    raise RuntimeError("StableAdamW does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = int(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                v_hat = v / (1 - b2 ** t)
                rms = (g.square() / v_hat.clamp_min(eps * eps)).mean().sqrt()  # a tensor: no host sync
                lr_t = lr / rms.clamp_min(1.0)
                if wd:
                    p.mul_(1 - lr_t * wd)
                p.add_(-lr_t * (m / (1 - b1 ** t)) / (v_hat.sqrt_().add_(eps)))
        return loss


# ----------------------------------------------------------------------------- groups
def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and embeddings; none on biases and LayerNorm (every 1-D tensor).

    Shared parameters (ALBERT, tied embeddings) appear once.
    """
    decay, no_decay = [], []
    for _, p in model.named_parameters():  # de-duplicated by default
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


# Fine-tuning's peak learning rate by the model's hidden size, when optim.lr is null (fine-tuning's
# default). 5e-5 (BERT's) for every size left the tiny model (hidden 128) near chance: small models
# want larger steps (Turc et al. 2019's miniatures were tuned over 1e-4..1e-3; the tiny preset
# reached its dev accuracy at 1e-3). A table, not a formula: each row a size someone measured.
DEFAULT_LR = ((128, 1e-3), (256, 5e-4), (512, 1e-4))  # hidden <= H: lr; larger: 5e-5


def default_lr(hidden_size: int) -> tuple[float, str]:
    """(lr, why) for a model of ``hidden_size`` (see DEFAULT_LR)."""
    for h, lr in DEFAULT_LR:
        if hidden_size <= h:
            return lr, f"default for hidden size {hidden_size} (<= {h}); --lr to choose"
    return 5e-5, f"default for hidden size {hidden_size} (BERT's fine-tuning rate); --lr to choose"


def build_optimizer(model: nn.Module, cfg, lr: float | None = None) -> torch.optim.Optimizer:
    """AdamW (fused where the device has it, else foreach), LAMB or StableAdamW, from an OptimSection
    (``lr``: the resolved rate where ``cfg.lr`` is null)."""
    from dataclasses import replace

    cfg = replace(cfg, lr=lr if cfg.lr is None else cfg.lr)
    groups = param_groups(model, cfg.weight_decay)
    betas = tuple(cfg.betas)
    if cfg.name == "adamw":
        try:
            return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas, eps=cfg.eps, fused=True)
        except (RuntimeError, TypeError):  # no fused kernel for this device/dtype
            return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas, eps=cfg.eps, foreach=True)
    if cfg.name == "lamb":
        return Lamb(groups, lr=cfg.lr, betas=betas, eps=cfg.eps)
    if cfg.name == "stable_adamw":
        return StableAdamW(groups, lr=cfg.lr, betas=betas, eps=cfg.eps)
    raise UserError(f"optim.name must be adamw, lamb or stable_adamw, got {cfg.name!r}")


# ----------------------------------------------------------------------------- schedules
WSD_DECAY = {"wsd_linear": lambda q: 1 - q, "wsd_sqrt": lambda q: 1 - math.sqrt(q)}  # q in [0, 1]: the decay's progress


def lr_factor(name: str, progress: float, warmup: float, min_lr: float = 0.0, decay: float = 0.1) -> float:
    """The learning rate as a fraction of the peak at ``progress`` p in [0, 1].

    * ``linear``: linear warm-up over the first ``warmup`` fraction, then linear decay to ``min_lr``.
    * ``constant``: linear warm-up, then flat.
    * ``one_cycle``: as torch's OneCycleLR (cosine annealing): from peak/25 up to the peak at
      ``warmup`` (0.3 when warmup is 0), then down to ``min_lr`` (peak/25/1e4 when 0).
    * ``wsd_linear`` / ``wsd_sqrt``: warmup-stable-decay (trapezoidal): linear warm-up, flat at the
      peak, then over the last ``decay`` fraction of the run down to ``min_lr``, linearly or as
      1 - sqrt(q) (Hägele et al. 2024, arXiv 2405.18392; ModernBERT, arXiv 2412.13663, uses the
      1-sqrt decay). Why: the stable phase does not depend on the run's length, so a checkpoint
      from it can be decayed later, or continued (the context-extension phase starts from one).
    """
    p = min(max(progress, 0.0), 1.0)
    if name == "one_cycle":
        start, end = 1 / 25, (min_lr or 1 / 25 / 1e4)
        peak_at = warmup or 0.3
        if p < peak_at:
            return start + (1 - start) * (1 - math.cos(math.pi * p / peak_at)) / 2
        q = (p - peak_at) / max(1 - peak_at, 1e-12)
        return end + (1 - end) * (1 + math.cos(math.pi * q)) / 2
    if warmup > 0 and p < warmup:
        return p / warmup
    if name == "constant":
        return 1.0
    if name in WSD_DECAY:
        start = 1 - decay  # where the decay begins (after the warm-up at the latest)
        if p <= start:
            return 1.0
        q = min(1.0, (p - start) / max(decay, 1e-12))
        return min_lr + (1 - min_lr) * WSD_DECAY[name](q)
    if name == "linear":
        return min_lr + (1 - min_lr) * max(0.0, (1 - p) / max(1 - warmup, 1e-12))
    raise UserError(f"schedule.name must be linear, constant, one_cycle, wsd_linear or wsd_sqrt, got {name!r}")


class Schedule:
    """Sets each group's lr from progress; its state is the last progress and factor."""

    def __init__(self, optimizer: torch.optim.Optimizer, name: str, warmup: float, min_lr: float = 0.0,
                 decay: float = 0.1):
        self.optimizer = optimizer
        self.name, self.warmup, self.min_lr, self.decay = name, warmup, min_lr, decay
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.progress, self.factor = 0.0, None
        lr_factor(name, 0.0, warmup, min_lr, decay)  # check the name now
        self.set(0.0)

    def set(self, progress: float) -> float:
        self.progress = progress
        self.factor = lr_factor(self.name, progress, self.warmup, self.min_lr, self.decay)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.factor
        return self.factor

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"name": self.name, "warmup": self.warmup, "min_lr": self.min_lr, "decay": self.decay,
                "progress": self.progress}

    def load_state_dict(self, state: dict) -> None:
        self.set(float(state["progress"]))
