"""The run plan: how long a run is (steps, epochs or a wall-clock budget), where its warm-up ends
and when it evaluates; and BudgetPlan, one budget shared out over the runs of a longer job (the
demo's stages). Value objects: no device, no clock of its own; the loop asks them.

    plan = RunPlan.from_config(cfg.train, cfg.schedule, steps_per_epoch=len(sampler) / accum)
    plan.progress(step, elapsed)        # in [0, 1]: what the schedule follows
    plan.micro_batches(progress)        # micro-batches in this step (batch-size warm-up), else accum
    plan.stop_reason(step, elapsed, next_step_seconds=..., early_stop=...)   # None: go on
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from berts.config.validate import parse_duration
from berts.errors import UserError
from berts.train.monitor import duration


@dataclass(frozen=True)
class RunPlan:
    max_steps: int | None  # None: the budget alone ends the run
    budget: float | None  # seconds of wall clock, or None
    steps_per_epoch: float  # optimizer steps per pass over the training set
    warmup: float  # a fraction of the run, in [0, 1)
    eval_every: int | None  # steps; None: at the end only
    ends_by: str = ""  # what sets the length: "train.max_steps", "train.epochs" or "train.budget" (and the nearer)
    ignored: str | None = None  # a length setting that does not end the run (train.epochs under train.max_steps)
    accum: int = 1  # micro-batches per optimizer step once the batch warm-up is over (train.grad_accum)
    batch_warmup: float = 0.0  # the batch-size warm-up, a fraction of the run in [0, 1); 0: off

    @classmethod
    def from_config(cls, train, schedule, *, steps_per_epoch: float) -> RunPlan:
        """From a TrainSection and a ScheduleSection (see config.py)."""
        budget = parse_duration(train.budget) if train.budget else None
        ignored = None
        if train.max_steps is not None:
            max_steps, ends_by = train.max_steps, "train.max_steps"
            if train.epochs is not None:
                ignored = f"train.epochs {train.epochs:g}"
        elif train.epochs is not None:
            max_steps, ends_by = max(1, math.ceil(train.epochs * steps_per_epoch)), "train.epochs"
        else:
            max_steps, ends_by = None, "train.budget"
        if budget is not None and max_steps is not None:
            ends_by += " or train.budget, whichever comes first"
        # warm-up in steps (>= 1) becomes a fraction; config.validate made sure steps are known then
        warmup = schedule.warmup if schedule.warmup < 1 else schedule.warmup / max_steps
        if warmup >= 1:
            raise UserError(f"schedule.warmup {schedule.warmup:g} steps is not less than the {max_steps} steps "
                            "of the run")
        batch_warmup = getattr(train, "batch_warmup", 0.0)
        if batch_warmup >= 1:
            batch_warmup /= max_steps
        if batch_warmup >= 1:
            raise UserError(f"train.batch_warmup {train.batch_warmup:g} steps is not less than the {max_steps} "
                            "steps of the run")
        if train.eval_every is not None:
            eval_every = train.eval_every
        elif train.epochs is not None:
            eval_every = max(1, round(steps_per_epoch))  # each epoch
        else:
            eval_every = None
        return cls(max_steps=max_steps, budget=budget, steps_per_epoch=steps_per_epoch, warmup=warmup,
                   eval_every=eval_every, ends_by=ends_by, ignored=ignored, accum=train.grad_accum,
                   batch_warmup=batch_warmup)

    def progress(self, step: int, elapsed: float) -> float:
        """How far the run is, in [0, 1]: by steps, by the clock (budget), or the further of the two."""
        by_steps = step / self.max_steps if self.max_steps else 0.0
        by_clock = elapsed / self.budget if self.budget else 0.0
        return max(by_steps, by_clock)

    def micro_batches(self, progress: float) -> int:
        """Micro-batches in the step at ``progress``: the batch-size warm-up (ModernBERT, arXiv
        2412.13663, section 2.2.1: the batch grows over the first part of training, small batches
        being enough early on). The step's batch is k x (train.batch_size / train.grad_accum) with

            k = min(accum, max(1, ceil(accum x progress / batch_warmup)))

        so it grows linearly from one micro-batch to the full batch by ``batch_warmup``. The
        learning-rate schedule and max_steps still count optimizer steps (a warm-up step is a
        smaller step, not a fraction of one); tokens are counted as trained on (the log's
        ``tokens``), so the warm-up's steps hold fewer tokens; epochs are estimated at the full
        batch (a warmed-up run passes over the data a little later than its ``epoch`` says).
        The micro-batch size never changes: memory and the compiled shapes are the full run's."""
        if self.batch_warmup <= 0 or progress >= self.batch_warmup:
            return self.accum
        return min(self.accum, max(1, math.ceil(self.accum * progress / self.batch_warmup)))

    def stop_reason(self, step: int, elapsed: float, *, next_step_seconds: float = 0.0,
                    save_seconds: float = 0.0, early_stop: bool = False) -> str | None:
        """Why the run stops before the next step, or None. In budget mode the run stops when the
        next step (as long as the last one) and the final checkpoint (as long as the last one)
        would not fit, so that it ends on time with its checkpoint written."""
        if self.max_steps is not None and step >= self.max_steps:
            return "finished"
        if self.budget is not None and elapsed + next_step_seconds + save_seconds >= self.budget:
            return "budget spent"
        if early_stop:
            return "stopped early"
        return None

    def evaluates_at(self, step: int) -> bool:
        return bool(self.eval_every) and step % self.eval_every == 0

    @property
    def warmup_steps(self) -> float | None:
        """The warm-up in optimizer steps (None in budget-only mode: it is a fraction of the clock).
        A fraction of the run is not always a whole number of steps (0.1 of 24 steps: 2.4)."""
        return self.warmup * self.max_steps if self.max_steps is not None else None

    def describe(self) -> str:
        """The length of the run and what sets it, e.g. ``5 steps (0.31 epochs), ended by
        train.max_steps (train.epochs 3 does not end it)``."""

        parts = []
        if self.max_steps is not None:
            parts.append(f"{self.max_steps:,} steps ({self.max_steps / self.steps_per_epoch:.2f} epochs)")
        if self.budget is not None:
            parts.append(f"budget {duration(self.budget)}")
        text = " or ".join(parts) + (f", ended by {self.ends_by}" if self.ends_by else "")
        if self.ignored:
            text += f" ({self.ignored} does not end it)"
        return text


@dataclass
class BudgetPlan:
    """One wall-clock budget shared out over the stages of a job of several runs (`berts demo`):
    each training stage gets its weight's share of what is left once the remaining fixed steps'
    expected times are set aside, so a stage that runs long is paid for by the later ones and the
    job ends near its budget. The seconds a stage gets become its run's ``train.budget`` (that
    run's RunPlan.budget). Like RunPlan it has no clock: the caller says how long the job has run.

        plan = BudgetPlan(1200, {"pretrain": 3, "finetune": 1}, {"prepare": 20})
        plan.done("prepare")                     # a fixed step is over: its estimate is no longer set aside
        seconds = plan.start("pretrain", elapsed)   # its share of what is left; plan.deadlines["pretrain"]
    """
    total: float  # seconds for the whole job
    weights: dict[str, float]  # training stage -> its share (of what the fixed steps leave)
    fixed: dict[str, float]  # fixed step -> the seconds it is expected to take
    floor: float = 8.0  # no stage gets less (a run needs a few steps to write a checkpoint)
    deadlines: dict[str, float] = field(default_factory=dict)  # stage -> when it should end (seconds of the job)

    def __post_init__(self):
        self.weights, self.fixed = dict(self.weights), dict(self.fixed)  # spent as the job goes: not the caller's

    def left(self, elapsed: float) -> float:
        """Seconds left for the training stages: the budget, less what is spent and the fixed steps to come."""
        return self.total - elapsed - sum(self.fixed.values())

    def start(self, stage: str, elapsed: float) -> float:
        """The seconds ``stage`` gets now (at least ``floor``): weight / (its weight + the weights of
        the stages still to come) of what is left. The stage is then spent; its deadline recorded."""
        if stage not in self.weights:
            raise KeyError(f"{stage}: not a budgeted stage, or started already (stages: {', '.join(self.weights)})")
        w = self.weights.pop(stage)
        seconds = max(self.floor, self.left(elapsed) * w / (w + sum(self.weights.values())))
        self.deadlines[stage] = elapsed + seconds
        return seconds

    def done(self, step: str) -> None:
        """A fixed step is over: what it takes is in ``elapsed`` from now on."""
        self.fixed.pop(step, None)
