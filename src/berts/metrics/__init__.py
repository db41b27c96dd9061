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


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive): the
    Mann-Whitney statistic on average ranks (ties count one half), as
    ``sklearn.metrics.roc_auc_score``. 0.5 = chance; NaN when one class is absent."""
    x, y = _pair(scores, labels, np.float64)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(x)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


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


# ----------------------------------------------------------------------------- generation
# Our own BLEU and ROUGE-L (tests/test_generate_metrics.py checks them by hand and against
# nltk's published examples): berts adds no dependency for two short formulas, and both run
# on whitespace tokens of the decoded text (the same tokens for every model of one tokenizer).
SEQ2SEQ_METRICS = ("bleu", "rouge_l", "token_acc")


def _ngrams(tokens: list, n: int) -> dict:
    out: dict = {}
    for i in range(len(tokens) - n + 1):
        g = tuple(tokens[i:i + n])
        out[g] = out.get(g, 0) + 1
    return out


def corpus_bleu(hypotheses: list[list[str]], references: list[list[str]], max_n: int = 4) -> float:
    """Corpus BLEU (Papineni et al. 2002), one reference per hypothesis, in [0, 1]: the geometric
    mean of the clipped n-gram precisions (n = 1..4, summed over the corpus first) times the
    brevity penalty exp(1 - r / c) when the hypotheses are shorter (c < r). No smoothing: a
    corpus with no matching 4-gram scores 0, as sacrebleu's and nltk's unsmoothed BLEU."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    match, total = [0] * max_n, [0] * max_n
    c = r = 0
    for hyp, ref in zip(hypotheses, references):
        c, r = c + len(hyp), r + len(ref)
        for n in range(1, max_n + 1):
            h, g = _ngrams(hyp, n), _ngrams(ref, n)
            match[n - 1] += sum(min(k, g.get(gram, 0)) for gram, k in h.items())
            total[n - 1] += max(len(hyp) - n + 1, 0)
    if c == 0 or min(match) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(match, total)) / max_n
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return bp * math.exp(log_p)


def lcs_length(a: list, b: list) -> int:
    """The length of the longest common subsequence (dynamic programming, O(len a x len b))."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hypotheses: list[list[str]], references: list[list[str]]) -> float:
    """ROUGE-L F1 (Lin 2004; beta = 1), the mean over the pairs: LCS / len as precision and recall."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    scores = []
    for hyp, ref in zip(hypotheses, references):
        lcs = lcs_length(hyp, ref)
        if lcs == 0:
            scores.append(0.0)
            continue
        p, rec = lcs / len(hyp), lcs / len(ref)
        scores.append(2 * p * rec / (p + rec))
    return float(np.mean(scores)) if scores else 0.0
