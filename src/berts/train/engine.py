"""The engine: everything about *running* a step, nothing about *when* (that is the loop's, in
trainer.py). It owns the device, precision (autocast, fp16 loss scaling), the task's modules
(trainable ones on the device in one container, wrapped once for DDP; frozen ones on the device,
without gradients, in eval mode), torch.compile, the micro-batch weighting of loss parts,
backward, clipping, the optimizer step and the optimizer/scaler part of a checkpoint::

    engine = Engine({"model": student, "proj": projection}, {"teacher": teacher}, cfg, dist)
    results = engine.step(micro_batches, task.loss, task.counts)   # one optimizer step
    engine.state_dict() / engine.load_state_dict(state)            # optimizer + scaler
    task.evaluate(engine)   # evaluation gets the engine: device, autocast(), to_device, is_main

Why one container: DDP then wraps *one* module whose forward runs the task's whole loss, so
several trainable modules, a parameter they share (ELECTRA's embedding) and ``no_sync`` over
accumulation micro-batches all work as for one model; the optimizer covers the container
(decay groups as for one model, a shared parameter once). Frozen modules stay outside it: no
gradients, no optimizer state, not in DDP, not checkpointed.

Host syncs: none per step, except the one all-reduce of the step's item counts with several
processes on gloo (a CPU tensor; with NCCL the weights stay on the GPU).
"""
from __future__ import annotations

import os
from contextlib import nullcontext

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from berts.errors import UserError
from berts.train import checkpoint, distributed
from berts.train.optim import build_optimizer, default_lr
from berts.model.encoder import BertLayer
from berts.model.encoder import compile_model
from berts.train import fsdp


def tune_malloc() -> bool:
    """Ask glibc to keep freed memory (no mmap/munmap per large tensor, no trimming).

    A training step allocates and frees the same large buffers (MLM logits, activations,
    gradients) every step; by default glibc returns each one over 32 MB to the system and
    page-faults it back in the next step. Measured on the mini preset: 1.23x faster steps
    (benchmarks/README.md). Process-wide, so only the training commands call it.
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREED))
    except (OSError, AttributeError):
        return False


# mallopt's value is a C int: ctypes passes a larger Python int silently truncated (1 << 40 became 0,
# "trim at every free", the opposite of the intent: 60-80k page faults a mini pretraining step instead
# of about a thousand). INT_MAX: glibc returns heap memory only past 2 GiB free at the top.
KEEP_FREED = 2**31 - 1


def cpu_has_amx(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> bool:
    """Whether this CPU has AMX's bf16 tiles (Intel Xeon, Sapphire Rapids and later; Linux's flag
    ``amx_bf16``). There oneDNN runs bf16 matmuls several times faster than fp32 (5-14x at the
    shapes berts trains, one thread, on the development machine), so bf16 autocast pays on a CPU
    for models whose step is mostly matmuls: 1.31x a MiniLM-L6 fine-tuning step and 1.41x a
    3-layer DistilBERT step on 2 threads (1.47x and 1.67x on one; benchmarks/cpu_bf16.py). Not
    for the ``tiny`` preset (H=128), whose step is mostly the vocabulary softmax, casts and
    attention: bf16 ran it at 0.58x. So ``auto`` is bf16 on such a CPU for models of hidden size
    AMX_MIN_HIDDEN and more, fp32 below (resolve_precision); the demo's English stages too."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split(":", 1)[-1].split()
    except OSError:
        pass
    return False


# ``auto`` on a CPU with AMX: bf16 from this hidden size up. Measured (cpu_has_amx): H=384 (MiniLM)
# 1.31x, H=768 (DistilBERT) 1.41x, H=128 (tiny) 0.58x; 256, between them, was not measured.
AMX_MIN_HIDDEN = 256


def resolve_precision(name: str, device: torch.device, hidden_size: int | None = None) -> str:
    """``auto``: bf16 on a GPU that has it (else fp16 with loss scaling); on a CPU, bf16 where it
    pays (AMX bf16 tiles and a model of hidden size >= AMX_MIN_HIDDEN), else fp32."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if hidden_size is not None and hidden_size >= AMX_MIN_HIDDEN and cpu_has_amx():
        return "bf16"
    return "fp32"


class TaskModules(nn.ModuleDict):
    """A task's trainable modules, by name (the first is the main one). Its forward runs the
    task's loss on them, so that DDP, wrapping this container, sees the whole step."""

    def forward(self, batch: dict, loss):
        return loss(self, batch)


class Engine:
    def __init__(self, trainable: dict[str, nn.Module], frozen: dict[str, nn.Module] | None, config,
                 dist: distributed.Dist):
        self.cfg = cfg = config
        self.dist = d = dist
        self.device = d.device
        impl = cfg.impl
        if impl.threads:
            torch.set_num_threads(impl.threads)
        if impl.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        hidden = getattr(getattr(next(iter(trainable.values()), None), "config", None), "hidden_size", None)
        self.precision = resolve_precision(impl.precision, self.device, hidden)
        self._amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.scaler = None
        if self.precision == "fp16":
            self.scaler = torch.amp.GradScaler(self.device.type, init_scale=impl.init_scale,
                                               growth_interval=impl.growth_interval)
        if impl.tune_malloc and self.device.type == "cpu":
            tune_malloc()

        if not trainable:
            raise ValueError("a task needs at least one trainable module")
        frozen = dict(frozen or {})
        _check_apart(trainable, frozen)
        # frozen: on the device, no gradients, eval mode (dropout off) for good
        self.frozen = nn.ModuleDict(frozen).to(self.device)
        self.frozen.requires_grad_(False)
        self.frozen.eval()
        # trainable: one container on the device, wrapped once for DDP (rank 0's weights are broadcast)
        self.modules = TaskModules(trainable).to(self.device)
        self.modules.train()
        self.wrapped = self.modules
        # fsdp: the step runs a sharded twin; self.modules stay plain, refreshed by sync_full() (train/fsdp.py)
        self.sharded = None
        if d.enabled and getattr(cfg.train, "strategy", "ddp") == "fsdp":

            self.sharded = self.wrapped = fsdp.shard(self.modules, (BertLayer,))
        elif d.enabled:
            self.wrapped = DistributedDataParallel(
                self.modules, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                gradient_as_bucket_view=True)
        if impl.compile:  # after sharding: fsdp's twin is a deep copy, and a copied compiled forward calls the original

            stepped = self.sharded if self.sharded is not None else self.modules
            for module in [*stepped.values(), *self.frozen.values()]:
                compile_model(module)  # in place: checkpoints keep the plain modules' names
        checkpoint.seed_all(cfg.train.seed + d.rank)  # dropout differs per rank, as it should
        stepped = self.sharded if self.sharded is not None else self.modules  # what the optimizer updates
        self.params = [p for p in stepped.parameters() if p.requires_grad]
        # optim.lr null (fine-tuning's default): by the main module's size, said on the start line
        self.lr, self.lr_note = cfg.optim.lr, None
        if self.lr is None:
            hidden = next((m.config.hidden_size for m in self.modules.values() if hasattr(m, "config")), 768)
            self.lr, self.lr_note = default_lr(hidden)
        self.optimizer = build_optimizer(stepped, cfg.optim, self.lr)
        self.skipped = torch.zeros((), device=self.device)  # fp16 steps skipped (overflow)
        self.grad_norm: torch.Tensor | None = None

    @property
    def main(self) -> nn.Module:
        return next(iter(self.modules.values()))

    def train(self, mode: bool = True) -> None:
        """Train mode for the trainable modules; the frozen ones stay in eval mode whatever ``mode``."""
        self.modules.train(mode)
        if self.sharded is not None:
            self.sharded.train(mode)
        self.frozen.eval()

    def sync_full(self) -> None:
        """fsdp: the full weights into the plain modules, before anything reads them (evaluation,
        a checkpoint, final/). A collective: every rank calls it. ddp / one process: nothing to do."""
        if self.sharded is not None:

            fsdp.gather_into(self.sharded, self.modules)

    def _no_sync(self, sync: bool):
        if sync:
            return nullcontext()
        if self.sharded is not None:

            return fsdp.no_sync(self.sharded, sync)
        return self.wrapped.no_sync()

    # ------------------------------------------------------------------ what a task's evaluate() gets
    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def autocast(self):
        if self._amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self._amp_dtype)

    def to_device(self, batch: dict) -> dict:
        return {k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                for k, v in batch.items()}

    # ------------------------------------------------------------------ one optimizer step
    def step(self, micro: list[dict], loss, counts, *, want_norm: bool = False) -> list[tuple]:
        """Forward and backward every micro-batch, then one optimizer step.

        ``loss(modules, batch) -> (losses, metrics)``, ``counts(batch) -> {part: items}`` (the
        task's). Returns, per micro-batch, ``(total, losses, metrics, weights)`` (detached) for the
        log window.
        """
        weights = self.weights([counts(b) for b in micro])
        results = []
        for i, batch in enumerate(micro):
            inputs = self.to_device(batch)
            sync = i == len(micro) - 1 or not self.dist.enabled
            with self._no_sync(sync):
                with self.autocast():
                    losses, metrics = self.wrapped(inputs, loss)
                total = self.combine(losses, weights[i])
                (self.scaler.scale(total) if self.scaler is not None else total).backward()
            parts = ({k: v.detach() for k, v in losses.items()} if isinstance(losses, dict) else {})
            results.append((total.detach(), parts, metrics, weights[i]))
        self.optimizer_step(want_norm)
        return results

    def weights(self, counts: list[dict[str, int]]) -> list[dict]:
        """Each micro-batch's weight per loss part: its share of the items of the whole step
        (all micro-batches, all ranks) x world size (DDP averages gradients over ranks), so the
        gradient is that of the mean over the global batch, exactly, whatever each micro-batch
        or rank holds (different numbers of masked tokens, say)."""
        parts = list(counts[0])
        totals = [sum(c[p] for c in counts) for p in parts]
        world = self.dist.world_size
        if world > 1:
            t = torch.tensor(totals, dtype=torch.float64, device=self.dist.collective_device)
            self.dist.all_reduce(t)
            if t.device.type != "cpu":  # NCCL: keep it on the GPU, no host sync
                inv = world / t.clamp_min(1).float()
                return [{p: inv[j] * c[p] for j, p in enumerate(parts)} for c in counts]
            totals = t.tolist()
        return [{p: (c[p] * world / totals[j] if totals[j] else 0.0) for j, p in enumerate(parts)}
                for c in counts]

    @staticmethod
    def combine(loss, weights: dict):
        """The micro-batch's share of the step's loss: its parts (means) times their weights."""
        if isinstance(loss, dict):
            missing = set(loss) - set(weights)
            if missing:
                raise KeyError(f"the task's loss has parts {sorted(missing)} that its counts() does not give")
            # a part with no items in this micro-batch (weight 0.0) is left out: its mean is NaN
            return sum(v * weights[k] for k, v in loss.items() if not is_zero(weights[k]))
        (w,) = weights.values()
        return loss * w

    def optimizer_step(self, want_norm: bool = False) -> None:
        clip = self.cfg.optim.grad_clip
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        # grad_norm (logged) is the global norm *before* clipping: what clip_grad_norm_ returns and
        # compares with the clip (a logged value above optim.grad_clip: that step was clipped)
        if clip:
            self.grad_norm = torch.nn.utils.clip_grad_norm_(self.params, clip, foreach=True)
        elif want_norm:
            self.grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        if self.grad_norm is not None and hasattr(self.grad_norm, "full_tensor"):  # fsdp: a DTensor
            self.grad_norm = self.grad_norm.full_tensor()
        if self.scaler is not None:
            before = self.scale_tensor().clone()
            self.scaler.step(self.optimizer)  # skipped when a gradient is inf/NaN
            self.scaler.update()  # ... and then the scale backs off
            self.skipped += (self.scale_tensor() < before).float()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def scale_tensor(self) -> torch.Tensor:
        scale = getattr(self.scaler, "_scale", None)  # a device tensor: reading it needs no sync
        return scale if isinstance(scale, torch.Tensor) else torch.tensor(self.scaler.get_scale())

    def log_values(self) -> dict[str, torch.Tensor]:
        """Device scalars for the log record: grad_norm, and with fp16 loss_scale, skipped_steps."""
        values = {}
        if self.grad_norm is not None:
            values["grad_norm"] = self.grad_norm
        if self.scaler is not None:
            values["loss_scale"] = self.scale_tensor()
            values["skipped_steps"] = self.skipped
        return values

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict:
        """The optimizer, the fp16 scaler and every rank's RNG states (a collective: all ranks call it).
        The RNG states are restored by the loop (``checkpoint.set_rng_state``) when it starts, after
        everything that draws from them at start-up."""
        if self.sharded is not None:

            optimizer = fsdp.optimizer_state(self.sharded, self.optimizer)  # full, by parameter name
        else:
            optimizer = self.optimizer.state_dict()
        return {"optimizer": optimizer, "strategy": "fsdp" if self.sharded is not None else "ddp",
                "rng": self.dist.gather(checkpoint.rng_state()),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "skipped_steps": int(self.skipped.item())}

    def load_state_dict(self, state: dict, where: str = "checkpoint") -> None:
        strategy = "fsdp" if self.sharded is not None else "ddp"
        if state.get("strategy", "ddp") != strategy:
            raise UserError(f"{where}: the optimizer state was written with train.strategy "
                            f"{state.get('strategy', 'ddp')}, this run uses {strategy}: resume with the same strategy "
                            f"(or --init-from {where} for the weights alone)")
        try:
            if self.sharded is not None:

                fsdp.scatter_from(self.modules, self.sharded)  # the checkpoint's weights, loaded into self.modules
                fsdp.load_optimizer_state(self.sharded, self.optimizer, state["optimizer"])
            else:
                self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as exc:
            raise UserError(f"{where}: the optimizer state does not fit this model/optimizer ({exc})") from None
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.skipped.fill_(float(state.get("skipped_steps", 0)))


def is_zero(w) -> bool:
    return isinstance(w, float) and w == 0.0


def _check_apart(trainable: dict, frozen: dict) -> None:
    """A module (or parameter) is trainable or frozen, not both: a frozen teacher that shares a
    tensor with the student would be updated through the student."""
    both = set(trainable) & set(frozen)
    if both:
        raise ValueError(f"modules {sorted(both)} are both trainable and frozen")
    seen = {id(p): name for name, m in trainable.items() for p in m.parameters()}
    for name, m in frozen.items():
        for p in m.parameters():
            if id(p) in seen:
                raise ValueError(f"frozen module {name!r} shares a parameter with trainable module {seen[id(p)]!r}")
