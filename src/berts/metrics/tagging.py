"""Token-tagging metrics: entity-level precision / recall / F1 exactly as seqeval computes them
(its default, conlleval-like mode and its strict mode), token accuracy, invalid-transition counts.

seqeval is not a dependency: its two entity readers are reproduced here rule for rule (and
tests/test_tagging_metrics.py checks equality with seqeval on many random sequences):

* default mode (seqeval's ``get_entities``, conlleval's): lenient. A chunk ends/starts by the
  prefix pair and the type; ``O I-PER`` still opens a PER entity, ``B-PER I-LOC`` is two entities.
  The scheme does not matter (any of IO, BIO, IOB1, BIOES), except that BMES's M is read as I
  (seqeval has no M: on raw ``B M B`` tags its default mode drops the first entity).
* strict mode (seqeval's ``mode="strict"`` with a ``scheme``): an entity counts only when it is
  well formed in that scheme (BIO: ``O I-PER`` is no entity; BIOES: ``B-PER`` must end with
  ``E-PER``). Our scheme names map to seqeval's: BIO -> IOB2, BIOES -> IOBES, IOB1 -> IOB1,
  BMES -> IOBES after M -> I.

An entity is (type, start, end) with ``end`` exclusive, per sentence. Scores: micro over all
entities; per type; macro (unweighted mean over types) and weighted (by support), as seqeval's
``classification_report``; a zero division gives 0 (seqeval's ``zero_division="warn"`` value).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from berts.data.tagging import count_invalid, scheme_name

# --------------------------------------------------------------------------------- default (conlleval)


def _end_of_chunk(prev_tag, tag, prev_type, type_) -> bool:
    """seqeval.metrics.sequence_labeling.end_of_chunk: did a chunk end just before this tag?"""
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag, tag, prev_type, type_) -> bool:
    """seqeval.metrics.sequence_labeling.start_of_chunk: does a chunk start at this tag?"""
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def _entities_default(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    out = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate(list(tags) + ["O"]):
        tag = chunk[0]
        type_ = chunk[1:].split("-", maxsplit=1)[-1] or "_"  # "O" -> "_", "B-PER" -> "PER", "PER"?: "ER"
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            out.append((prev_type, begin, i))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return out


# --------------------------------------------------------------------------------- strict

# (previous prefix set, current prefix set, type condition) patterns of seqeval.scheme
_ANY = frozenset("IOBES")
_SCHEMES = {
    "IOB2": dict(
        start={(_ANY, "B", "any")},
        inside={("B", "I", "same"), ("I", "I", "same")},
        end={("I", "O", "any"), ("I", "I", "diff"), ("I", "B", "any"), ("B", "O", "any"), ("B", "I", "diff"),
             ("B", "B", "any")}),
    "IOB1": dict(
        start={("O", "I", "any"), ("I", "I", "diff"), ("B", "I", "any"), ("I", "B", "same"), ("B", "B", "same")},
        inside={("B", "I", "same"), ("I", "I", "same")},
        end={("I", "I", "diff"), ("I", "O", "any"), ("I", "B", "any"), ("B", "O", "any"), ("B", "I", "diff"),
             ("B", "B", "same")}),
    "IOBES": dict(
        start={(_ANY, "B", "any"), (_ANY, "S", "any")},
        inside={("B", "I", "same"), ("B", "E", "same"), ("I", "I", "same"), ("I", "E", "same")},
        end={("S", _ANY, "any"), ("E", _ANY, "any")}),
}
_ALLOWED = {"IOB2": "IOB", "IOB1": "IOB", "IOBES": "IOBES"}
_SEQEVAL_NAME = {"BIO": "IOB2", "IOB1": "IOB1", "BIOES": "IOBES", "BMES": "IOBES"}


def _token(tag: str) -> tuple[str, str]:
    """seqeval.scheme.Token: (prefix, type), type stripped of '-' (``O`` -> ``_``)."""
    return tag[0], tag[1:].strip("-") or "_"


def _match(patterns, prev, cur) -> bool:
    for pp, cp, cond in patterns:
        if prev[0] in pp and cur[0] in cp and (cond == "any" or (cond == "same") == (prev[1] == cur[1])):
            return True
    return False


def _entities_strict(tags: Sequence[str], scheme: str) -> list[tuple[str, int, int]]:
    """seqeval.scheme.Tokens.entities, step for step (its odd corners included)."""
    pats = _SCHEMES[scheme]
    toks = [_token(t) for t in tags] + [("O", "_")]
    for t, tag in zip(toks, tags):
        if t[0] not in _ALLOWED[scheme]:
            raise ValueError(f"invalid tag {tag!r} for the {scheme} scheme (prefixes {', '.join(_ALLOWED[scheme])})")
    out = []
    i, prev = 0, ("O", "_")
    while i < len(toks):
        tok = toks[i]
        if _match(pats["start"], prev, tok):
            end, p = len(tags) - 1, tok  # forward over the inside tokens
            for j in range(i + 1, len(toks)):
                if _match(pats["inside"], p, toks[j]):
                    p = toks[j]
                else:
                    end = j
                    break
            if _match(pats["end"], toks[end - 1], toks[end]):
                out.append((tok[1], i, end))
            i = end
        else:
            i += 1
        prev = toks[i - 1]
    return out


# --------------------------------------------------------------------------------- public


def entities(tags: Sequence[str], mode: str = "default", scheme: str | None = None) -> list[tuple[str, int, int]]:
    """The entities of one tag sequence: [(type, start, end exclusive)]. ``mode="strict"`` needs
    ``scheme`` (BIO, IOB1, BIOES or BMES; the aliases IOB2, IOBES too)."""
    if mode not in ("default", "strict"):
        raise ValueError(f"mode must be 'default' or 'strict', got {mode!r}")
    name = None if scheme is None else scheme_name(scheme)
    if name == "BMES":  # seqeval knows no M: BMES is read as BIOES in both modes
        tags = ["I" + t[1:] if t.startswith("M") else t for t in tags]
    if mode == "default":
        return _entities_default(tags)
    if name is None:
        raise ValueError("strict mode needs a scheme (BIO, IOB1, BIOES or BMES)")
    if name not in _SEQEVAL_NAME:
        raise ValueError(f"strict mode has no {name} scheme; use BIO, IOB1, BIOES or BMES")
    return _entities_strict(tags, _SEQEVAL_NAME[name])


def _prf(tp: int, pred: int, true: int) -> dict:
    p = tp / pred if pred else 0.0
    r = tp / true if true else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "support": true}


def entity_scores(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], mode: str = "default",
                  scheme: str | None = None) -> dict:
    """Entity-level scores over sentences: ``{"precision", "recall", "f1", "support"}`` (micro),
    plus ``"per_type": {type: {...}}``, ``"macro"`` and ``"weighted"`` (seqeval's report averages),
    and the raw counts ``"tp"``, ``"predicted"``, ``"true"``."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold sentences but {len(y_pred)} predicted")
    gold, pred = set(), set()
    for k, (t, p) in enumerate(zip(y_true, y_pred)):
        if len(t) != len(p):
            raise ValueError(f"sentence {k}: {len(t)} gold tags but {len(p)} predicted")
        gold |= {(k,) + e for e in entities(t, mode, scheme)}
        pred |= {(k,) + e for e in entities(p, mode, scheme)}
    tp_set = gold & pred
    per_type = {}
    count = Counter(e[1] for e in gold), Counter(e[1] for e in pred), Counter(e[1] for e in tp_set)
    for typ in sorted(set(count[0]) | set(count[1])):
        per_type[typ] = _prf(count[2][typ], count[1][typ], count[0][typ])
    out = _prf(len(tp_set), len(pred), len(gold))
    out.update(tp=len(tp_set), predicted=len(pred), true=len(gold), per_type=per_type)
    keys = ("precision", "recall", "f1")
    rows = list(per_type.values())
    total = sum(r["support"] for r in rows)
    out["macro"] = {k: (sum(r[k] for r in rows) / len(rows) if rows else 0.0) for k in keys}
    out["macro"]["support"] = total
    out["weighted"] = {k: (sum(r[k] * r["support"] for r in rows) / total if total else 0.0) for k in keys}
    out["weighted"]["support"] = total
    return out


NONE = "(none)"  # the entity confusion's extra row / column: no gold entity there / nothing predicted there


def entity_confusion(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], mode: str = "default",
                     scheme: str | None = None) -> dict:
    """Which type each gold entity was predicted as, read by overlap (not exact spans):
    ``{"labels": [types..., "(none)"], "matrix": [[count]], "missed": {type: n}, "spurious": {type: n}}``
    with rows the gold type and columns the predicted one (sklearn's layout), square:

    * a gold entity counts once, in the column of the predicted entity overlapping it most (the
      earlier one on a tie), whatever its boundaries: the diagonal is "found with the right type",
      a boundary error included (the entity F1 counts exact spans only);
    * a gold entity that no predicted entity overlaps is **missed**: column "(none)";
    * a predicted entity that overlaps no gold entity is **spurious**: row "(none)". (A predicted
      entity overlapping a gold one that another prediction matched better is in no cell.)"""
    gold_by, pred_by = [], []
    for k, (t, p) in enumerate(zip(y_true, y_pred, strict=True)):
        gold_by.append(entities(t, mode, scheme))
        pred_by.append(entities(p, mode, scheme))
    types = sorted({e[0] for es in gold_by + pred_by for e in es})
    labels = types + [NONE]
    index = {name: i for i, name in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for gold, pred in zip(gold_by, pred_by):
        for g_type, a, b in gold:
            overlaps = [(min(b, d) - max(a, c), -c, p_type) for p_type, c, d in pred if min(b, d) > max(a, c)]
            matrix[index[g_type]][index[max(overlaps)[2]] if overlaps else index[NONE]] += 1
        for p_type, c, d in pred:
            if not any(min(b, d) > max(a, c) for _, a, b in gold):
                matrix[index[NONE]][index[p_type]] += 1
    return {"labels": labels, "matrix": matrix,
            "missed": {t: matrix[index[t]][index[NONE]] for t in types},
            "spurious": {t: matrix[index[NONE]][index[t]] for t in types}}


def entity_report(report: dict) -> dict:
    """A tagging report as berts.metrics.report's shape (``classes`` = entity types, ``macro``,
    and the entity confusion as ``confusion`` with its own ``confusion_labels``), so that
    ``print_report`` and ``save_report_png`` print and draw it as classification's."""
    classes = [{"name": t, **{k: round(float(r[k]), 6) for k in ("precision", "recall", "f1")},
                "support": int(r["support"])} for t, r in report["per_type"].items()]
    out = {"classes": classes, "macro": {k: round(float(report["macro"][k]), 6) for k in ("precision", "recall", "f1")}}
    conf = report.get("entity_confusion")
    if conf is not None:
        out["confusion"], out["confusion_labels"] = conf["matrix"], conf["labels"]
    return out


def token_accuracy(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> float:
    """The fraction of tokens whose tag is right, over all sentences (seqeval's ``accuracy_score``)."""
    right = total = 0
    for t, p in zip(y_true, y_pred, strict=True):
        if len(t) != len(p):
            raise ValueError(f"{len(t)} gold tags but {len(p)} predicted")
        right += sum(a == b for a, b in zip(t, p))
        total += len(t)
    return right / total if total else 0.0


def tagging_report(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], scheme: str | None = None,
                   mode: str = "default") -> dict:
    """Everything an evaluation reports: the entity scores (``mode``), token accuracy, the entity
    confusion (:func:`entity_confusion`), and the
    invalid transitions of the predictions and of the gold tags under ``scheme`` (counts by kind,
    e.g. ``{"O -> I-PER": 3}``); no invalid counts when ``scheme`` is None."""
    out = entity_scores(y_true, y_pred, mode=mode, scheme=scheme)
    out["accuracy"] = token_accuracy(y_true, y_pred)
    out["entity_confusion"] = entity_confusion(y_true, y_pred, mode=mode, scheme=scheme)
    out["mode"] = mode
    if scheme is not None:
        out["scheme"] = scheme_name(scheme)
        pred_bad: Counter = count_invalid(y_pred, scheme)
        gold_bad: Counter = count_invalid(y_true, scheme)
        out["invalid_transitions"] = {"predicted": sum(pred_bad.values()), "gold": sum(gold_bad.values()),
                                      "predicted_by_kind": dict(pred_bad.most_common()),
                                      "gold_by_kind": dict(gold_bad.most_common())}
    return out
