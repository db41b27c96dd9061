"""What people see: a progress bar (or log lines), ``metrics.jsonl``, TensorBoard events, PNG plots
and a one-screen summary. Only rank 0 makes a Monitor that writes; the others get a silent one."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3g}"
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Monitor:
    def __init__(self, out: Path | None, *, enabled: bool = True, progress: str = "auto",
                 tensorboard: bool = True, total_steps: int | None = None, budget: float | None = None,
                 start_step: int = 0, start_elapsed: float = 0.0, desc: str = "train"):
        self.enabled = enabled and out is not None
        self.out = Path(out) if out is not None else None
        self.writer = None
        self.bar = None
        self.budget = budget
        if not self.enabled:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        self._truncate(start_step)
        self.file = open(self.out / METRICS_FILE, "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out / "tb"), purge_step=start_step + 1 if start_step else None)
            except ImportError:  # tensorboard not installed: the JSONL log is enough
                self.writer = None
        if progress == "auto":
            progress = "bar" if sys.stderr.isatty() else "lines"
        self.mode = progress
        if progress == "bar":
            from tqdm.auto import tqdm

            if budget is not None:
                self.bar = tqdm(total=round(budget), initial=min(round(start_elapsed), round(budget)),
                                desc=desc, unit="s", dynamic_ncols=True,
                                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}s [{elapsed}<{remaining}{postfix}]")
            else:
                self.bar = tqdm(total=total_steps, initial=start_step, desc=desc, unit="step", dynamic_ncols=True)

    def _truncate(self, step: int) -> None:
        """A resumed run rewrites history after its checkpoint: drop records past ``step``."""
        path = self.out / METRICS_FILE
        if not path.exists():
            return
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if rec.get("step", 0) <= step:
                keep.append(line)
        path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")

    # ------------------------------------------------------------------ events
    def log(self, record: dict, kind: str = "train") -> None:
        record = {"kind": kind, **record, "time": round(time.time(), 3)}
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        step = record.get("step", 0)
        if self.writer is not None:
            for k, v in record.items():
                if k not in ("kind", "step", "time") and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.writer.add_scalar(f"{kind}/{k}", v, step)
        if kind == "train":
            shown = {"loss": record.get("loss")}
            if "tokens_per_s" in record:
                shown["tok/s"] = f"{record['tokens_per_s']:,.0f}"
            if "lr" in record:
                shown["lr"] = f"{record['lr']:.2e}"
            if self.bar is not None:
                self.bar.set_postfix({k: _fmt(v) for k, v in shown.items() if v is not None}, refresh=False)
            elif self.mode == "lines":
                self.message(f"step {step}: " + "  ".join(
                    f"{k} {_fmt(v)}" for k, v in record.items()
                    if k not in ("kind", "step", "time") and v is not None))
        elif kind == "eval" and self.mode != "none":
            self.message(f"eval at step {step}: " + "  ".join(
                f"{k} {_fmt(v)}" for k, v in record.items() if k not in ("kind", "step", "time")))

    def advance(self, step: int, elapsed: float) -> None:
        if self.bar is not None:  # tqdm limits how often it redraws
            target = min(elapsed, self.budget) if self.budget is not None else step
            self.bar.update(target - self.bar.n)

    def message(self, text: str) -> None:
        """A line for people (stderr), above the bar if there is one; ``progress: none`` keeps these."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.file.close()


# ----------------------------------------------------------------------------- plots
def read_metrics(out: str | Path) -> list[dict]:
    path = Path(out) / METRICS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot(out: str | Path) -> list[Path]:
    """loss.png (and its parts), lr.png, eval.png from metrics.jsonl into OUT/plots/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    records = read_metrics(out)
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    (out / "plots").mkdir(parents=True, exist_ok=True)
    written = []

    def series(rows, key):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))
               and math.isfinite(r[key])]
        return [p[0] for p in pts], [p[1] for p in pts]

    def figure(name, rows, keys, ylabel, logy=False):
        keys = [k for k in keys if series(rows, k)[0]]
        if not keys:
            return
        fig, ax = plt.subplots(figsize=(7, 4))
        for k in keys:
            x, y = series(rows, k)
            ax.plot(x, y, label=k, marker="o" if len(x) < 30 else None)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend()
        fig.tight_layout()
        path = out / "plots" / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    loss_keys = ["loss"] + sorted({k for r in train for k in r
                                   if k in ("mlm", "nsp", "sbo", "task", "distill") or k.endswith("_loss")})
    figure("loss", train, loss_keys, "loss")
    figure("lr", train, ["lr"], "learning rate")
    figure("accuracy", train, sorted({k for r in train for k in r if k.endswith("_acc")}), "accuracy")
    eval_keys = sorted({k for r in evals for k, v in r.items()
                        if k not in ("kind", "step", "time", "epoch") and isinstance(v, (int, float))})
    figure("eval", evals, eval_keys, "eval metric")
    return written


# ----------------------------------------------------------------------------- summary
def summary(title: str, *, steps: int, tokens: int, elapsed: float, records: list[dict],
            best: dict | None, paths: dict[str, str], stopped: str) -> str:
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    lines = [f"{title}: {stopped} after {steps:,} steps in {duration(elapsed)}"
             f" ({tokens:,} tokens, {tokens / max(elapsed, 1e-9):,.0f} tokens/s)"]
    if train:
        first, last = train[0], train[-1]
        parts = "  ".join(f"{k} {_fmt(last[k])}" for k in last
                          if k in ("mlm", "nsp", "sbo", "task") or k.endswith("_acc"))
        lines.append(f"  loss {_fmt(first.get('loss'))} -> {_fmt(last.get('loss'))}" + (f"   ({parts})" if parts else ""))
        if "skipped_steps" in last:
            lines.append(f"  fp16: loss scale {_fmt(last.get('loss_scale'))}, {last['skipped_steps']} skipped steps")
    if evals:
        last = evals[-1]
        lines.append("  last eval: " + "  ".join(f"{k} {_fmt(v)}" for k, v in last.items()
                                                  if k not in ("kind", "time")))
    if best:
        lines.append(f"  best {best['metric']} {_fmt(best['value'])} at step {best['step']}")
    for name, path in paths.items():
        lines.append(f"  {name + ':':<12} {path}")
    return "\n".join(lines)
