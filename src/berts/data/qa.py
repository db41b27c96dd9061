"""Extractive question answering data: SQuAD-style readers, windowed features with answer token
positions, and the postprocessing from start/end logits back to answer text.

Readers (:func:`read_squad`, :func:`read_qa_jsonl`, :func:`read_qa`) give :class:`QAExample` rows;
every answer must be the context's text at its ``answer_start`` (a UserError naming the file and
the question id, or the JSONL line, otherwise). SQuAD v2.0's ``is_impossible`` questions have no answers.

Features (:func:`qa_features`) are transformers' run_qa.py preprocessing on our tokenizer's
``tokenizers`` backend: ``[CLS] question [SEP] context window [SEP]``, the context cut into windows
of ``max_length`` tokens overlapping by ``doc_stride`` tokens (the backend's truncation
``only_second`` with a stride: the same windows as transformers' ``return_overflowing_tokens``),
each token's character offsets into the context (None for question and special tokens), and
``start_positions`` / ``end_positions``: the answer's first and last token, or 0 ([CLS]) when the
window does not hold the whole answer or the question has none. :func:`qa_batch` pads them into tensors.

Postprocessing (:func:`postprocess`) is run_qa.py's too: the ``n_best`` best starts and ends of
every window, spans inside the context of at most ``max_answer_length`` tokens, scored by the
sum of the two logits, best first over all windows of an example; back to character offsets and
text. For SQuAD v2.0 the null score is the smallest ``start[0] + end[0]`` over the windows, and
``null_score_diff`` = null score - best span score: answer "" when it is above a threshold. Passing
the diffs as ``na_probs`` to berts.metrics.qa.squad_v2_scores gives the best threshold on dev.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from berts.errors import UserError
from berts.util.fileio import read_text, text_lines
from berts.data.tagging import MODEL_KEYS, pad_batch


@dataclass
class QAExample:
    """One question on one context; ``answers`` are (text, character start) pairs ([] = no answer)."""
    id: str
    question: str
    context: str
    answers: list[tuple[str, int]] = field(default_factory=list)
    source: str = ""
    line: int | None = None

    @property
    def is_impossible(self) -> bool:
        return not self.answers


def _check_answer(ex: QAExample, text, start, where: str) -> tuple[str, int]:
    if not isinstance(text, str) or isinstance(start, bool) or not isinstance(start, int):
        raise UserError(f"{where}: an answer needs a string 'text' and an integer 'answer_start'")
    if ex.context[start:start + len(text)] != text:
        found = ex.context[start:start + len(text)]
        raise UserError(f"{where}: answer {text!r} does not match the context at answer_start {start} "
                        f"(the context has {found!r} there)")
    return text, start


def read_squad(path: str | os.PathLike) -> list[QAExample]:
    """SQuAD v1.1 / v2.0 JSON: ``{"data": [{"paragraphs": [{"context", "qas": [{"id", "question",
    "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}``. For v2.0 impossible questions
    the ``answers`` list is empty (``plausible_answers`` are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise UserError(f"{path}: not a SQuAD file (expected {{\"data\": [articles]}})")
    out = []
    for article in doc["data"]:
        for para in article.get("paragraphs", []):
            context = para.get("context")
            if not isinstance(context, str):
                raise UserError(f"{path}: a paragraph of {article.get('title', '?')!r} has no 'context' string")
            for qa in para.get("qas", []):
                qid = str(qa.get("id", ""))
                where = f"{path}: question {qid!r}"
                if not isinstance(qa.get("question"), str):
                    raise UserError(f"{where}: no 'question' string")
                ex = QAExample(qid, qa["question"], context, [], str(path))
                if not qa.get("is_impossible", False):
                    for a in qa.get("answers", []):
                        ex.answers.append(_check_answer(ex, a.get("text"), a.get("answer_start"), where))
                out.append(ex)
    return out


def read_qa_jsonl(path: str | os.PathLike) -> list[QAExample]:
    """JSONL, one question a line: ``{"id"?, "question", "context", "answers"}`` where ``answers``
    is ``{"text": [...], "answer_start": [...]}`` (the ``datasets`` layout) or a list of
    ``{"text", "answer_start"}``; empty for no answer. A missing id is the line number."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    out = []
    with text_lines(path) as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as e:
                raise UserError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("question"), str) \
                    or not isinstance(row.get("context"), str):
                raise UserError(f"{where}: a row needs 'question' and 'context' strings")
            out.append(_row_example(row, where, path, n))
    return out


def _row_example(row: dict, where: str, path, n: int) -> QAExample:
    """One JSONL / parquet / ``datasets`` row -> a QAExample (answers checked against the context)."""
    qid = row.get("id")
    ex = QAExample(str(n if qid is None else qid), row["question"], row["context"], [], str(path), n)
    answers = row.get("answers", [])
    if isinstance(answers, dict):
        texts, starts = answers.get("text", []), answers.get("answer_start", [])
        if len(texts) != len(starts):
            raise UserError(f"{where}: {len(texts)} answer texts but {len(starts)} answer_start values")
        answers = [{"text": t, "answer_start": s} for t, s in zip(texts, starts)]
    if not isinstance(answers, list):
        raise UserError(f"{where}: 'answers' must be a list or {{'text': [...], 'answer_start': [...]}}")
    for a in answers:
        if not isinstance(a, dict):
            raise UserError(f"{where}: an answer must be {{'text', 'answer_start'}}")
        ex.answers.append(_check_answer(ex, a.get("text"), a.get("answer_start"), where))
    return ex


def read_qa_rows(path: str | os.PathLike) -> list[QAExample]:
    """A parquet file or a ``datasets`` directory (``save_to_disk``) with the JSONL's columns
    (``id``?, ``question``, ``context``, ``answers``); a row's "line" is its 1-based row number."""
    path = Path(path)
    if path.is_dir():
        try:
            import datasets
        except ImportError:
            raise UserError(f"{path}: a directory; reading a saved dataset needs the datasets package") from None
        try:
            rows = datasets.load_from_disk(str(path))
        except Exception as exc:  # noqa: BLE001  (its own errors name no line; say what it is)
            raise UserError(f"{path}: not a dataset saved with save_to_disk ({type(exc).__name__})") from None
        if isinstance(rows, datasets.DatasetDict):
            raise UserError(f"{path}: a DatasetDict ({', '.join(rows)}): give one split's directory")
    elif not path.is_file():
        raise UserError(f"{path}: no such file")
    else:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
        rows = pq.read_table(path).to_pylist()
    out = []
    for n, row in enumerate(rows, 1):
        where = f"{path}:{n}"
        if not isinstance(row.get("question"), str) or not isinstance(row.get("context"), str):
            raise UserError(f"{where}: a row needs 'question' and 'context' strings")
        out.append(_row_example(dict(row), where, path, n))
    return out


def read_qa(path: str | os.PathLike) -> list[QAExample]:
    """``.jsonl`` -> :func:`read_qa_jsonl`; ``.parquet`` or a directory (``datasets``'
    ``save_to_disk``) -> :func:`read_qa_rows`; else SQuAD JSON (:func:`read_squad`)."""
    p = Path(path)
    if p.suffix.lower() == ".jsonl":
        return read_qa_jsonl(p)
    if p.suffix.lower() == ".parquet" or p.is_dir():
        return read_qa_rows(p)
    return read_squad(p)


# --------------------------------------------------------------------------------------------- features

def qa_features(tokenizer, examples: Sequence[QAExample], *, max_length: int = 384, doc_stride: int = 128,
                max_question_tokens: int = 64) -> list[dict]:
    """Examples -> one dict per window: ``input_ids``, ``token_type_ids``, ``attention_mask``,
    ``offsets`` (a (start, end) character span of the context per token, None elsewhere),
    ``example`` (the index into ``examples``), ``start_positions`` / ``end_positions`` (token
    indices; 0 = [CLS] when the window misses the answer). A question longer than
    ``max_question_tokens`` is cut to that many tokens. Unpadded: the collator pads."""
    backend = getattr(tokenizer, "backend", tokenizer)
    # run_qa.py strips leading spaces (they would waste window room); a long question is cut
    questions = [ex.question.lstrip() for ex in examples]
    for k, q in enumerate(backend.encode_batch(questions, add_special_tokens=False)):
        if len(q.ids) > max_question_tokens:
            questions[k] = questions[k][:q.offsets[max_question_tokens - 1][1]]
    longest = max((len(q.ids) for q in backend.encode_batch(questions, add_special_tokens=False)), default=0)
    room = max_length - longest - 3  # [CLS] question [SEP] context [SEP]
    if room < 1:
        raise UserError(f"max length {max_length} leaves no room for the context after a question of "
                        f"{longest} tokens (lower max_question_tokens or raise max_length)")
    if doc_stride >= room:
        raise UserError(f"doc stride {doc_stride} must be below the context room of a window ({room} tokens)")
    # the backend's own windowing: "only_second" cuts the context, each overflow overlapping by doc_stride
    backend.enable_truncation(max_length, stride=doc_stride, strategy="only_second", direction="right")
    try:
        encodings = backend.encode_batch([(q, ex.context) for q, ex in zip(questions, examples)])
    finally:
        backend.no_truncation()
    out = []
    for k, (ex, first) in enumerate(zip(examples, encodings)):
        for enc in [first] + list(first.overflowing):
            seq = enc.sequence_ids
            offsets = [tuple(o) if s == 1 else None for o, s in zip(enc.offsets, seq)]
            feat = {"input_ids": list(enc.ids), "token_type_ids": list(enc.type_ids),
                    "attention_mask": list(enc.attention_mask), "offsets": offsets, "example": k}
            feat["start_positions"], feat["end_positions"] = _answer_tokens(offsets, ex)
            out.append(feat)
    return out


def qa_batch(features: Sequence[dict], pad_id: int, pad_to_multiple_of: int | None = None) -> dict:
    """Windows -> [B, L] LongTensors (right-padded: ``pad_id``, type id 0, attention 0) plus
    ``start_positions`` / ``end_positions`` [B] -- the names transformers' QA models take."""
    import torch

    out = pad_batch(features, pad_id, pad_to_multiple_of, keys=MODEL_KEYS)
    for key in ("start_positions", "end_positions"):
        if key in features[0]:
            out[key] = torch.tensor([f[key] for f in features], dtype=torch.long)
    return out


def _answer_tokens(offsets: list, ex: QAExample) -> tuple[int, int]:
    """The first answer's (start token, end token) in this window, or (0, 0)."""
    if not ex.answers:
        return 0, 0
    text, start_char = ex.answers[0]
    end_char = start_char + len(text)
    ctx = [i for i, o in enumerate(offsets) if o is not None]
    if not ctx:
        return 0, 0
    first, last = ctx[0], ctx[-1]
    if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
        return 0, 0  # the answer is not wholly in this window
    s = first
    while s <= last and offsets[s][0] <= start_char:
        s += 1
    e = last
    while e >= first and offsets[e][1] >= end_char:
        e -= 1
    return s - 1, e + 1


# --------------------------------------------------------------------------------------------- postprocess

def postprocess(examples: Sequence[QAExample], features: Sequence[dict], start_logits, end_logits, *,
                n_best: int = 20, max_answer_length: int = 30, version_2: bool = False,
                null_threshold: float = 0.0) -> list[dict]:
    """Window logits ([F, L] arrays or lists, one row per feature, padded rows fine) -> one answer
    per example: ``{"id", "text", "start", "end" (character offsets into the context, end
    exclusive), "score" (start + end logit), "probability" (softmax over the n-best), "nbest": [...]}``,
    and for ``version_2`` ``"null_score_diff"`` with ``text`` "" (start = end = -1) when the diff is
    above ``null_threshold``."""
    by_example: dict[int, list[int]] = {}
    for i, f in enumerate(features):
        by_example.setdefault(f["example"], []).append(i)
    results = []
    for k, ex in enumerate(examples):
        spans = []
        null = None
        for i in by_example.get(k, []):
            offsets = features[i]["offsets"]
            n = len(offsets)
            s_log = np.asarray(start_logits[i], dtype=np.float64)[:n]
            e_log = np.asarray(end_logits[i], dtype=np.float64)[:n]
            null_i = s_log[0] + e_log[0]
            null = null_i if null is None else min(null, null_i)
            starts = np.argsort(s_log)[::-1][:n_best]
            ends = np.argsort(e_log)[::-1][:n_best]
            for s in starts:
                for e in ends:
                    if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    a, b = offsets[s][0], offsets[e][1]
                    spans.append({"text": ex.context[a:b], "start": int(a), "end": int(b),
                                  "score": float(s_log[s] + e_log[e])})
        spans.sort(key=lambda x: -x["score"])
        spans = spans[:n_best]
        if spans:
            scores = np.array([x["score"] for x in spans])
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
            for x, p in zip(spans, probs):
                x["probability"] = float(p)
        best = spans[0] if spans else {"text": "", "start": -1, "end": -1, "score": float("-inf"), "probability": 0.0}
        res = {"id": ex.id, **{k2: best[k2] for k2 in ("text", "start", "end", "score", "probability")},
               "nbest": spans}
        if version_2:
            null = float("inf") if null is None else float(null)
            diff = null - best["score"]
            res["null_score_diff"] = diff
            res["null_score"] = null
            if diff > null_threshold:
                res.update(text="", start=-1, end=-1, score=null)
        results.append(res)
    return results
