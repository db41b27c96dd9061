"""`berts compare`: several fine-tuned classifiers on one labelled file, side by side.

For each model directory: parameters (shared ones once: ALBERT's sharing shows here), FLOPs per
token (counted from the config on the file's real lengths: sharing does not change them), CPU
latency at batch 1 and batch 32 (every model on the same examples, same threads, the models
alternated round by round, medians), accuracy (or the regression metric), and each as a ratio to
the first model (the teacher). Writes a markdown table, a JSON file and a PNG plot of accuracy
against batch-32 latency::

    rows = compare(["runs/teacher/best", "runs/distil/best", "runs/albert/best"], "test.tsv")
    print(markdown(rows))

FLOP counts (multiply-adds x 2; embeddings lookups, LayerNorm, softmax and GELU not counted), a
sequence of n real tokens, hidden H, intermediate I, E the factorized embedding size:

* a layer: 2n(4H^2 + 2HI) for the projections + 4n^2 H for q.k and probabilities x values;
* ALBERT's embedding projection: 2nEH; the pooler and classifier: 2H^2 + 2HC, once per sequence;
* a FastBERT student of width w: 2nHw + 4nw^2 (keys, values) + 4nw ([CLS] query) + 6w^2 + 2wC.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from berts.errors import UserError


# ----------------------------------------------------------------------------- counts
def layer_flops(config, n: int) -> float:
    h, i = config.hidden_size, config.intermediate_size
    return 2.0 * n * (4 * h * h + 2 * h * i) + 4.0 * n * n * h


def encoder_flops(config, n: int, layers: int | None = None, head: bool = True) -> float:
    """FLOPs of one sequence of ``n`` real tokens through the embedding projection (ALBERT),
    ``layers`` layers (default all) and, with ``head``, the pooler and classifier."""
    layers = config.num_hidden_layers if layers is None else layers
    total = layers * layer_flops(config, n)
    if config.embedding_size is not None:
        total += 2.0 * n * config.embedding_size * config.hidden_size
    if head:
        total += 2.0 * config.hidden_size * config.hidden_size + 2.0 * config.hidden_size * config.num_labels
    return total


def student_flops(config, width: int, n: int) -> float:
    """One FastBERT student (berts.compress.fastbert.ExitClassifier) on a sequence of n tokens."""
    h, c = config.hidden_size, config.num_labels
    return 2.0 * n * h * width + 4.0 * n * width * width + 4.0 * n * width + 6.0 * width * width + 2.0 * width * c


def flops_per_token(config, lengths) -> float:
    """Sum of encoder_flops over the sequences / their real tokens."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return float(sum(encoder_flops(config, int(n)) for n in lengths) / max(int(lengths.sum()), 1))


# ----------------------------------------------------------------------------- measuring
def _timed(clf, ds, batch_size: int) -> float:
    t0 = time.perf_counter()
    clf.logits(ds, batch_size)
    return time.perf_counter() - t0


def compare(model_dirs, eval_file, *, latency_examples: int = 64, repeats: int = 5, threads: int | None = None,
            speed: float | None = None, device: str = "cpu", data_args=None) -> list[dict]:
    """One row per model directory (see the module docstring). ``speed``: early exit at this
    speed for the directories that have students (berts finetune --early-exit)."""
    import torch

    if not model_dirs:
        raise UserError("compare needs at least one model directory")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _compare(model_dirs, eval_file, latency_examples, repeats, speed, device, data_args)
    finally:
        torch.set_num_threads(before)


def _compare(model_dirs, eval_file, latency_examples, repeats, speed, device, data_args) -> list[dict]:
    from berts.compress.fastbert import BertForSequenceClassificationWithExits, exit_flops
    from berts.inference import Classifier
    from berts.metrics import compute_metrics
    from berts.train.recipes import check_max_length, drop_unknown_labels, read_table

    entries = []
    for directory in model_dirs:
        clf = Classifier.from_pretrained(directory, device=device)
        exits = isinstance(clf.model, BertForSequenceClassificationWithExits) and speed is not None
        if exits:
            clf.early_exit("entropy", speed=speed)
        d = _data_settings(clf.settings, data_args)
        d.max_length = check_max_length(d.max_length, clf.model.config.max_position_embeddings)
        task = "regression" if clf.regression else "classification"
        examples, report = read_table(eval_file, d, task=task)
        examples = drop_unknown_labels(examples, clf.label_map, report, d.skip_bad_rows)
        ds = clf.dataset(examples, d.max_length)
        entries.append((directory, clf, ds, task, exits))
    rows = []
    for directory, clf, ds, task, exits in entries:
        logits = clf.logits(ds, 64)
        num_labels = 1 if clf.regression else len(clf.label_map)
        metrics = compute_metrics(task, logits[:, 0] if clf.regression else logits, ds.labels, num_labels)
        config = clf.model.config
        row = {"model": str(directory), "format": "albert" if config.embedding_size is not None else "bert",
               "layers": config.num_hidden_layers, "hidden": config.hidden_size,
               "share_layers": config.share_layers, "params": int(clf.model.num_parameters()),
               "flops_per_token": flops_per_token(config, ds.lengths),
               "metric": "pearson" if clf.regression else "accuracy"}
        row["score"] = float(metrics[row["metric"]])
        if exits:
            tokens = max(int(ds.lengths.sum()), 1)
            row["flops_per_token"] = exit_flops(config, ds.lengths, clf.exit_layers, "entropy", speed) \
                * len(ds) / tokens
            row["speed"] = speed
            row["avg_layers"] = float(np.mean(clf.exit_layers))
        rows.append(row)
    # latency: the same first examples for every model; rounds alternate the models; medians
    from berts.compress.fastbert import _Subset

    times = [{1: [], 32: []} for _ in entries]
    for _ in range(repeats):
        for j, (_, clf, ds, _, _) in enumerate(entries):
            sub = _Subset(ds, np.arange(min(latency_examples, len(ds))))
            for bs in (1, 32):
                times[j][bs].append(_timed(clf, sub, bs))
    for j, row in enumerate(rows):
        n = min(latency_examples, len(entries[j][2]))
        row["examples_timed"] = n
        row["latency_b1_ms"] = 1000 * float(np.median(times[j][1])) / n
        row["latency_b32_ms"] = 1000 * float(np.median(times[j][32])) / -(-n // 32)
        row["throughput_b32"] = n / float(np.median(times[j][32]))  # examples / s
    first = rows[0]
    for row in rows:
        row["ratios"] = {
            "params": row["params"] / first["params"],
            "flops_per_token": row["flops_per_token"] / first["flops_per_token"],
            "speedup_b1": first["latency_b1_ms"] / row["latency_b1_ms"],
            "speedup_b32": row["throughput_b32"] / first["throughput_b32"],
            "score": row["score"] / first["score"] if first["score"] else float("nan"),
        }
    return rows


def _data_settings(settings: dict, data_args):
    from types import SimpleNamespace

    from berts.commands.common import data_settings

    args = data_args or SimpleNamespace(text_column=None, pair_column=None, label_column=None, format=None,
                                        header=None, skip_bad_rows=None, max_length=None)
    return data_settings(args, settings, labels=True)


# ----------------------------------------------------------------------------- reports
def markdown(rows: list[dict]) -> str:
    """The comparison as a markdown table (ratios to the first row in brackets)."""
    metric = rows[0]["metric"]
    out = [f"| model | params | GFLOPs / token | batch 1 ms | batch 32 examples/s | {metric} |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        q = r["ratios"]
        name = r["model"] + (f" (speed {r['speed']:g}, {r['avg_layers']:.2f} layers)" if "speed" in r else "")
        out.append(f"| {name} | {r['params']:,} ({q['params']:.2f}x) | {r['flops_per_token'] / 1e9:.4f} "
                   f"({q['flops_per_token']:.2f}x) | {r['latency_b1_ms']:.2f} ({q['speedup_b1']:.2f}x) | "
                   f"{r['throughput_b32']:.1f} ({q['speedup_b32']:.2f}x) | {r['score']:.4f} ({q['score']:.3f}) |")
    return "\n".join(out)


def plot(rows: list[dict], path) -> None:
    """PNG: the metric against batch-32 latency per example, one labelled point per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        x = 1000.0 / r["throughput_b32"]
        ax.scatter([x], [r["score"]])
        ax.annotate(Path(r["model"]).name if Path(r["model"]).name not in ("best", "final") else
                    "/".join(Path(r["model"]).parts[-2:]), (x, r["score"]), fontsize=8,
                    textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("CPU latency, batch 32 (ms per example)")
    ax.set_ylabel(rows[0]["metric"])
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(rows: list[dict], out_dir) -> dict[str, Path]:
    """compare.md, compare.json and compare.png into ``out_dir`` (created)."""
    from berts.fileio import atomic_write_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "compare.md", "json": out / "compare.json", "png": out / "compare.png"}
    atomic_write_file(paths["md"], markdown(rows) + "\n")
    atomic_write_file(paths["json"], json.dumps(rows, indent=2) + "\n")
    plot(rows, paths["png"])
    return paths
