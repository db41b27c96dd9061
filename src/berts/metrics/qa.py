"""Extractive-QA metrics: SQuAD v1.1 / v2.0 (the official evaluation scripts' rules) and CMRC 2018's
Chinese character-level EM / F1.

SQuAD (``evaluate-v1.1.py`` / ``evaluate-v2.0.py``): an answer is normalised by lowercasing,
removing ASCII punctuation (``string.punctuation``), removing the articles a/an/the, and collapsing
whitespace; EM is 1 when the normalised strings are equal; F1 is over the bag of whitespace tokens.
Each question takes the max over its gold answers; the totals are percentages (0-100).
v2.0 adds unanswerable questions (no gold answers: the gold is ``""``, and an empty prediction
scores 1 on both), a no-answer probability per question with a threshold, the HasAns / NoAns
breakdown, and the best threshold found on the data (``find_best_thresh`` of the script).

CMRC 2018 (its ``cmrc2018_evaluate.py``): lowercase; each Chinese character (U+4E00..U+9FA5) is
its own token, runs of other text are split into words; the script's punctuation list is removed
(its ``sp_char``: mostly full-width marks, and ``- : _ * ^ / \\ ~ ` + =``; ASCII ``. , ! ?`` are NOT
in it); F1 is over the longest common *substring* of the two token lists; EM compares the strings
with that punctuation removed. The script splits the non-Chinese runs with ``nltk.word_tokenize``;
we use a regex (words, numbers with inner ``.``/``,``, each other symbol alone), which agrees with
it except inside English contractions (``don't``) and abbreviations (``U.S.``) -- rare in CMRC answers,
and nltk is not a dependency.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

# ------------------------------------------------------------------------------------------ SQuAD

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(s: str) -> str:
    """SQuAD's normalisation: lower, remove punctuation, remove articles, collapse whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match(prediction: str, gold: str) -> int:
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Token F1 of one prediction against one gold answer (v2.0's rule: two empty answers score 1,
    one empty scores 0; v1.1 never has an empty gold)."""
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def _golds(answers: Iterable[str]) -> list[str]:
    """v2.0's gold list: answers that normalise to nothing are dropped; none left -> [""] (no answer)."""
    golds = [a for a in answers if normalize_answer(a)]
    return golds or [""]


def squad_scores(predictions: Mapping[str, str], answers: Mapping[str, Sequence[str]]) -> dict:
    """SQuAD v1.1: ``{"exact_match", "f1", "total"}`` in percent over every question of ``answers``
    (question id -> gold texts); a question with no prediction scores 0, as the official script."""
    em = f = 0.0
    for qid, golds in answers.items():
        if qid not in predictions:
            continue
        pred = predictions[qid]
        em += max(exact_match(pred, g) for g in golds)
        f += max(f1(pred, g) for g in golds)
    n = len(answers)
    return {"exact_match": 100.0 * em / n if n else 0.0, "f1": 100.0 * f / n if n else 0.0, "total": n}


def _best_threshold(predictions, scores, na_probs, has_answer) -> tuple[float, float]:
    """evaluate-v2.0.py's find_best_thresh: sweep the no-answer threshold over the sorted
    probabilities; start from answering nothing (every NoAns right)."""
    current = best = sum(1 for q in has_answer if not has_answer[q])
    threshold = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            diff = scores[qid]
        else:
            diff = -1 if predictions[qid] else 0
        current += diff
        if current > best:
            best, threshold = current, na_probs[qid]
    return 100.0 * best / len(scores), threshold


def squad_v2_scores(predictions: Mapping[str, str], answers: Mapping[str, Sequence[str]],
                    na_probs: Mapping[str, float] | None = None, na_prob_thresh: float = 1.0) -> dict:
    """SQuAD v2.0 as evaluate-v2.0.py: ``exact``, ``f1``, ``total`` (percent), ``HasAns_*`` and
    ``NoAns_*`` (when there are such questions), and with ``na_probs`` (question id -> probability
    of no answer) ``best_exact``, ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh``. A
    question whose no-answer probability is above ``na_prob_thresh`` counts as answered "".
    ``answers`` maps a question id to its gold texts ([] for an unanswerable question); a question
    missing from ``predictions`` is scored as answered ""."""
    has_answer = {q: bool(_golds(a)[0]) for q, a in answers.items()}
    # the official script assumes every question predicted; a missing one is read as "" (no answer)
    preds = {q: predictions.get(q, "") for q in answers}
    exact = {q: max(exact_match(preds[q], g) for g in _golds(a)) for q, a in answers.items()}
    f1s = {q: max(f1(preds[q], g) for g in _golds(a)) for q, a in answers.items()}
    probs = {q: (0.0 if na_probs is None else float(na_probs.get(q, 0.0))) for q in answers}

    def thresholded(scores):
        return {q: (float(not has_answer[q]) if probs[q] > na_prob_thresh else s) for q, s in scores.items()}

    exact_t, f1_t = thresholded(exact), thresholded(f1s)

    def block(qids):
        n = max(len(qids), 1)
        return {"exact": 100.0 * sum(exact_t[q] for q in qids) / n, "f1": 100.0 * sum(f1_t[q] for q in qids) / n,
                "total": len(qids)}

    every = list(answers)
    out = block(every)
    has = [q for q in every if has_answer[q]]
    no = [q for q in every if not has_answer[q]]
    for name, qids in (("HasAns", has), ("NoAns", no)):
        if qids:
            for k, v in block(qids).items():
                out[f"{name}_{k}"] = v
    if na_probs is not None:
        out["best_exact"], out["best_exact_thresh"] = _best_threshold(preds, exact, probs, has_answer)
        out["best_f1"], out["best_f1_thresh"] = _best_threshold(preds, f1s, probs, has_answer)
    return out


# ------------------------------------------------------------------------------------------ CMRC 2018

# cmrc2018_evaluate.py's sp_char, verbatim ("……" is two characters there and so never matches one)
CMRC_PUNCT = frozenset(['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=',
                        '，', '。', '：', '？', '！', '“', '”', '；', '’', '《', '》', '……', '·', '、',
                        '「', '」', '（', '）', '－', '～', '『', '』'])
_CJK = re.compile(r"[\u4e00-\u9fa5]")
_WORDS = re.compile(r"\d+(?:[.,]\d+)+|\w+|[^\w\s]")  # stands in for nltk.word_tokenize (module docstring)


def mixed_segmentation(text: str, remove_punctuation: bool = True) -> list[str]:
    """CMRC's tokens: each Chinese character alone, other runs split into words (lowercased)."""
    out: list[str] = []
    run = ""
    for ch in str(text).lower().strip():
        if remove_punctuation and ch in CMRC_PUNCT:
            continue
        if _CJK.match(ch) or ch in CMRC_PUNCT:
            if run:
                out.extend(_WORDS.findall(run))
                run = ""
            out.append(ch)
        else:
            run += ch
    if run:
        out.extend(_WORDS.findall(run))
    return out


def cmrc_remove_punctuation(text: str) -> str:
    return "".join(ch for ch in str(text).lower().strip() if ch not in CMRC_PUNCT)


def longest_common_substring(a: Sequence, b: Sequence) -> int:
    """The length of the longest run of tokens common to ``a`` and ``b`` (contiguous in both)."""
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                cur[j + 1] = prev[j] + 1
                best = max(best, cur[j + 1])
        prev = cur
    return best


def cmrc_f1(prediction: str, golds: Sequence[str]) -> float:
    """Max over the gold answers of the LCS-substring F1 on CMRC tokens (0..1)."""
    scores = []
    p = mixed_segmentation(prediction)
    for gold in golds:
        g = mixed_segmentation(gold)
        common = longest_common_substring(g, p)
        if common == 0:
            scores.append(0.0)
            continue
        precision, recall = common / len(p), common / len(g)
        scores.append(2 * precision * recall / (precision + recall))
    return max(scores) if scores else 0.0


def cmrc_em(prediction: str, golds: Sequence[str]) -> int:
    p = cmrc_remove_punctuation(prediction)
    return int(any(cmrc_remove_punctuation(g) == p for g in golds))


def cmrc_scores(predictions: Mapping[str, str], answers: Mapping[str, Sequence[str]]) -> dict:
    """CMRC 2018: ``{"exact_match", "f1", "average", "total", "skipped"}`` in percent over every
    question of ``answers``; a question with no prediction scores 0 (the script counts it as skipped)."""
    em = f = 0.0
    skipped = 0
    for qid, golds in answers.items():
        if qid not in predictions:
            skipped += 1
            continue
        em += cmrc_em(predictions[qid], golds)
        f += cmrc_f1(predictions[qid], golds)
    n = len(answers)
    em, f = (100.0 * em / n, 100.0 * f / n) if n else (0.0, 0.0)
    return {"exact_match": em, "f1": f, "average": (em + f) / 2, "total": n, "skipped": skipped}
