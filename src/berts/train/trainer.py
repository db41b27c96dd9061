"""The Trainer: one loop for every task (pretraining, fine-tuning, any task with several modules).

It puts the pieces together and says *when*: the engine (engine.py) runs a step, the plan
(plan.py) says how long the run is, the monitor (monitor.py) keeps the log window and writes
what people see, checkpoint.py writes and reads directories; what to train and how to score it
is the *task*'s (tasks.py)::

    trainer = Trainer(task, cfg, tokenizer=tok, resume=None)
    result = trainer.fit()

``cfg`` has the sections optim, schedule, train, impl, log and data (see config.py).

Host syncs: the loop reads nothing back from the device except every ``log.every`` steps (one
all-reduced vector), at checkpoints, at evaluations and, with several processes, one small
all-reduce per step (the stop signal flag; in budget mode also rank 0's clock).

SIGINT (Ctrl-C) and SIGTERM (how cluster schedulers preempt a job) end the run at the next step
boundary with a checkpoint (every rank agrees on the step first: the flag is all-reduced each
step; rank 0 writes), and ``fit`` raises :class:`TrainingInterrupted` (a KeyboardInterrupt); the
commands exit with 128 + the signal (130, 143). A second Ctrl-C stops at once.
"""
from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

import torch

from berts.data.sampler import ResumableBatchSampler, consumed_state
from berts.errors import UserError
from berts.train import checkpoint, distributed
from berts.train.checkpoint import STATE_VERSION
from berts.config.loader import config_to_dict, save_config
from berts.train.engine import Engine
from berts.train.monitor import LogWindow, Monitor, disk_usage, plot, read_metrics, summary
from berts.train.optim import Schedule
from berts.train.plan import RunPlan
from berts.metrics import better


class TrainingDiverged(UserError):
    """The loss became NaN/inf: the run stops, its last good checkpoint intact."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run at ``step``; ``checkpoint``: the one written on the way out
    (None with train.keep_last 0)."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None):
        super().__init__(f"{signal.Signals(signum).name} at step {step}")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Trainer:
    clock = staticmethod(time.perf_counter)  # the run's clock (the budget, step and save times)

    def __init__(self, task, config, *, tokenizer=None, resume: str | Path | None = None,
                 dist: distributed.Dist | None = None, title: str = "train"):
        self.cfg = cfg = config
        self.task = task
        self.tokenizer = tokenizer
        self.title = title
        self.out = Path(cfg.log.out)
        self.dist = d = dist or distributed.setup(cfg.impl.device)
        self.device = d.device

        trainable = dict(task.modules())
        self.engine = Engine(trainable, task.frozen_modules(), cfg, d)
        self.model = self.engine.main  # the main module: final/, best/ and a checkpoint's top level
        self.saved = dict(task.saved_modules())  # name -> subdirectory
        self.others = {n: m for n, m in trainable.items() if n not in self.saved}  # -> modules.safetensors

        # data: each rank a disjoint slice of every global batch
        t = cfg.train
        self.accum = t.grad_accum
        self._micro = self.accum  # micro-batches in the next step (RunPlan.micro_batches)
        if t.batch_size % (d.world_size * self.accum):
            raise UserError(f"train.batch_size {t.batch_size} is not a multiple of processes x grad_accum "
                            f"({d.world_size} x {self.accum})")
        self.per_rank_batch = t.batch_size // (d.world_size * self.accum)
        dataset = task.train_dataset
        bucket = getattr(cfg.data, "bucket_size", 0)  # length bucketing (pretraining data)
        self.sampler = ResumableBatchSampler(len(dataset), self.per_rank_batch, seed=t.seed, rank=d.rank,
                                             world_size=d.world_size, drop_last=True,
                                             lengths=dataset.lengths if bucket else None, bucket_size=bucket)
        if len(self.sampler) == 0:
            raise UserError(f"the training set has {len(dataset)} examples, fewer than one global batch "
                            f"({t.batch_size // self.accum}): lower train.batch_size")
        workers = cfg.data.num_workers
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=None, sampler=self.sampler, num_workers=workers,
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(t.seed))  # never the global RNG: exact resume

        self.plan = RunPlan.from_config(t, cfg.schedule, steps_per_epoch=len(self.sampler) / self.accum)
        self.schedule = Schedule(self.engine.optimizer, cfg.schedule.name, self.plan.warmup, cfg.schedule.min_lr,
                                 cfg.schedule.decay)

        # progress
        self.step = 0
        self.tokens = 0
        self.examples = 0
        self.elapsed = 0.0
        self.evals: list[dict] = []
        self.best: dict | None = None
        self.bad_evals = 0
        self._consumed = None  # (epoch, step) of the last batch trained on
        self._early_stop = False
        self._rng_state = None
        self.resumed_from = None
        self._config_changes: list[str] = []
        self.window = LogWindow(self.device, task.metric_parts)
        self._unchecked = torch.zeros((), device=self.device)  # losses since the last finiteness check
        self._save_seconds = 0.0
        self._step_seconds = 0.0
        self._signal = 0  # the stop signal received (0: none)
        self.monitor = Monitor(None, enabled=False)
        if resume is not None:
            self._load(Path(resume))

    # ------------------------------------------------------------------ for callers
    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def print(self, text: str) -> None:
        if self.is_main:
            self.monitor.message(text) if self.monitor.enabled else print(text, file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict:
        d, cfg, plan = self.dist, self.cfg, self.plan
        if d.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            checkpoint.clean_partial(self.out)
            save_config(cfg, self.out / "config.yaml")
        self.monitor = Monitor(self.out, enabled=d.is_main, progress=cfg.log.progress,
                               tensorboard=cfg.log.tensorboard, total_steps=plan.max_steps, budget=plan.budget,
                               start_step=self.step, start_elapsed=self.elapsed, desc=self.title)
        self._announce()
        batches = self._batches()
        if self._rng_state is not None:  # last, so nothing above draws from the restored streams
            checkpoint.set_rng_state(self._rng_state)
        self._t0 = self.clock() - self.elapsed
        self.window.reset()
        last_save = last_eval = self.step if self.resumed_from else None
        previous = self._catch_signals()
        try:
            while True:
                signum = self._stop_signal()
                if signum:
                    self._interrupted(signum, last_save)
                elapsed = self._clock()
                stopped = plan.stop_reason(self.step, elapsed, next_step_seconds=self._step_seconds,
                                           save_seconds=self._save_seconds, early_stop=self._early_stop)
                if stopped:
                    break
                progress = plan.progress(self.step, elapsed)
                self.schedule.set(progress)
                t_step = self.clock()
                self._micro = plan.micro_batches(progress)  # the batch warm-up's, else grad_accum
                self._train_step(batches)
                self._step_seconds = self.clock() - t_step
                self.monitor.advance(self.step, self._clock_local())
                if self.step % cfg.log.every == 0:
                    self._log_train()
                if plan.evaluates_at(self.step):
                    self._evaluate()
                    last_eval = self.step
                if self.step % cfg.train.save_every == 0:
                    self._save()
                    last_save = self.step
            if self.window.steps:
                self._log_train()
            if last_eval != self.step:
                self._evaluate()
            if last_save != self.step:
                self._save()
            self._finish(stopped)
        finally:
            self._restore_signals(previous)
            self.monitor.close()
        return self.result

    # ------------------------------------------------------------------ signals
    def _catch_signals(self) -> dict:
        """SIGINT/SIGTERM set a flag the loop reads at the next step boundary (main thread only:
        Python delivers signals there). One that comes after the last step lets the run finish
        (final/ is moments away). Returns the handlers to restore."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        self._signal = 0

        def handler(signum, frame):
            if self._signal and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now (checkpoint writes are atomic)
            self._signal = signum

        previous = {}
        for sig in STOP_SIGNALS:
            try:
                previous[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass
        return previous

    @staticmethod
    def _restore_signals(previous: dict) -> None:
        for sig, handler in previous.items():
            if handler is not None:  # None: a handler not installed from Python, nothing to put back
                signal.signal(sig, handler)

    def _stop_signal(self) -> int:
        """The stop signal any rank received (all ranks agree: one small all-reduce per step with DDP)."""
        if not self.dist.enabled:
            return self._signal
        flag = torch.tensor([float(self._signal)], device=self.dist.collective_device)
        self.dist.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return int(flag.item())

    def _interrupted(self, signum: int, last_save: int | None) -> None:
        """Write a checkpoint at this step (all ranks take part, rank 0 writes), then raise."""
        written = None
        if self.cfg.train.keep_last > 0:
            if last_save != self.step:
                self._save()
            written = checkpoint.step_dir(self.out, self.step)
        if self.is_main:
            self.monitor.log({"step": self.step, "signal": signal.Signals(signum).name,
                              "checkpoint": str(written) if written else None}, kind="stop")
        raise TrainingInterrupted(signum, self.step, written)

    def _batches(self):
        while True:
            yield from self.loader

    def _clock_local(self) -> float:
        return self.clock() - self._t0

    def _clock(self) -> float:
        elapsed = self._clock_local()
        if self.plan.budget is not None and self.dist.enabled:  # every rank follows rank 0's clock
            t = torch.tensor([elapsed, self._step_seconds], dtype=torch.float64, device=self.dist.collective_device)
            torch.distributed.broadcast(t, 0)
            elapsed, self._step_seconds = t.tolist()  # so all ranks agree when the budget is spent
        self.elapsed = elapsed
        return elapsed

    def _train_step(self, batches) -> None:
        """One optimizer step over ``self._micro`` micro-batches (grad_accum, fewer in the batch warm-up)."""
        micro = [next(batches) for _ in range(self._micro)]
        want_norm = (self.step + 1) % self.cfg.log.every == 0
        results = self.engine.step(micro, self.task.loss, self.task.counts, want_norm=want_norm)
        for i, (batch, (total, parts, metrics, weights)) in enumerate(zip(micro, results)):
            self.window.add(total, parts, metrics, weights, last=i == len(micro) - 1)
            self._unchecked += total
            self.examples += int(batch["input_ids"].shape[0])
        self.window.end_step(sum(self.task.tokens(b) for b in micro))
        self._consumed = (micro[-1]["epoch"], micro[-1]["step"])
        self.step += 1

    # ------------------------------------------------------------------ logging
    def _log_train(self) -> None:
        """One all-reduced vector, one host sync."""
        steps = self.window.steps
        values, tokens, seconds = self.window.record(self.dist, self.engine.log_values())
        self.window.reset()
        self.tokens += tokens
        loss = values.pop("loss")
        record = {"step": self.step, "epoch": round(self._epoch(), 4), "loss": loss}
        extras = {k: values.pop(k) for k in ("grad_norm", "loss_scale", "skipped_steps") if k in values}
        record.update(values)
        record["lr"] = self.schedule.lr
        if "grad_norm" in extras:
            record["grad_norm"] = extras["grad_norm"]
        if "loss_scale" in extras:
            record["loss_scale"] = extras["loss_scale"]
            record["skipped_steps"] = int(extras["skipped_steps"])
        record["tokens_per_s"] = tokens / seconds
        record["steps_per_s"] = steps / seconds
        record["tokens"] = self.tokens
        record["elapsed"] = round(self._clock_local(), 2)
        self.monitor.log(record)
        if not math.isfinite(loss):
            self._diverged(loss, self.step - steps + 1)
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
        self.engine.sync_full()  # fsdp: the plain modules rank 0 evaluates (and best/ writes); all ranks
        metrics = self.task.evaluate(self.engine) if self.is_main else None
        self.engine.train()  # whatever evaluate() switched: trainable modules train, frozen stay eval
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

        value = metrics[name]
        if self.best is None or better(name, value, self.best["value"]):
            self.best = {"metric": name, "value": value, "step": self.step, "metrics": dict(metrics)}
            self.bad_evals = 0
            if self.is_main:
                self._write(self.out / "best", None, {"eval_results.json": json.dumps(self.best, indent=2) + "\n"})
        else:
            self.bad_evals += 1
            patience = self.cfg.train.patience
            if patience and self.bad_evals >= patience:
                self._early_stop = True
                self.print(f"early stopping: {name} has not improved for {self.bad_evals} evaluations "
                           f"(best {self.best['value']:.4g} at step {self.best['step']})")

    # ------------------------------------------------------------------ checkpoints
    def _write(self, directory: Path, state: dict | None, extra_files: dict | None = None) -> None:
        """The saved modules as HF directories; with a state (a checkpoint) also the other
        trainable modules (modules.safetensors) and trainer_state.pt."""
        modules = self.engine.modules
        extra_files = {**getattr(self.task, "extra_files", dict)(), **(extra_files or {})}  # the task's own files (Task.extra_files)
        checkpoint.write_checkpoint(directory, {sub: modules[name] for name, sub in self.saved.items()}, state,
                                    self.tokenizer, extra_files, others=self.others if state is not None else None)

    def state_dict(self) -> dict:
        epoch, step = self._consumed if self._consumed is not None else (self.sampler.epoch, self.sampler.step - 1)
        return {
            "version": STATE_VERSION,
            "step": self.step,
            "tokens": self.tokens + self.window.tokens * self.dist.world_size,
            "examples": self.examples,
            "elapsed": self._clock_local(),
            **self.engine.state_dict(),  # optimizer, scaler, skipped_steps, rng (a collective)
            "schedule": self.schedule.state_dict(),
            "sampler": consumed_state(epoch, step, self.sampler),
            "evals": self.evals,
            "best": self.best,
            "bad_evals": self.bad_evals,
            "world_size": self.dist.world_size,
            "task": self.task.name,
            "modules": {name: self.saved.get(name) for name in self.engine.modules},
            "config": config_to_dict(self.cfg),
        }

    def _save(self) -> None:
        self._check_finite()
        if self.cfg.train.keep_last == 0:  # no resume checkpoints: best/ and final/ only
            return
        self.engine.sync_full()  # fsdp: the weights the checkpoint writes (a collective)
        state = self.state_dict()  # a collective (RNG states of every rank)
        if self.is_main:
            t = self.clock()
            self._write(checkpoint.step_dir(self.out, self.step), state)
            checkpoint.prune(self.out, self.cfg.train.keep_last)
            self._save_seconds = self.clock() - t
        self._save_seconds = self.dist.broadcast(self._save_seconds) if self.plan.budget else self._save_seconds

    def _load(self, directory: Path) -> None:
        state = checkpoint.read_state(directory)
        version = state.get("version")
        if version != STATE_VERSION:
            raise UserError(
                f"{directory}: trainer state version {version}, this berts resumes version {STATE_VERSION} only "
                f"(version 2 keeps the optimizer state of every trainable module of a task; version 1 held one "
                f"model's): --resume cannot continue it, but its weights load: --init-from {directory} starts "
                f"a new run from them")
        names = {name: self.saved.get(name) for name in self.engine.modules}
        if state.get("modules") != names:
            raise UserError(f"{directory}: the checkpoint's modules {state.get('modules')} are not this task's {names}")
        for name, sub in self.saved.items():
            checkpoint.load_weights(self.engine.modules[name], directory / sub if sub else directory)
        if self.others:
            checkpoint.load_modules(self.others, directory)
        self.engine.load_state_dict(state, str(directory))
        self.schedule.load_state_dict(state["schedule"])
        sampler = dict(state["sampler"])
        saved_train = (state.get("config") or {}).get("train") or {}
        if "width" not in sampler and saved_train.get("batch_size") and saved_train.get("grad_accum"):
            sampler["width"] = saved_train["batch_size"] // saved_train["grad_accum"]  # written before "width"
        try:  # another world size or grad_accum: the same example of the epoch, or one line why not
            self.sampler.load_state_dict(sampler)
        except ValueError as exc:
            raise UserError(f"{directory}: cannot resume at the same data position: {exc}") from None
        self.step = int(state["step"])
        self.tokens = int(state["tokens"])
        self.examples = int(state["examples"])
        self.elapsed = float(state["elapsed"])
        self.evals = list(state.get("evals", []))
        self.best = state.get("best")
        self.bad_evals = int(state.get("bad_evals", 0))
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

    # ------------------------------------------------------------------ the start and the end
    def _announce(self) -> None:
        d, e = self.dist, self.engine

        def count(m):
            return m.num_parameters() if hasattr(m, "num_parameters") else sum(p.numel() for p in m.parameters())

        what = f"{type(self.model).__name__} ({count(self.model) / 1e6:.2f}M parameters)"
        rest = [f"{n} {type(m).__name__}" for n, m in list(e.modules.items())[1:]]
        rest += [f"{n} {type(m).__name__} (frozen)" for n, m in e.frozen.items()]
        if rest:
            what += " + " + ", ".join(rest)
        procs = (f"{d.world_size} processes ({'FSDP2' if self.engine.sharded is not None else 'DDP'})"
                 if d.enabled else "1 process")
        self.print(f"{self.title}: {what} on {self.device}, {e.precision}, {procs}")
        for line in self.resolved():
            self.print("  " + line)
        if self.resumed_from is not None:
            rng = "random states, " if self._rng_state is not None else ""
            self.print(f"resumed from {self.resumed_from} at step {self.step} "
                       f"(optimizer, schedule, {rng}data position restored)")
            for change in self._config_changes:
                self.print(f"  note: config changed since the checkpoint: {change}")

    def resolved(self) -> list[str]:
        """The resolved values that shape the run, as the start line prints them."""
        o, sch, t, plan = self.cfg.optim, self.cfg.schedule, self.cfg.train, self.plan
        clip = f"grad clip {o.grad_clip:g} (grad_norm is logged before clipping)" if o.grad_clip else "no grad clip"
        lr = f"lr {self.engine.lr:g}" + (f" ({self.engine.lr_note})" if self.engine.lr_note else "")
        lines = [f"optimizer {o.name}: {lr}, betas ({o.betas[0]:g}, {o.betas[1]:g}), eps {o.eps:g}, "
                 f"weight decay {o.weight_decay:g} (not on biases and LayerNorm), {clip}"]
        if plan.warmup_steps is not None:
            warm = f"warm-up {plan.warmup_steps:.4g} steps ({plan.warmup:.4g} of the run)"
        else:
            warm = f"warm-up {plan.warmup:.4g} of the budget"
        after = {"linear": f"then linear decay to {sch.min_lr:g} x lr", "constant": "then constant",
                 "one_cycle": f"(from lr/25), then cosine down to {sch.min_lr or 4e-6:g} x lr",
                 "wsd_linear": f"stable, then the last {sch.decay:g} of the run linear down to {sch.min_lr:g} x lr",
                 "wsd_sqrt": f"stable, then the last {sch.decay:g} of the run 1-sqrt down to {sch.min_lr:g} x lr",
                 }.get(sch.name, "")
        lines.append(f"schedule {sch.name}: {warm}, {after}")
        lines.append(f"batch {t.batch_size} = {self.dist.world_size} process(es) x {self.per_rank_batch} x "
                     f"accum {self.accum}; {plan.describe()}; seed {t.seed}")
        if plan.batch_warmup:
            lines.append(f"batch warm-up: 1 to {self.accum} micro-batches of {self.per_rank_batch * self.dist.world_size} "
                         f"over the first {plan.batch_warmup:.4g} of the run")
        config = getattr(self.model, "config", None)
        if config is not None and hasattr(config, "hidden_dropout_prob"):
            drop = f"dropout hidden {config.hidden_dropout_prob:g}, attention {config.attention_probs_dropout_prob:g}"
            if getattr(self.model, "classifier", None) is not None and hasattr(self.model.classifier, "dropout"):
                drop += f", classifier {self.model.classifier.dropout.p:g}"
            lines.append(drop)
        task = self.task.describe()
        if task:
            lines.append(task)
        if t.keep_last == 0:
            lines.append("train.keep_last 0: no resume checkpoints (only final/ and best/)")
        return lines

    def _finish(self, stopped: str) -> None:
        d = self.dist
        self.result = {"step": self.step, "tokens": self.tokens, "elapsed": self.elapsed, "best": self.best,
                       "stopped": stopped, "evals": self.evals, "out": str(self.out)}
        self.engine.sync_full()  # fsdp: final/'s weights (a collective)
        if not d.is_main:
            d.barrier()
            return
        final = self.out / "final"
        self._write(final, None, {"train_result.json": json.dumps(
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
        parts, metrics = tuple(self.task.loss_parts), tuple(self.task.metric_parts)
        if self.cfg.log.plots:
            written = plot(self.out, parts, metrics, metric=self.task.metric, best=self.best)
            if written:
                paths["plots"] = ", ".join(str(p) for p in written)
        text = summary(self.title, steps=self.step, tokens=self.tokens, elapsed=self.elapsed,
                       records=read_metrics(self.out), best=self.best, paths=paths, stopped=stopped,
                       shown=parts + metrics, disk=disk_usage(self.out))
        self.result["summary"] = text
        print(text, flush=True)
        d.barrier()
