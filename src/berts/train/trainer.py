"""The Trainer: one loop for pretraining, fine-tuning and distillation.

An engine object in cramming's sense: it owns the device, precision (autocast, fp16 loss
scaling), gradient accumulation and clipping, the optimizer and schedule, DDP, checkpoints and
resume, logging and the wall-clock budget. The model stays pure; what to train on and how to
score it is the *task*'s (see tasks.py)::

    trainer = Trainer(model, task, cfg, tokenizer=tok, resume=None)
    summary = trainer.fit()

``cfg`` has the sections optim, schedule, train, impl, log and data (see config.py).

Host syncs: the loop reads nothing back from the device except every ``log.every`` steps (one
all-reduced vector), at checkpoints, at evaluations and, in budget mode with several processes,
one broadcast of the clock per step.
"""
from __future__ import annotations

import json
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from berts.data.sampler import ResumableBatchSampler, consumed_state
from berts.errors import UserError
from berts.train import checkpoint, distributed
from berts.train.config import config_to_dict, parse_duration, save_config
from berts.train.monitor import Monitor, duration, plot, read_metrics, summary
from berts.train.optim import Schedule, build_optimizer

STATE_VERSION = 1


class TrainingDiverged(UserError):
    """The loss became NaN/inf: the run stops, its last good checkpoint intact."""


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
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 40))
    except (OSError, AttributeError):
        return False


def _precision(name: str, device: torch.device) -> str:
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


class Trainer:
    def __init__(self, model, task, config, *, tokenizer=None, resume: str | Path | None = None,
                 dist: distributed.Dist | None = None, title: str = "train"):
        self.cfg = cfg = config
        self.task = task
        self.tokenizer = tokenizer
        self.title = title
        self.out = Path(cfg.log.out)
        self.dist = d = dist or distributed.setup(cfg.impl.device)
        self.device = d.device

        impl = cfg.impl
        if impl.threads:
            torch.set_num_threads(impl.threads)
        if impl.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.precision = _precision(impl.precision, self.device)
        self._amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.scaler = None
        if self.precision == "fp16":
            self.scaler = torch.amp.GradScaler(self.device.type, init_scale=impl.init_scale,
                                               growth_interval=impl.growth_interval)

        if impl.tune_malloc and self.device.type == "cpu":
            tune_malloc()

        # model: on the device, wrapped for DDP (rank 0's weights are broadcast to all)
        self.model = model.to(self.device)
        self.model.train()
        self.engine = self.model
        if impl.compile:
            from berts.model import compile_model

            compile_model(self.model)  # in place: checkpoints keep the plain module's names
        if d.enabled:
            self.engine = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                gradient_as_bucket_view=True)
        checkpoint.seed_all(cfg.train.seed + d.rank)  # dropout differs per rank, as it should
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.model, cfg.optim)

        # data: each rank a disjoint slice of every global batch
        t = cfg.train
        self.accum = t.grad_accum
        if t.batch_size % (d.world_size * self.accum):
            raise UserError(f"train.batch_size {t.batch_size} is not a multiple of processes x grad_accum "
                            f"({d.world_size} x {self.accum})")
        self.per_rank_batch = t.batch_size // (d.world_size * self.accum)
        dataset = task.train_dataset
        self.sampler = ResumableBatchSampler(len(dataset), self.per_rank_batch, seed=t.seed, rank=d.rank,
                                             world_size=d.world_size, drop_last=True)
        if len(self.sampler) == 0:
            raise UserError(f"the training set has {len(dataset)} examples, fewer than one global batch "
                            f"({t.batch_size // self.accum}): lower train.batch_size")
        workers = cfg.data.num_workers
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=None, sampler=self.sampler, num_workers=workers,
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(t.seed))  # never the global RNG: exact resume

        # the plan: steps, epochs or a wall-clock budget
        self.steps_per_epoch = len(self.sampler) / self.accum
        self.budget = parse_duration(t.budget) if t.budget else None
        if t.max_steps is not None:
            self.max_steps = t.max_steps
        elif t.epochs is not None:
            self.max_steps = max(1, math.ceil(t.epochs * self.steps_per_epoch))
        else:
            self.max_steps = None
        s = cfg.schedule
        warmup = s.warmup if s.warmup < 1 else s.warmup / self.max_steps
        if warmup >= 1:
            raise UserError(f"schedule.warmup {s.warmup:g} steps is not less than the {self.max_steps} steps of the run")
        self.schedule = Schedule(self.optimizer, s.name, warmup, s.min_lr)
        if t.eval_every is not None:
            self.eval_every = t.eval_every
        elif t.epochs is not None:
            self.eval_every = max(1, round(self.steps_per_epoch))
        else:
            self.eval_every = None  # at the end only

        # progress
        self.step = 0
        self.tokens = 0
        self.examples = 0
        self.elapsed = 0.0
        self.evals: list[dict] = []
        self.best: dict | None = None
        self.bad_evals = 0
        self.skipped = torch.zeros((), device=self.device)
        self._consumed = None  # (epoch, step) of the last batch trained on
        self._early_stop = False
        self._rng_state = None
        self.resumed_from = None
        self._reset_window()
        self._unchecked = torch.zeros((), device=self.device)
        self._grad_norm = None
        self._save_seconds = 0.0
        self._step_seconds = 0.0
        self.monitor = Monitor(None, enabled=False)
        if resume is not None:
            self._load(Path(resume))

    # ------------------------------------------------------------------ helpers for tasks
    def autocast(self):
        if self._amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self._amp_dtype)

    def to_device(self, batch: dict) -> dict:
        return {k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                for k, v in batch.items()}

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def print(self, text: str) -> None:
        if self.is_main:
            self.monitor.message(text) if self.monitor.enabled else print(text, file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ resume
    def _load(self, directory: Path) -> None:
        state = checkpoint.read_state(directory)
        if state.get("version") != STATE_VERSION:
            raise UserError(f"{directory}: trainer state version {state.get('version')} is not {STATE_VERSION}")
        checkpoint.load_weights(self.model, directory)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as exc:
            raise UserError(f"{directory}: the optimizer state does not fit this model/optimizer ({exc})") from None
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        self.step = int(state["step"])
        self.tokens = int(state["tokens"])
        self.examples = int(state["examples"])
        self.elapsed = float(state["elapsed"])
        self.evals = list(state.get("evals", []))
        self.best = state.get("best")
        self.bad_evals = int(state.get("bad_evals", 0))
        self.skipped.fill_(float(state.get("skipped_steps", 0)))
        rng = state.get("rng") or []
        if len(rng) == self.dist.world_size:
            self._rng_state = rng[self.dist.rank]
        else:
            checkpoint.seed_all(self.cfg.train.seed + 1000003 * self.step + self.dist.rank)
            self.print(f"note: the checkpoint was written by {len(rng)} process(es), this run has "
                       f"{self.dist.world_size}: random states are re-seeded (the run is not bit-exact)")
        self.resumed_from = directory
        self._config_changes = self._diff_config(state.get("config") or {})

    def _diff_config(self, saved: dict) -> list[str]:
        now = config_to_dict(self.cfg)
        changes = []
        for section, body in now.items():
            for key, value in body.items():
                old = saved.get(section, {}).get(key, value)
                if old != value and not (section == "log" and key in ("progress",)):
                    changes.append(f"{section}.{key} {old!r} -> {value!r}")
        return changes

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict:
        d, cfg = self.dist, self.cfg
        if d.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            checkpoint.clean_partial(self.out)
            save_config(cfg, self.out / "config.yaml")
        self.monitor = Monitor(self.out, enabled=d.is_main, progress=cfg.log.progress,
                               tensorboard=cfg.log.tensorboard, total_steps=self.max_steps, budget=self.budget,
                               start_step=self.step, start_elapsed=self.elapsed, desc=self.title)
        self._announce()
        batches = self._batches()
        if self._rng_state is not None:  # last, so nothing above draws from the restored streams
            checkpoint.set_rng_state(self._rng_state)
        self._t0 = time.perf_counter() - self.elapsed
        self._window_t = time.perf_counter()
        last_save = last_eval = self.step if self.resumed_from else None
        stopped = "finished"
        try:
            while True:
                elapsed = self._clock()
                reason = self._stop_reason(elapsed)
                if reason:
                    stopped = reason
                    break
                self.schedule.set(self._progress(elapsed))
                t_step = time.perf_counter()
                self._train_step(batches)
                self._step_seconds = time.perf_counter() - t_step
                self.monitor.advance(self.step, self._clock_local())
                if self.step % cfg.log.every == 0:
                    self._log_train()
                if self.eval_every and self.step % self.eval_every == 0:
                    self._evaluate()
                    last_eval = self.step
                if self.step % cfg.train.save_every == 0:
                    self._save()
                    last_save = self.step
            if self._window_steps:
                self._log_train()
            if last_eval != self.step:
                self._evaluate()
            if last_save != self.step:
                self._save()
            self._finish(stopped)
        finally:
            self.monitor.close()
        return self.result

    def _batches(self):
        while True:
            yield from self.loader

    def _clock_local(self) -> float:
        return time.perf_counter() - self._t0

    def _clock(self) -> float:
        elapsed = self._clock_local()
        if self.budget is not None and self.dist.enabled:  # every rank follows rank 0's clock
            t = torch.tensor([elapsed, self._step_seconds], dtype=torch.float64, device=self.dist.collective_device)
            torch.distributed.broadcast(t, 0)
            elapsed, self._step_seconds = t.tolist()  # so all ranks agree when the budget is spent
        self.elapsed = elapsed
        return elapsed

    def _progress(self, elapsed: float) -> float:
        """How far the run is, in [0, 1]: by steps, by the clock (budget), or the further of the two."""
        by_steps = self.step / self.max_steps if self.max_steps else 0.0
        by_clock = elapsed / self.budget if self.budget else 0.0
        return max(by_steps, by_clock)

    def _stop_reason(self, elapsed: float) -> str | None:
        if self.max_steps is not None and self.step >= self.max_steps:
            return "finished"
        if self.budget is not None and elapsed + self._step_seconds + self._save_seconds >= self.budget:
            return "budget spent"
        if self._early_stop:
            return "stopped early"
        return None

    def _train_step(self, batches) -> None:
        micro = [next(batches) for _ in range(self.accum)]
        weights = self._weights([self.task.counts(b) for b in micro])
        for i, batch in enumerate(micro):
            self._window_tokens += self.task.tokens(batch)
            self.examples += int(batch["input_ids"].shape[0])
            inputs = self.to_device(batch)
            sync = i == len(micro) - 1 or not self.dist.enabled
            with (nullcontext() if sync else self.engine.no_sync()):
                with self.autocast():
                    loss, logs = self.task.loss(self.engine, inputs)
                total = self._combine(loss, weights[i])
                (self.scaler.scale(total) if self.scaler is not None else total).backward()
            total = total.detach()
            self._window_loss += total
            self._unchecked += total
            for k, v in logs.items():
                v = v.detach().float() if isinstance(v, torch.Tensor) else float(v)
                part = self._log_part(k, weights[i])
                s, n = self._window_logs.get(k, (0.0, 0))
                if part is None:  # a plain mean over micro-batches
                    self._window_logs[k] = (s + v, n + 1)
                else:  # weighted like its loss part: exact over the global batch, as the loss is
                    self._window_logs[k] = (s + v * weights[i][part], n + (1 if i == len(micro) - 1 else 0))
        self._optimizer_step()
        self._consumed = (micro[-1]["epoch"], micro[-1]["step"])
        self.step += 1
        self._window_steps += 1

    def _weights(self, counts: list[dict[str, int]]) -> list[dict]:
        """Each micro-batch's weight per loss part: its share of the items of the whole step
        (all micro-batches, all ranks) x world size (DDP averages gradients over ranks)."""
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

    def _log_part(self, key: str, weights: dict) -> str | None:
        """The loss part a logged value averages over like (so it is weighted like it): the only
        part, the part of that name or prefix (mlm_acc -> mlm), or the task's ``log_parts``."""
        if len(weights) == 1:
            return next(iter(weights))
        if key in weights:
            return key
        for part in weights:
            if key.startswith(part + "_"):
                return part
        part = getattr(self.task, "log_parts", {}).get(key)
        return part if part in weights else None

    @staticmethod
    def _combine(loss, weights: dict):
        if isinstance(loss, dict):
            missing = set(loss) - set(weights)
            if missing:
                raise KeyError(f"the task's loss has parts {sorted(missing)} that its counts() does not give")
            # a part with no items in this micro-batch (weight 0.0) is left out: its mean is NaN
            return sum(v * weights[k] for k, v in loss.items()
                       if not (isinstance(weights[k], float) and weights[k] == 0.0))
        (w,) = weights.values()
        return loss * w

    def _optimizer_step(self) -> None:
        clip = self.cfg.optim.grad_clip
        want_norm = (self.step + 1) % self.cfg.log.every == 0
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if clip:
            self._grad_norm = torch.nn.utils.clip_grad_norm_(self.params, clip, foreach=True)
        elif want_norm:
            self._grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        if self.scaler is not None:
            before = self._scale_tensor().clone()
            self.scaler.step(self.optimizer)  # skipped when a gradient is inf/NaN
            self.scaler.update()  # ... and then the scale backs off
            self.skipped += (self._scale_tensor() < before).float()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _scale_tensor(self) -> torch.Tensor:
        scale = getattr(self.scaler, "_scale", None)  # a device tensor: reading it needs no sync
        return scale if isinstance(scale, torch.Tensor) else torch.tensor(self.scaler.get_scale())

    # ------------------------------------------------------------------ logging
    def _reset_window(self) -> None:
        self._window_loss = torch.zeros((), device=self.device)
        self._window_logs: dict[str, tuple] = {}
        self._window_tokens = 0
        self._window_steps = 0
        self._window_t = time.perf_counter()

    def _log_train(self) -> None:
        """One all-reduced vector, one host sync."""
        d = self.dist
        keys = sorted(self._window_logs)
        values = [self._window_loss / max(self._window_steps, 1)]
        values += [torch.as_tensor(s / max(n, 1), device=self.device).float() for s, n in
                   (self._window_logs[k] for k in keys)]
        values.append(self._grad_norm.float() if self._grad_norm is not None else torch.zeros((), device=self.device))
        if self.scaler is not None:
            values += [self._scale_tensor().float().to(self.device), self.skipped]
        vec = torch.stack([v.reshape(()).to(self.device).double() for v in values])
        vec = torch.cat([vec, torch.tensor([float(self._window_tokens)], dtype=torch.float64, device=self.device)])
        if d.enabled:
            vec = vec.to(d.collective_device)
            d.all_reduce(vec)
            vec[:-1] /= d.world_size
        vals = vec.tolist()
        now = time.perf_counter()
        seconds = max(now - self._window_t, 1e-9)
        tokens = int(vals[-1])
        self.tokens += tokens
        loss = vals[0]
        record = {"step": self.step, "epoch": round(self._epoch(), 4), "loss": loss}
        record.update({k: vals[1 + i] for i, k in enumerate(keys)})
        record["lr"] = self.schedule.lr
        if self._grad_norm is not None:
            record["grad_norm"] = vals[1 + len(keys)]
        if self.scaler is not None:
            record["loss_scale"] = vals[2 + len(keys)]
            record["skipped_steps"] = int(vals[3 + len(keys)])
        record["tokens_per_s"] = tokens / seconds
        record["steps_per_s"] = self._window_steps / seconds
        record["tokens"] = self.tokens
        record["elapsed"] = round(self._clock_local(), 2)
        self.monitor.log(record)
        first_bad = self.step - self._window_steps + 1
        self._reset_window()
        if not math.isfinite(loss):
            self._diverged(loss, first_bad)
        self._unchecked.zero_()

    def _epoch(self) -> float:
        if self._consumed is None:
            return 0.0
        epoch, step = self._consumed
        return epoch + (step + 1) / len(self.sampler)

    def _check_finite(self) -> None:
        """Before a checkpoint: was every loss since the last check finite? (one sync)"""
        bad = (~torch.isfinite(self._unchecked)).float().reshape(1)
        if self.dist.enabled:
            bad = bad.to(self.dist.collective_device)
            self.dist.all_reduce(bad)
        if float(bad.item()) > 0:
            self._diverged(float("nan"), None)
        self._unchecked.zero_()

    def _diverged(self, value: float, since: int | None) -> None:
        last = checkpoint.find_latest(self.out)
        where = f"at step {self.step}" if since is None or since == self.step else f"between steps {since} and {self.step}"
        keep = (f"the last good checkpoint is {last} (step {last.name.split('-')[-1]})" if last is not None
                else "no checkpoint was written")
        hint = "lower optim.lr, clip gradients (optim.grad_clip) or use impl.precision fp32/bf16"
        self.monitor.log({"step": self.step, "loss": value, "error": "diverged"}, kind="stop")
        raise TrainingDiverged(f"the loss became {value} {where}; training stopped and {keep} "
                               f"(resume with --resume auto after a change: {hint})")

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self) -> None:
        metrics = self.task.evaluate(self.model, self) if self.is_main else None
        metrics = self.dist.broadcast(metrics)
        if not metrics:
            return
        record = {"step": self.step, "epoch": round(self._epoch(), 4), **metrics}
        self.evals.append(record)
        self.monitor.log(dict(record), kind="eval")
        name = self.task.metric
        if not name:
            return
        if name not in metrics:
            raise UserError(f"train.metric {name} is not one of the evaluation's metrics ({', '.join(metrics)})")
        from berts.metrics import better

        value = metrics[name]
        if self.best is None or better(name, value, self.best["value"]):
            self.best = {"metric": name, "value": value, "step": self.step, "metrics": dict(metrics)}
            self.bad_evals = 0
            if self.is_main:
                checkpoint.write_checkpoint(self.out / "best", self.model, None, self.tokenizer,
                                            {"eval_results.json": json.dumps(self.best, indent=2) + "\n"})
        else:
            self.bad_evals += 1
            patience = self.cfg.train.patience
            if patience and self.bad_evals >= patience:
                self._early_stop = True
                self.print(f"early stopping: {name} has not improved for {self.bad_evals} evaluations "
                           f"(best {value if self.best is None else self.best['value']:.4g} at step {self.best['step']})")

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        rng = self.dist.gather(checkpoint.rng_state())
        epoch, step = self._consumed if self._consumed is not None else (self.sampler.epoch, self.sampler.step - 1)
        return {
            "version": STATE_VERSION,
            "step": self.step,
            "tokens": self.tokens + self._window_tokens * self.dist.world_size,
            "examples": self.examples,
            "elapsed": self._clock_local(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "sampler": consumed_state(epoch, step, self.sampler),
            "rng": rng,
            "skipped_steps": int(self.skipped.item()),
            "evals": self.evals,
            "best": self.best,
            "bad_evals": self.bad_evals,
            "world_size": self.dist.world_size,
            "task": self.task.name,
            "config": config_to_dict(self.cfg),
        }

    def _save(self) -> None:
        self._check_finite()
        state = self.state_dict()  # a collective (RNG states of every rank)
        if self.is_main:
            t = time.perf_counter()
            directory = checkpoint.step_dir(self.out, self.step)
            checkpoint.write_checkpoint(directory, self.model, state, self.tokenizer)
            checkpoint.prune(self.out, self.cfg.train.keep_last)
            self._save_seconds = time.perf_counter() - t
        self._save_seconds = self.dist.broadcast(self._save_seconds) if self.budget else self._save_seconds

    # ------------------------------------------------------------------ the end
    def _announce(self) -> None:
        d, cfg = self.dist, self.cfg
        n = self.model.num_parameters() if hasattr(self.model, "num_parameters") else sum(
            p.numel() for p in self.model.parameters())
        plan = (f"budget {duration(self.budget)}" if self.budget else f"{self.max_steps:,} steps"
                f" ({self.max_steps / self.steps_per_epoch:.2f} epochs)")
        procs = f"{d.world_size} processes (DDP)" if d.enabled else "1 process"
        self.print(f"{self.title}: {type(self.model).__name__} ({n / 1e6:.2f}M parameters) on {self.device}, "
                   f"{self.precision}, {procs}; global batch {cfg.train.batch_size} = {d.world_size} x "
                   f"{self.per_rank_batch} x accum {self.accum}; {plan}; {cfg.optim.name} lr {cfg.optim.lr:g}, "
                   f"{cfg.schedule.name} schedule")
        if self.resumed_from is not None:
            rng = "random states, " if self._rng_state is not None else ""
            self.print(f"resumed from {self.resumed_from} at step {self.step} "
                       f"(optimizer, schedule, {rng}data position restored)")
            for change in self._config_changes:
                self.print(f"  note: config changed since the checkpoint: {change}")

    def _finish(self, stopped: str) -> None:
        d = self.dist
        self.result = {"step": self.step, "tokens": self.tokens, "elapsed": self.elapsed, "best": self.best,
                       "stopped": stopped, "evals": self.evals, "out": str(self.out)}
        if not d.is_main:
            d.barrier()
            return
        final = self.out / "final"
        checkpoint.write_checkpoint(final, self.model, None, self.tokenizer,
                                    {"train_result.json": json.dumps(
                                        {k: v for k, v in self.result.items() if k != "evals"}, indent=2) + "\n"})
        self.monitor.close()
        paths = {"model": str(final)}
        if self.best is not None:
            paths["best"] = str(self.out / "best")
        last = checkpoint.find_latest(self.out)
        if last is not None:
            paths["checkpoint"] = str(last)
        paths["metrics"] = str(self.out / "metrics.jsonl")
        if self.cfg.log.tensorboard:
            paths["tensorboard"] = str(self.out / "tb")
        if self.cfg.log.plots:
            written = plot(self.out)
            if written:
                paths["plots"] = ", ".join(str(p) for p in written)
        text = summary(self.title, steps=self.step, tokens=self.tokens, elapsed=self.elapsed,
                       records=read_metrics(self.out), best=self.best, paths=paths, stopped=stopped)
        self.result["summary"] = text
        print(text, flush=True)
        d.barrier()
