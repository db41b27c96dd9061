"""What both halves of the demo share: Steps (runs `berts` commands in this process, logs each
with its command line and time, and prints one progress line per stage with the budget left),
the early-exit speed chosen on dev, the majority-class rate of a split. Light on purpose: `berts
demo --help` reads berts.demo.run, which imports this module (no torch, no numpy here)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import time
from collections import Counter
from pathlib import Path

from berts.cli import main as berts_main
from berts.errors import UserError


def clock(seconds: float) -> str:
    """5m12s: the progress lines' minutes and seconds."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Steps:
    """Runs `berts` commands in this process, logs each with its time and exit status. The log
    shows paths as a user would type them inside the output directory: relative to it, and
    the registry cache (``cache``) as $BERTS_CACHE.

    ``stage(name)`` prints the progress line of a stage as it starts,
    ``[stage 3/9] en.teacher  (elapsed 5m12s, left 14m48s)``: ``stages`` is the job's planned
    stage count, ``budget`` its wall clock in seconds."""

    def __init__(self, out: Path, cache: Path | None = None, budget: float | None = None, stages: int = 0):
        self.out = Path(out).resolve()
        self.cache = Path(cache).resolve() if cache is not None else None
        self.budget, self.stages = budget, stages
        self.log: list[dict] = []
        self.started: list[dict] = []  # {"stage", "elapsed_s"}: when each stage began (the report's timeline)
        self.start = time.perf_counter()  # the job's clock (BudgetPlan has none); reset after the downloads

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def stage(self, name: str) -> str:
        """The progress line of a stage that starts now (printed and returned)."""
        elapsed = self.elapsed()
        self.started.append({"stage": name, "elapsed_s": round(elapsed, 1)})
        n = len(self.started)
        total = max(self.stages, n)
        left = f", left {clock(self.budget - elapsed)}" if self.budget is not None and elapsed <= self.budget else \
            f", over budget by {clock(elapsed - self.budget)}" if self.budget is not None else ""
        line = f"[stage {n}/{total}] {name}  (elapsed {clock(elapsed)}{left})"
        print(f"\n{line}", flush=True)
        return line

    def show(self, arg) -> str:
        text = str(arg)
        key, eq, value = text.partition("=") if text.startswith(("model.", "data.", "train.", "log.")) else ("", "", text)
        if value.startswith("/") or isinstance(arg, Path):
            path = Path(value).resolve()
            if self.cache is not None and path.is_relative_to(self.cache):
                value = "$BERTS_CACHE/" + path.relative_to(self.cache).as_posix()
            else:
                value = Path(os.path.relpath(path, self.out)).as_posix()
        return key + eq + value

    def command(self, argv) -> str:
        return "berts " + " ".join(a if a.startswith("$BERTS_CACHE") else shlex.quote(a)
                                   for a in map(self.show, argv))

    def run(self, lang: str, name: str, argv: list[str], capture: bool = False, capture_err: bool = False) -> str:
        """Run ``berts ARGV``; with ``capture`` its stdout is returned (and still printed), with
        ``capture_err`` its stderr is added after it (the lines a command reports its speed on)."""
        command = self.command(argv)
        print(f"\n=== [{lang}] {name}\n$ {command}", flush=True)
        start = time.perf_counter()
        buffer, err = io.StringIO(), io.StringIO()
        with contextlib.ExitStack() as stack:
            if capture:
                stack.enter_context(contextlib.redirect_stdout(buffer))
            if capture_err:
                stack.enter_context(contextlib.redirect_stderr(err))
            code = berts_main([str(a) for a in argv])
        seconds = time.perf_counter() - start
        if capture:
            print(buffer.getvalue(), end="")
        if capture_err:
            print(err.getvalue(), end="")
        self.log.append({"lang": lang, "step": name, "command": command, "seconds": round(seconds, 1), "exit": code})
        if code != 0:
            raise UserError(f"demo step '{name}' failed (exit {code}): {command}")
        return buffer.getvalue() + err.getvalue()

    def python(self, lang: str, name: str, code: str, seconds: float) -> None:
        """A step done in Python (no command of its own), logged with a line that redoes it."""
        self.log.append({"lang": lang, "step": name, "command": f'python -c "{code}"', "seconds": round(seconds, 1),
                         "exit": 0})

    def json(self, lang: str, name: str, argv: list[str]) -> dict:
        return json.loads(self.run(lang, name, argv, capture=True).strip().splitlines()[-1])


def majority_rate(table: Path) -> float:
    """The share of the most frequent label of a demo TSV (header text<TAB>label): what a model that
    always answers one class scores at best (report.degenerate)."""
    labels = [line.rsplit("\t", 1)[-1] for line in table.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return max(Counter(labels).values()) / len(labels) if labels else 0.0


def choose_exit_speed(steps: Steps, lang: str, model_dir: Path, dev: Path, speeds: str) -> dict:
    """Early exit's speed, chosen on the DEV split (the test split is then scored once, at this speed,
    by compare): the fewest average layers within 1 point of the model run to the end on dev; if no
    speed is within, the most accurate. Choosing on test would report a test score that was tuned."""
    rows = steps.json(lang, "early exit: the speeds on the dev split (the speed is chosen here)", [
        "evaluate", model_dir, dev, "--sweep", "--speeds", speeds, "--patiences", "", "--latency-examples", "0",
        "--json"])  # the entropy rule only, no timing: the choice reads accuracy and layers; compare times it on test
    return pick_exit_speed(rows)


def pick_exit_speed(rows: list[dict]) -> dict:
    """``choose_exit_speed``'s rule on ``evaluate --sweep --json`` rows (of the dev split)."""
    full = next(r for r in rows if r["rule"] == "full")
    cands = [r for r in rows if r["rule"] == "entropy"]
    within = [r for r in cands if full["accuracy"] - r["accuracy"] <= 0.01]
    pick = (min(within, key=lambda r: (r["avg_layers"], -r["accuracy"])) if within
            else max(cands, key=lambda r: (r["accuracy"], -r["avg_layers"])))
    return {"speed": pick["value"], "dev_accuracy": pick["accuracy"], "dev_full_accuracy": full["accuracy"],
            "dev_avg_layers": pick["avg_layers"], "split": "dev"}


def head(src: Path, dst: Path, rows: int | None, header: bool = True) -> Path:
    """The first ``rows`` data rows of a table (or paragraphs of a corpus: header=False)."""
    if rows is None:
        return src
    lines = src.read_text(encoding="utf-8").splitlines()
    keep = lines[:rows + 1] if header else lines[:rows]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(keep) + "\n", encoding="utf-8")
    return dst


def cap(s, stage: str) -> list:
    """``--max-steps N`` where the settings cap ``stage`` (DemoSettings.steps), else nothing."""
    return ["--max-steps", s.steps[stage]] if stage in s.steps else []


def quiet() -> list:
    """Progress as lines, not a bar: the demo's output is read as a log."""
    return ["--set", "log.progress=lines"]


class AnnouncedPlan:
    """The job's BudgetPlan (berts.train.plan) whose budgeted stages print their progress line
    (Steps.stage) as they start: a half need not announce the stages that take a share."""

    def __init__(self, plan, steps: Steps):
        self.plan, self.steps = plan, steps

    def start(self, stage: str, elapsed: float) -> float:
        self.steps.stage(stage)
        return self.plan.start(stage, elapsed)

    def done(self, step: str) -> None:
        self.plan.done(step)

    @property
    def deadlines(self) -> dict[str, float]:
        return self.plan.deadlines
