"""Evaluation metrics for classification and regression: pure numpy functions.

Each takes ``predictions`` and ``labels`` arrays (class ids, or real values for regression) and
returns a Python float. Degenerate inputs give a defined value without warnings: MCC is 0 when
either side is constant, Pearson/Spearman are 0 when either side is constant, F1 is 0 when a
class has no true or predicted member (scikit-learn's ``zero_division=0``). NaN inputs give NaN.
"""
from __future__ import annotations

import math
import re

import numpy as np

CLASSIFICATION_METRICS = ("accuracy", "f1", "f1_macro", "mcc")
REGRESSION_METRICS = ("pearson", "spearman", "mse")
_LOWER_IS_BETTER = {"loss", "mse", "rmse", "mae", "error", "err", "perplexity", "ppl"}


def _pair(predictions, labels, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predictions, dtype=dtype).reshape(-1)
    y = np.asarray(labels, dtype=dtype).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"{p.size} predictions but {y.size} labels")
    return p, y


# ----------------------------------------------------------------------------- classification
def accuracy(predictions, labels) -> float:
    p, y = _pair(predictions, labels)
    return float(np.mean(p == y)) if p.size else 0.0


def _f1(tp: float, fp: float, fn: float) -> float:
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def f1_binary(predictions, labels, positive: int = 1) -> float:
    """F1 of the ``positive`` class (a label id, 1 by default)."""
    p, y = _pair(predictions, labels)
    tp = float(np.sum((p == positive) & (y == positive)))
    fp = float(np.sum((p == positive) & (y != positive)))
    fn = float(np.sum((p != positive) & (y == positive)))
    return _f1(tp, fp, fn)


def _confusion(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Confusion matrix C[true, predicted] over the classes present in either array."""
    _, inverse = np.unique(np.concatenate([y, p]), return_inverse=True)
    inverse = inverse.reshape(-1)
    k = int(inverse.max()) + 1 if inverse.size else 0
    yi, pi = inverse[:y.size], inverse[y.size:]
    return np.bincount(yi * k + pi, minlength=k * k).reshape(k, k).astype(np.float64)


def f1_macro(predictions, labels) -> float:
    """Unweighted mean of per-class F1 over the classes present in labels or predictions
    (scikit-learn's ``average="macro"``)."""
    p, y = _pair(predictions, labels)
    if not p.size:
        return 0.0
    c = _confusion(p, y)
    tp = np.diag(c)
    fp = c.sum(axis=0) - tp
    fn = c.sum(axis=1) - tp
    denominator = 2 * tp + fp + fn  # > 0 for every present class
    return float(np.mean(2 * tp / denominator))


def matthews_corrcoef(predictions, labels) -> float:
    """Matthews correlation (the multiclass R_K statistic; 0 when either side is constant)."""
    p, y = _pair(predictions, labels)
    if not p.size:
        return 0.0
    c = _confusion(p, y)
    t_sum, p_sum = c.sum(axis=1), c.sum(axis=0)
    n, correct = c.sum(), np.trace(c)
    cov_yp = correct * n - t_sum @ p_sum
    cov_pp = n * n - p_sum @ p_sum
    cov_yy = n * n - t_sum @ t_sum
    if cov_pp == 0 or cov_yy == 0:
        return 0.0
    return float(np.clip(cov_yp / math.sqrt(cov_yy * cov_pp), -1.0, 1.0))


# ----------------------------------------------------------------------------- regression
def pearson(predictions, labels) -> float:
    """Pearson's r; 0 when either side is constant (or fewer than 2 values), NaN with NaN input."""
    x, y = _pair(predictions, labels, np.float64)
    if x.size < 2:
        return 0.0
    if np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    if (x == x[0]).all() or (y == y[0]).all():
        return 0.0
    xm, ym = x - x.mean(), y - y.mean()
    nx, ny = np.linalg.norm(xm), np.linalg.norm(ym)
    if not (nx > 0 and ny > 0 and math.isfinite(nx) and math.isfinite(ny)):
        return 0.0
    return float(np.clip((xm / nx) @ (ym / ny), -1.0, 1.0))


def rankdata(values) -> np.ndarray:
    """1-based ranks, ties given their average rank (``scipy.stats.rankdata(method="average")``)."""
    x = np.asarray(values).reshape(-1)
    n = x.size
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    new_group[1:] = xs[1:] != xs[:-1]
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], n)
    average = (starts + ends + 1) / 2.0  # mean of the 1-based ranks start+1 .. end
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = average[np.cumsum(new_group) - 1]
    return ranks


def spearman(predictions, labels) -> float:
    """Spearman's rho: Pearson's r of the average ranks."""
    x, y = _pair(predictions, labels, np.float64)
    if np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    return pearson(rankdata(x), rankdata(y))


def mse(predictions, labels) -> float:
    x, y = _pair(predictions, labels, np.float64)
    return float(np.mean((x - y) ** 2)) if x.size else 0.0


# ----------------------------------------------------------------------------- task level
def compute_metrics(task: str, predictions, labels, num_labels: int | None = None,
                    positive: int = 1) -> dict[str, float]:
    """The usual metrics of a task.

    classification: ``predictions`` are class ids [N] or logits [N, C] (argmax taken); gives
    accuracy, f1 (of label id ``positive``, 1 by default, with 2 labels; else the macro F1),
    f1_macro and mcc.
    regression: predictions [N] or [N, 1]; gives pearson, spearman and mse.
    """
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if task in ("classification", "single_label_classification"):
        if predictions.ndim == 2:
            predictions = predictions.argmax(axis=-1)
        if num_labels is None:
            num_labels = int(max(predictions.max(initial=0), labels.max(initial=0))) + 1
        macro = f1_macro(predictions, labels)
        return {
            "accuracy": accuracy(predictions, labels),
            "f1": f1_binary(predictions, labels, positive=positive) if num_labels == 2 else macro,
            "f1_macro": macro,
            "mcc": matthews_corrcoef(predictions, labels),
        }
    if task == "regression":
        return {
            "pearson": pearson(predictions, labels),
            "spearman": spearman(predictions, labels),
            "mse": mse(predictions, labels),
        }
    raise ValueError(f"task must be classification or regression, got {task!r}")


def higher_is_better(metric_name: str) -> bool:
    """False for losses and errors (loss, mse, rmse, mae, error, perplexity), by name part:
    ``eval_loss``, ``eval/mse`` and ``mlm_loss`` are lower-is-better."""
    parts = set(re.split(r"[^a-z0-9]+", metric_name.lower()))
    return not parts & _LOWER_IS_BETTER


def better(metric_name: str, a: float | None, b: float | None) -> bool:
    """Whether ``a`` is strictly better than ``b`` for this metric. ``b`` None (no best yet) or
    NaN loses to any real ``a``; a NaN or None ``a`` is never better."""
    if a is None or math.isnan(a):
        return False
    if b is None or math.isnan(b):
        return True
    return a > b if higher_is_better(metric_name) else a < b
