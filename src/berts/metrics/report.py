"""The evaluation report every task shares: per-class precision / recall / F1 / support and a
confusion matrix, as JSON (the evaluation's ``report`` key), printed as a table, and as a PNG.

    report = classification_report(labels, predicted, names)    # one label per example
    report = multilabel_report(Y, P, names)                      # several: [N, L] 0/1 each
    print_report(report); save_report_png(report, "report.png", title="dev")

A report is a plain dict (JSON as it is):

* ``classes``: ``[{"name", "precision", "recall", "f1", "support"}, ...]`` in the names' order;
  precision of a class never predicted is 0 (sklearn's zero_division=0), as its F1;
* ``confusion``: ``[[count, ...], ...]``: row = the true class, column = the predicted one
  (sklearn's layout); a multi-label report has per label ``[[tn, fp], [fn, tp]]`` instead
  (``confusion_per_label``), one 2x2 per label, as sklearn's multilabel_confusion_matrix;
* ``macro``: the unweighted means of precision / recall / F1 over the classes.
* ``confusion_labels`` (optional): the confusion's row / column names when they are not the
  classes (token tagging's entity confusion: the types plus "(none)" for missed / spurious).

Other tasks (entity types of token tagging) build the same dict from their own counts with
``from_counts(names, tp, fp, fn)`` and get the printing and the plot.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from berts.util.fileio import atomic_write_file, is_stream


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray):
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        r = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return p, r, f


def from_counts(names, tp, fp, fn) -> dict:
    """A report from per-class true positives, false positives and false negatives (no confusion)."""
    p, r, f = _prf(tp, fp, fn)
    support = np.asarray(tp) + np.asarray(fn)
    classes = [{"name": str(n), "precision": round(float(a), 6), "recall": round(float(b), 6),
                "f1": round(float(c), 6), "support": int(s)} for n, a, b, c, s in zip(names, p, r, f, support)]
    macro = {k: round(float(np.mean([c[k] for c in classes])), 6) if classes else 0.0
             for k in ("precision", "recall", "f1")}
    return {"classes": classes, "macro": macro}


def confusion_matrix(labels, predicted, n: int) -> np.ndarray:
    """[n, n] counts: row = true class, column = predicted class."""
    out = np.zeros((n, n), dtype=np.int64)
    np.add.at(out, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return out


def classification_report(labels, predicted, names) -> dict:
    """One label per example (class ids ``labels`` and ``predicted``, [N]); ``names`` [C]."""
    cm = confusion_matrix(labels, predicted, len(names))
    tp = np.diag(cm)
    report = from_counts(names, tp, cm.sum(0) - tp, cm.sum(1) - tp)
    report["confusion"] = cm.tolist()
    return report


def multilabel_report(labels, predicted, names) -> dict:
    """Several labels per example: ``labels`` and ``predicted`` [N, L] of 0/1; per label a 2x2."""
    y = np.asarray(labels, dtype=bool)
    p = np.asarray(predicted, dtype=bool)
    tp, fp, fn = (y & p).sum(0), (~y & p).sum(0), (y & ~p).sum(0)
    tn = (~y & ~p).sum(0)
    report = from_counts(names, tp, fp, fn)
    report["confusion_per_label"] = [[[int(a), int(b)], [int(c), int(d)]] for a, b, c, d in zip(tn, fp, fn, tp)]
    return report


def format_report(report: dict) -> str:
    """The report as text: one row per class, the macro means, then the confusion matrix."""
    classes = report["classes"]
    width = max([len(c["name"]) for c in classes] + [5])
    lines = [f"{'class':<{width}}  precision  recall      f1  support"]
    for c in classes:
        lines.append(f"{c['name']:<{width}}  {c['precision']:9.4f}  {c['recall']:6.4f}  {c['f1']:6.4f}  {c['support']:7d}")
    m = report["macro"]
    lines.append(f"{'macro':<{width}}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:6.4f}")
    if "confusion" in report:
        names = report.get("confusion_labels") or [c["name"] for c in classes]
        width = max([width] + [len(n) for n in names])
        cell = max([len(n) for n in names] + [len(str(x)) for row in report["confusion"] for x in row] + [3])
        lines.append("confusion (row: true, column: predicted)")
        lines.append(" " * width + "  " + " ".join(f"{n:>{cell}}" for n in names))
        for n, row in zip(names, report["confusion"]):
            lines.append(f"{n:<{width}}  " + " ".join(f"{x:>{cell}d}" for x in row))
    elif "confusion_per_label" in report:
        lines.append("per label [[tn, fp], [fn, tp]]: " + "  ".join(
            f"{c['name']} {m}" for c, m in zip(classes, report["confusion_per_label"])))
    return "\n".join(lines)


def metrics_line(name: str, metrics: dict) -> str:
    """``name: key value  key value ...`` (floats to 4 places; a nested dict as ``outer.inner``)."""
    flat = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            flat.update({f"{k}.{i}": x for i, x in v.items()})
        else:
            flat[k] = v
    return f"{name}: " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in flat.items())


def print_report(report: dict, file=None) -> None:
    print(format_report(report), file=file)


def save_report_png(report: dict, path, title: str = "") -> Path:
    """Per-class P/R/F1 bars beside the confusion matrix (or the per-label F1 bars), one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = report["classes"]
    names = [c["name"] for c in classes]
    has_cm = "confusion" in report
    cm_names = report.get("confusion_labels") or names
    fig, axes = plt.subplots(1, 2 if has_cm else 1, figsize=(11 if has_cm else 6, 4.5), squeeze=False)
    ax = axes[0][0]
    x = np.arange(len(names))
    for k, (key, shift) in enumerate((("precision", -0.27), ("recall", 0.0), ("f1", 0.27))):
        ax.bar(x + shift, [c[key] for c in classes], width=0.27, label=key)
    ax.set_xticks(x, names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    ax.set_ylim(0, 1.05)
    ax.set_title("per class")
    ax.legend(loc="lower right", fontsize=8)
    if has_cm:
        cm = np.asarray(report["confusion"])
        ax = axes[0][1]
        ax.imshow(cm, cmap="Blues")
        k = np.arange(len(cm_names))
        ax.set_xticks(k, cm_names, rotation=45 if len(cm_names) > 6 else 0)
        ax.set_yticks(k, cm_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("confusion")
        if len(cm_names) <= 20:
            for i in range(len(cm_names)):
                for j in range(len(cm_names)):
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if cm[i, j] > cm.max() / 2 else "black")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    if not is_stream(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    png = io.BytesIO()
    fig.savefig(png, dpi=100, format="png")  # the bytes, then one atomic write (a stream: written as one)
    plt.close(fig)
    atomic_write_file(path, png.getvalue())
    return path
