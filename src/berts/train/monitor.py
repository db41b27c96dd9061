"""What people see: a progress bar (or log lines), ``metrics.jsonl``, TensorBoard events, PNG plots
and a one-screen summary; and the log window behind each train record. Only rank 0 makes a
Monitor that writes; the others get a silent one.

Part and metric names are the task's (``task.loss_parts``, ``task.metric_parts``, which come from
the model's objectives): nothing here knows "mlm" or "nsp".

A train record (``metrics.jsonl``, kind "train") holds the window's means of ``loss`` and each
loss part and metric, ``lr`` (at the record's step), ``grad_norm`` (the global gradient norm of the
record's last step *before* clipping to ``optim.grad_clip``: what the clip compares, so values above
the clip mean the step was clipped), with fp16 ``loss_scale`` and ``skipped_steps``, and throughput.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
from berts.metrics import higher_is_better

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
        self.budget, self.total_steps, self.desc = budget, total_steps, desc
        self._start = (start_step, start_elapsed)  # the rate is measured from here (a resumed run: its own)
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

    def expected_steps(self, step: int, elapsed: float) -> int | None:
        """A budget-limited run's steps at its end, at the rate so far (None before there is one);
        never past train.max_steps when that is set too."""
        s0, t0 = self._start
        if self.budget is None or step <= s0 or elapsed <= t0:
            return None
        guess = step + (step - s0) / (elapsed - t0) * max(self.budget - elapsed, 0.0)
        return int(min(guess, self.total_steps)) if self.total_steps else int(guess)

    def advance(self, step: int, elapsed: float) -> None:
        if self.bar is not None:  # tqdm limits how often it redraws
            target = min(elapsed, self.budget) if self.budget is not None else step
            if self.budget is not None:  # the bar counts seconds: say the steps too, done / expected
                expected = self.expected_steps(step, elapsed)
                self.bar.set_description(f"{self.desc} step {step:,}" + (f"/~{expected:,}" if expected else ""),
                                         refresh=False)
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


# ----------------------------------------------------------------------------- the log window
class LogWindow:
    """What happened between two log steps, summed on the device (no host sync per step), and
    the train record it becomes at a log step: one all-reduced vector, one host sync.

    Each micro-batch adds its total loss (its share of the step's loss), its loss parts and its
    metrics. A part, and a metric that averages like a part (``metric_parts``: ``mlm_acc`` ->
    ``mlm``), is weighted by the micro-batch's weight for that part, so the logged value is the
    mean over the items of the global batch, exactly as the loss is; any other metric is a plain
    mean over micro-batches and ranks.
    """

    def __init__(self, device, metric_parts: dict[str, str] | None = None):
        self.device = device
        self.metric_parts = dict(metric_parts or {})
        self.reset()

    def reset(self) -> None:
        self.loss = torch.zeros((), device=self.device)
        self.values: dict[str, tuple] = {}  # name -> (sum, count)
        self.tokens = 0
        self.steps = 0
        self.t0 = time.perf_counter()

    def _part(self, key: str, weights: dict) -> str | None:
        """The loss part ``key`` averages like: the task's mapping, the only part, or the part of
        that name or prefix; None: a plain mean."""
        part = self.metric_parts.get(key)
        if part in weights:
            return part
        if len(weights) == 1:
            return next(iter(weights))
        if key in weights:
            return key
        for part in weights:
            if key.startswith(part + "_"):
                return part
        return None

    def add(self, total, parts: dict, metrics: dict, weights: dict, *, last: bool) -> None:
        """One micro-batch (``last``: the step's last one)."""
        self.loss += total
        for k, v in {**parts, **(metrics or {})}.items():
            v = v.detach().float() if isinstance(v, torch.Tensor) else float(v)
            part = k if k in parts else self._part(k, weights)
            s, n = self.values.get(k, (0.0, 0))
            if part is None:  # a plain mean over micro-batches
                self.values[k] = (s + v, n + 1)
            elif isinstance(weights[part], float) and weights[part] == 0.0:  # no items here: NaN x 0
                self.values[k] = (s, n + (1 if last else 0))
            else:  # weighted like its loss part: exact over the global batch, as the loss is
                self.values[k] = (s + v * weights[part], n + (1 if last else 0))

    def end_step(self, tokens: int) -> None:
        self.tokens += tokens
        self.steps += 1

    def record(self, dist, extras: dict[str, torch.Tensor] | None = None) -> tuple[dict, int, float]:
        """(means of the window, all-reduced over ranks, with ``extras`` (device scalars, e.g.
        grad_norm), the window's tokens over all ranks, its seconds). The one host sync."""
        keys = sorted(self.values)
        extras = extras or {}
        values = [self.loss / max(self.steps, 1)]
        values += [torch.as_tensor(s / max(n, 1), device=self.device).float() for s, n in
                   (self.values[k] for k in keys)]
        values += [extras[k].float() for k in extras]
        vec = torch.stack([v.reshape(()).to(self.device).double() for v in values])
        vec = torch.cat([vec, torch.tensor([float(self.tokens)], dtype=torch.float64, device=self.device)])
        if dist.enabled:
            vec = vec.to(dist.collective_device)
            dist.all_reduce(vec)
            vec[:-1] /= dist.world_size
        vals = vec.tolist()
        seconds = max(time.perf_counter() - self.t0, 1e-9)
        out = {"loss": vals[0], **{k: vals[1 + i] for i, k in enumerate(keys)}}
        out.update({k: vals[1 + len(keys) + i] for i, k in enumerate(extras)})
        return out, int(vals[-1]), seconds


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


def _is_loss(name: str) -> bool:

    return not higher_is_better(name)


def eval_series(records: list[dict], metric: str | None = None) -> dict:
    """What plots/eval.png draws, from metrics.jsonl records: ``{"metric": {name: (steps, values)},
    "loss": {name: (steps, values)}}``. The metric panel holds the chosen metric (``train.metric``)
    alone, or, with none chosen (pretraining) or the loss chosen, every evaluation metric that is not
    a loss; the loss panel holds the train loss and every evaluation loss (``loss`` as "dev loss",
    ``mlm_loss`` as "dev mlm_loss")."""
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]

    def series(rows, key):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))
               and not isinstance(r.get(key), bool) and math.isfinite(r[key])]
        return [p[0] for p in pts], [p[1] for p in pts]

    keys = sorted({k for r in evals for k, v in r.items()
                   if k not in ("kind", "step", "time", "epoch") and isinstance(v, (int, float))})
    if metric and not _is_loss(metric):
        chosen = [metric]
    else:
        chosen = [k for k in keys if not _is_loss(k)]
    out = {"metric": {}, "loss": {}}
    for k in chosen:
        if series(evals, k)[0]:
            out["metric"][k] = series(evals, k)
    if series(train, "loss")[0]:
        out["loss"]["train loss"] = series(train, "loss")
    for k in keys:
        if _is_loss(k) and series(evals, k)[0]:
            out["loss"]["dev loss" if k == "loss" else f"dev {k}"] = series(evals, k)
    return out


def plot(out: str | Path, loss_parts=(), metrics=(), *, metric: str | None = None,
         best: dict | None = None) -> list[Path]:
    """From metrics.jsonl into OUT/plots/: loss.png (the train loss with the task's ``loss_parts``),
    lr.png, accuracy.png (train ``metrics``, e.g. the accuracies) and eval.png: two panels on their
    own axes, the chosen ``metric`` against steps (the best checkpoint, ``best``, marked) above the
    train and dev losses together (see eval_series)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    records = read_metrics(out)
    train = [r for r in records if r.get("kind") == "train"]
    (out / "plots").mkdir(parents=True, exist_ok=True)
    written = []

    def series(rows, key):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))
               and math.isfinite(r[key])]
        return [p[0] for p in pts], [p[1] for p in pts]

    def save(fig, name):
        fig.tight_layout()
        path = out / "plots" / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

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
        save(fig, name)

    figure("loss", train, ["loss", *loss_parts], "loss")
    figure("lr", train, ["lr"], "learning rate")
    figure("accuracy", train, list(metrics), "train metric")
    fig = eval_figure(eval_series(records, metric), best)
    if fig is not None:
        save(fig, "eval")
    return written


def eval_figure(data: dict, best: dict | None = None):
    """The eval.png figure (matplotlib) of ``eval_series``' data: the metric panel (if any) above
    the loss panel (if any), each on its own y axis, the best step marked on both. None: no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(k, v) for k, v in (("metric", data["metric"]), ("loss", data["loss"])) if v]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 3.2 * len(panels)), sharex=True, squeeze=False)
    best_step = best.get("step") if best else None
    for ax, (kind, lines) in zip(axes[:, 0], panels):
        for name, (x, y) in lines.items():
            ax.plot(x, y, label=f"dev {name}" if kind == "metric" else name, marker="o" if len(x) < 30 else None)
        if kind == "metric":
            ax.set_ylabel(f"dev {next(iter(lines))}" if len(lines) == 1 else "dev metric")
            if best and best.get("metric") in lines:
                ax.plot([best["step"]], [best["value"]], marker="*", markersize=14, linestyle="none",
                        color="tab:red", label=f"best ({best['metric']} {best['value']:.4g}, step {best['step']})")
        else:
            ax.set_ylabel("loss")
            if best and best.get("metric") == "loss" and "dev loss" in lines:  # --metric loss: marked here
                ax.plot([best["step"]], [best["value"]], marker="*", markersize=14, linestyle="none",
                        color="tab:red", label=f"best (dev loss {best['value']:.4g}, step {best['step']})")
        if best_step is not None:
            ax.axvline(best_step, color="tab:red", alpha=0.3, linestyle="--")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[-1, 0].set_xlabel("step")
    return fig


def disk_usage(out: str | Path) -> dict[str, int]:
    """Bytes each output of a run takes: best/, final/, checkpoints/ (those that exist)."""
    out = Path(out)
    sizes = {}
    for name in ("best", "final", "checkpoints"):
        d = out / name
        if d.is_dir():
            sizes[name] = sum(f.stat().st_size for f in d.rglob("*") if f.is_file() and not f.is_symlink())
    return sizes


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


# ----------------------------------------------------------------------------- summary
def summary(title: str, *, steps: int, tokens: int, elapsed: float, records: list[dict],
            best: dict | None, paths: dict[str, str], stopped: str, shown=(), disk: dict | None = None) -> str:
    """One screen: ``shown`` are the train record's keys printed beside the loss (the task's loss
    parts and metrics); ``disk``: bytes per output (disk_usage), printed as what the run left."""
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    lines = [f"{title}: {stopped} after {steps:,} steps in {duration(elapsed)}"
             f" ({tokens:,} tokens, {tokens / max(elapsed, 1e-9):,.0f} tokens/s)"]
    if train:
        first, last = train[0], train[-1]
        parts = "  ".join(f"{k} {_fmt(last[k])}" for k in shown if k in last)
        lines.append(f"  loss {_fmt(first.get('loss'))} -> {_fmt(last.get('loss'))}" + (f"   ({parts})" if parts else ""))
        if isinstance(last.get("grad_norm"), (int, float)):
            lines.append(f"  grad_norm {_fmt(last['grad_norm'])} (the last record's, before clipping)")
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
    if disk:
        lines.append(f"  {'on disk:':<12} " + ", ".join(f"{k}/ {human_bytes(v)}" for k, v in disk.items())
                     + f" ({human_bytes(sum(disk.values()))} in all)")
    return "\n".join(lines)
