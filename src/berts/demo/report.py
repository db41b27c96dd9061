"""The demo's report: report.json, report.md and report.html (berts.util.report) from what the run
measured, with its plots (PNG, under OUT/plots, embedded in the HTML). Every figure is read from
the run's own files; each goal of the demo gets a sentence that says met or not met."""
from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path

from berts.util.report import Report
from berts.util.fileio import atomic_write_file

# ----------------------------------------------------------------------------- metrics files
# The run (berts.demo.run) writes these files and reads them back through here, so the report
# never imports the run.
def records(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def run_summary(run_dir: Path) -> dict:
    """Steps, tokens/s, seconds, first/last train loss, the evaluations of a run directory."""
    rows = records(Path(run_dir) / "metrics.jsonl")
    train = [r for r in rows if r.get("kind", "train") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    times = [r["time"] for r in rows if "time" in r]
    tps = [r["tokens_per_s"] for r in train[1:] if "tokens_per_s" in r] or \
        [r["tokens_per_s"] for r in train if "tokens_per_s" in r]
    return {"steps": train[-1]["step"] if train else 0, "epochs": train[-1].get("epoch") if train else None,
            "first": train[0] if train else {}, "last": train[-1] if train else {}, "evals": evals,
            "tokens_per_s": round(sum(tps) / len(tps)) if tps else None,
            "seconds": round(times[-1] - times[0], 1) if len(times) > 1 else None}


def best_eval(summary: dict, metric: str = "accuracy") -> dict:
    return max(summary["evals"], key=lambda r: r.get(metric, float("-inf")), default={})


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def _f(x, digits: int = 4) -> str:
    return "" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else f"{x:,}" if isinstance(x, int) else str(x))


def _points(a, b) -> str:
    return f"{100 * (a - b):+.2f} points"


# ----------------------------------------------------------------------------- plots
def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def _series(rows, key, kind="train"):
    pts = [(r["step"], r[key]) for r in rows if r.get("kind", "train") == kind and isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_pretraining(run_dir: Path, path: Path) -> Path | None:
    plt, rows = _plt(), records(run_dir / "metrics.jsonl")
    if plt is None or not rows:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    # like with like: the train MLM part against the held-out MLM loss (the total train loss adds
    # the sentence objective, which the held-out loss does not have: drawn, labelled, on its own axis)
    mlm_key = next((k for k in ("mlm_loss", "mlm") if _series(rows, k)[0]), None)
    if mlm_key:
        a.plot(*_series(rows, mlm_key), label="train MLM loss", lw=1.2)
    x, y = _series(rows, "loss")
    if x and (not mlm_key or any(abs(t - m) > 1e-6 for t, m in zip(y, _series(rows, mlm_key)[1]))):
        total = a.twinx()
        total.plot(x, y, color="0.6", lw=1, ls=":", label="train loss, all objectives (right axis)")
        total.set_ylabel("train loss, all objectives", color="0.4")
        total.legend(fontsize=8, loc="upper center")
    x, y = _series(rows, "mlm_loss", "eval")
    a.plot(x, y, "o-", label="held-out MLM loss", lw=1.2, ms=4)
    b.plot(*_series(rows, "mlm_acc"), label="train MLM accuracy", lw=1.2)
    x, y = _series(rows, "mlm_acc", "eval")
    b.plot(x, y, "o-", label="held-out MLM accuracy", lw=1.2, ms=4)
    a.set_ylabel("MLM loss (masked tokens)")
    b.set_ylabel("accuracy of the masked tokens")
    for ax in (a, b):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right" if ax is a else "lower right")
    fig.suptitle("Chinese pretraining (MLM)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_dev_curves(runs: dict[str, Path], baseline: float | None, title: str, path: Path) -> Path | None:
    plt = _plt()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for label, run_dir in runs.items():
        x, y = _series(records(run_dir / "metrics.jsonl"), "accuracy", "eval")
        if x:
            ax.plot(x, y, "o-", label=label, lw=1.2, ms=3)
    if baseline is not None:
        ax.axhline(baseline, ls="--", color="gray", lw=1, label="TF-IDF + logistic regression")
    ax.set_xlabel("fine-tuning step")
    ax.set_ylabel("dev accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_tradeoff(rows: list[dict], baseline: float | None, title: str, path: Path) -> Path | None:
    plt = _plt()
    if plt is None or not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in rows:
        x = 1000.0 / r["throughput_b32"]
        ax.scatter([x], [r["score"]], marker="s" if r.get("precision") == "int8" else "o")
        ax.annotate(_short(r), (x, r["score"]), fontsize=7, textcoords="offset points", xytext=(4, 3))
    if baseline is not None:
        ax.axhline(baseline, ls="--", color="gray", lw=1, label="TF-IDF (test)")
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("CPU latency at batch 32, ms per example (log)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_timeline(steps: list[dict], path: Path) -> Path | None:
    plt = _plt()
    if plt is None or not steps:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(steps) + 1))
    names = [f"[{s['lang']}] {s['step'][:60]}" for s in steps][::-1]
    secs = [s["seconds"] for s in steps][::-1]
    ax.barh(names, secs, color=["#4c78a8" if "[zh]" in n else "#f58518" for n in names])
    ax.set_xlabel("seconds")
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- tables
def _short(r: dict) -> str:
    parts = Path(r["model"]).parts
    name = parts[-2] if parts and parts[-1] in ("best", "final") and len(parts) > 1 else (parts[-1] if parts else "?")
    name = {"finetune": "teacher"}.get(name, name)
    if "speed" in r:
        name += f" S={r['speed']:g}"
    if r.get("precision") == "int8":
        name += " int8"
    return name


def compare_table(doc: Report, rows: list[dict]) -> None:
    header = ["model", "layers (avg)", "params", "MB", "GFLOPs / token", "batch 1 ms", "batch 32 ex/s",
              "test accuracy", "vs first"]
    body = []
    for r in rows:
        q = r.get("ratios", {})
        layers = f"{r['avg_layers']:.2f}" if "avg_layers" in r else str(r.get("layers", ""))
        body.append([_short(r), layers, f"{r['params']:,}", _f(r.get("size_mb"), 1),
                     f"{r['flops_per_token'] / 1e9:.4f} ({q.get('flops_per_token', 1):.2f}x)",
                     f"{r['latency_b1_ms']:.2f} ({q.get('speedup_b1', 1):.2f}x)",
                     f"{r['throughput_b32']:.1f} ({q.get('speedup_b32', 1):.2f}x)",
                     f"{r['score']:.4f}", f"{100 * q.get('score', 1):.1f}%"])
    doc.table(header, body)


def _find(rows, name: str, precision: str = "fp32"):
    return [r for r in rows if name in _short(r) and r.get("precision", "fp32") == precision]


def degenerate(scores: dict[str, float], majority: float | None) -> str | None:
    """Why a goal cannot count as met: a model no better than always answering the majority class of
    the split (a model that predicts one class scores at most that rate), or None. A "Met" beside two
    models that both predict the majority class compared nothing."""
    if majority is None:
        return None
    bad = [f"{name} at {acc:.4f}" for name, acc in scores.items() if acc is not None and acc <= majority + 1e-9]
    return (f"degenerate: {', '.join(bad)} no better than always predicting the majority class "
            f"({majority:.4f} of the split)") if bad else None


def goal(doc: Report, text: str, met: bool, scores: dict[str, float], majority: float | None) -> None:
    """A goal's verdict; "not met: degenerate" when a model it rests on is degenerate."""
    why = degenerate(scores, majority)
    doc.verdict(f"{why}. {text}" if why else text, False if why else met)


def compression_verdicts(doc: Report, rows: list[dict], distil: str, tiny: str | None,
                         exit_choice: dict | None = None, majority: float | None = None) -> None:
    """The goals of compression on the test rows of compare. Early exit's speed is the one chosen
    on dev (``exit_choice``, demo/run.choose_exit_speed): never a maximum over test scores."""
    if not rows:
        return
    first = rows[0]
    d = next((r for r in _find(rows, distil) if "speed" not in r), None)
    if d:
        q = d["ratios"]
        goal(doc, f"DistilBERT student ({d['layers']}-layer): {100 * q['score']:.1f}% of the teacher's test accuracy "
                  f"at {q['speedup_b32']:.2f}x its batch-32 throughput (goal: >= 97% at >= 1.8x).",
             q["score"] >= 0.97 and q["speedup_b32"] >= 1.8, {"the teacher": first["score"], "the student": d["score"]},
             majority)
    t = next((r for r in _find(rows, tiny) if "speed" not in r), None) if tiny else None
    if t:
        q = t["ratios"]
        goal(doc, f"TinyBERT student ({t['layers']} layers, hidden {t['hidden']}): {100 * q['score']:.1f}% of the "
                  f"teacher's accuracy at {q['speedup_b32']:.2f}x its throughput (goal: >= 95% at >= 4x).",
             q["score"] >= 0.95 and q["speedup_b32"] >= 4, {"the teacher": first["score"], "TinyBERT": t["score"]},
             majority)
    exits = [r for r in rows if "speed" in r]
    if exits:
        chosen = (next((r for r in exits if abs(r["speed"] - exit_choice["speed"]) < 1e-9), None)
                  if exit_choice else None)
        if chosen is None:  # no choice made on dev: no verdict (picking on test would tune on it)
            doc.verdict("FastBERT early exit: no speed was chosen on the dev split, so no test verdict.", None)
        else:
            r = chosen
            ok = first["layers"] / max(r["avg_layers"], 1e-9) >= 2 and first["score"] - r["score"] <= 0.01
            goal(doc, f"FastBERT early exit: at speed {r['speed']:g} (chosen on dev: {_f(exit_choice['dev_accuracy'])} "
                      f"vs {_f(exit_choice['dev_full_accuracy'])} run to the end), {first['layers'] / r['avg_layers']:.2f}x "
                      f"fewer layers on average at {_points(r['score'], first['score'])} on test (goal: >= 2x within "
                      f"1 point); batch-32 throughput {r['ratios']['speedup_b32']:.2f}x the model run to the end.", bool(ok),
                 {"the teacher": first["score"], "the exits": r["score"]}, majority)
    q8 = [r for r in rows if r.get("precision") == "int8"]
    if q8:
        r = q8[0]
        doc.verdict(f"int8 (dynamic, torch) of the first model: {r['ratios']['speedup_b32']:.2f}x batch-32 throughput, "
                    f"{_f(r.get('size_mb'), 1)} MB vs {_f(first.get('size_mb'), 1)} MB, agreement with fp32 "
                    f"{_f(r.get('agreement'), 4)}, accuracy {_points(r['score'], first['score'])}.", None)


# ----------------------------------------------------------------------------- the report
def _machine() -> str:
    import torch

    return (f"{os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"Python {platform.python_version()}, {platform.system()} {platform.machine()}")


def commands(doc: Report, steps: list[dict], lang: str) -> None:
    """Each step of ``lang`` with its time and the command that redoes it."""
    doc.code([f"# {s['step']} ({s['seconds']}s)\n{s['command']}" for s in steps if s["lang"] == lang])


_commands = commands  # the name zh_section used


def verdict_word(good: bool | None, text: str) -> str:
    """A goal's verdict as the report's summary says it."""
    if good is None:
        return "no goal"
    return "met" if good else "not met: degenerate" if text.startswith("degenerate") else "not met"


def goals(doc: Report) -> list[dict]:
    """Every goal the sections wrote (a verdict with met / not met), with its section."""
    found, section = [], ""
    for b in doc.blocks:
        if b[0] == "h2":
            section = b[1]
        elif b[0] == "verdict" and b[2] is not None:
            found.append({"section": section, "goal": b[1], "verdict": verdict_word(b[2], b[1])})
    return found


def budget_line(report: dict) -> str:
    """The budget, what the run used, and the downloads (not counted)."""
    down = report.get("download_s")
    return (f"Budget: {report['budget_s']:.0f} s; used {report['seconds']:.0f} s "
            f"({report['seconds'] / 60:.1f} min, {100 * report['seconds'] / report['budget_s']:.0f}% of the budget); "
            f"downloads excluded" + (f" ({down:.0f} s, cached after the first run)." if down is not None else "."))


def write_report(report: dict, out: Path, sections: dict | None = None) -> dict[str, Path]:
    """report.json, report.md and report.html into ``out``. ``sections``: {lang: section(doc, r, out,
    plots, steps)}, each half's part of the report (berts.demo.en.en_section, the Chinese one),
    given by the run so that this module imports neither half."""
    sections = sections or {}
    out = Path(out)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    zh, en = report.get("zh"), report.get("en")
    plot_timeline(report["steps"], plots / "timeline.png")

    s = report["settings"]
    doc = Report("berts demo report", root=out)
    doc.p(f"{'Quick run (toy sizes). ' if s['quick'] else ''}Languages: {', '.join(report['langs'])}. "
          f"{report['seconds']:.0f} s of a {report['budget_s']:.0f} s budget on {_machine()}. Every step below is "
          "a `berts` command (or one line of Python), listed with its time; paths are relative to this directory.")
    doc.p(budget_line(report))
    doc.h2("Results")
    summary_at = len(doc.blocks)  # the goals table goes here, once the sections have said them
    rows = []
    if zh:
        rows += zh["headline"]  # [lang, what, figure] rows (berts.demo.zh.headline)
    if en:
        rows += [["en", "MiniLM-L6 fine-tuned (teacher)", _f(en["test"]["accuracy"])],
                 ["en", "TF-IDF + logistic regression", _f(en["tfidf"]["test_accuracy"])]]
        rows += [["en", _short(r), _f(r["score"])] for r in en["compare"][1:]]
    doc.table(["language", "model", "test figure (accuracy, or entity F1 where named)"], rows)
    if zh:
        sections["zh"](doc, zh, out, plots, report["steps"])  # berts.demo.zh.zh_section
    if en and "en" in sections:
        sections["en"](doc, en, out, plots, report["steps"])
    report["goals"] = goals(doc)
    summary = Report("")
    summary.h3("Goals")
    summary.table(["part", "goal, as measured", "verdict"], [[g["section"], g["goal"], g["verdict"]]
                                                               for g in report["goals"]],
                  marks=["good" if g["verdict"] == "met" else "bad" for g in report["goals"]])
    doc.blocks[summary_at:summary_at] = summary.blocks
    doc.h2("Time")
    doc.p(budget_line(report))
    doc.table(["language", "step", "seconds", "command"],
              [[x["lang"], x["step"], f"{x['seconds']:.1f}", f"`{x['command'][:140]}`"
                + ("..." if len(x["command"]) > 140 else "")] for x in report["steps"]])
    doc.image(plots / "timeline.png", "Where the time went")
    doc.h2("Reproduce")
    doc.p("`berts demo` re-runs all of it (`--lang zh|en|both`, `--budget`, `--quick`); the commands of each "
          "part are listed under it, in order. Figures move by about a point between runs (seeds, and the wall clock "
          "deciding how many steps a budget buys on a shared machine).")
    atomic_write_file(out / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    return doc.write(out)
