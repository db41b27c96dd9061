"""Evaluation of sentence embeddings: STS and retrieval.

* STS: Spearman and Pearson correlation of the cosine of two texts' embeddings against gold
  scores (numpy only; equal to scipy.stats in tests/test_embed_metrics.py).
* Retrieval, BEIR's layout: a folder with ``corpus.jsonl`` ({"_id", "title", "text"} a line),
  ``queries.jsonl`` ({"_id", "text"} a line) and ``qrels/<split>.tsv`` (``query-id<TAB>corpus-id
  <TAB>score`` with a header line). Bad lines fail in one line naming file:line.
* Retrieval scores, trec_eval's definitions (equal to pytrec_eval on random runs in the tests):
  a document is relevant when its qrels score is >= 1; a run ranks by score, ties broken by
  document id, descending (as trec_eval does); each measure is averaged over the queries that
  have a relevant document (a query with no run counts 0: BEIR's convention).
  - recall@k: relevant documents in the top k / relevant documents;
  - MRR@10: 1 / rank of the first relevant document in the top 10 (0 when none);
  - nDCG@10: DCG = sum over the top 10 of gain / log2(rank + 1), gain = the qrels score;
    divided by the DCG of the ideal ranking (the judged scores sorted);
  - MAP: mean over the relevant documents of the precision at the rank each is retrieved
    (0 for one not retrieved), the whole run (not cut).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from berts.errors import UserError


# ------------------------------------------------------------------------------------------ STS
def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (as scipy.stats.rankdata)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"pearson needs two equal-length sequences of at least 2 values, got {len(a)} and {len(b)}")
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def spearman(a, b) -> float:
    return pearson(_ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64)))


def cosine_rows(x, y) -> np.ndarray:
    """Row-wise cosine of [n, d] and [n, d] -> [n]."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    nx = np.linalg.norm(x, axis=1).clip(min=1e-12)
    ny = np.linalg.norm(y, axis=1).clip(min=1e-12)
    return (x * y).sum(1) / (nx * ny)


def sts_scores(emb1, emb2, gold) -> dict[str, float]:
    """Embeddings of the two sides [n, d] each and gold scores [n] -> {"spearman", "pearson"}
    of the cosine against gold."""
    cos = cosine_rows(emb1, emb2)
    return {"spearman": spearman(cos, gold), "pearson": pearson(cos, gold)}


# ------------------------------------------------------------------------------------ BEIR layout
def _jsonl(path: Path, fields: tuple[str, ...]):
    """(line number, object) for each non-blank line, with the ``fields`` checked."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{n}: invalid JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{n}: a JSON object expected, got {type(obj).__name__}")
            for key in fields:
                if key not in obj:
                    raise UserError(f"{path}:{n}: no {key!r} field")
            yield n, obj


def read_corpus(path) -> dict[str, dict[str, str]]:
    """corpus.jsonl -> {doc id: {"title", "text"}} in file order."""
    out: dict[str, dict[str, str]] = {}
    for n, obj in _jsonl(path, ("_id", "text")):
        doc = str(obj["_id"])
        if doc in out:
            raise UserError(f"{path}:{n}: document id {doc!r} appears twice")
        if not isinstance(obj["text"], str) or not isinstance(obj.get("title", ""), str):
            raise UserError(f"{path}:{n}: 'text' and 'title' must be strings")
        out[doc] = {"title": obj.get("title") or "", "text": obj["text"]}
    return out


def doc_text(doc: dict[str, str]) -> str:
    """A corpus entry as one text: title and text joined by a space (BEIR's convention)."""
    return f"{doc['title']} {doc['text']}".strip() if doc.get("title") else doc["text"]


def read_queries(path) -> dict[str, str]:
    """queries.jsonl -> {query id: text}."""
    out: dict[str, str] = {}
    for n, obj in _jsonl(path, ("_id", "text")):
        q = str(obj["_id"])
        if q in out:
            raise UserError(f"{path}:{n}: query id {q!r} appears twice")
        if not isinstance(obj["text"], str):
            raise UserError(f"{path}:{n}: 'text' must be a string")
        out[q] = obj["text"]
    return out


def read_qrels(path) -> dict[str, dict[str, int]]:
    """qrels/<split>.tsv (header ``query-id corpus-id score``) -> {query id: {doc id: score}}."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    out: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n\r")
            if not line.strip():
                continue
            cols = line.split("\t")
            if n == 1 and cols[0].strip().lower() in ("query-id", "query_id", "qid"):
                continue  # the header
            if len(cols) != 3:
                raise UserError(f"{path}:{n}: 3 tab-separated columns expected (query-id, corpus-id, score), "
                                f"got {len(cols)}")
            try:
                score = int(cols[2])
            except ValueError:
                raise UserError(f"{path}:{n}: score must be an integer, got {cols[2]!r}") from None
            out.setdefault(cols[0], {})[cols[1]] = score
    return out


def read_beir(folder, split: str = "test"):
    """A BEIR folder -> (corpus, queries, qrels of ``split``); every qrels id must exist."""
    folder = Path(folder)
    corpus = read_corpus(folder / "corpus.jsonl")
    queries = read_queries(folder / "queries.jsonl")
    qpath = folder / "qrels" / f"{split}.tsv"
    qrels = read_qrels(qpath)
    for q, docs in qrels.items():
        if q not in queries:
            raise UserError(f"{qpath}: query id {q!r} is not in {folder / 'queries.jsonl'}")
        for d in docs:
            if d not in corpus:
                raise UserError(f"{qpath}: corpus id {d!r} is not in {folder / 'corpus.jsonl'}")
    return corpus, queries, qrels


# ------------------------------------------------------------------------------- retrieval scores
def _ranked(scores: dict[str, float]) -> list[str]:
    """Doc ids by score descending, ties by doc id descending (trec_eval's order)."""
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def query_scores(ranking: list[str], rels: dict[str, int], ks=(1, 10, 100)) -> dict[str, float]:
    """One query's measures: its ranked doc ids and its qrels."""
    relevant = {d for d, r in rels.items() if r >= 1}
    n_rel = len(relevant)
    out = {}
    for k in ks:
        out[f"recall@{k}"] = sum(d in relevant for d in ranking[:k]) / n_rel
    first = next((i for i, d in enumerate(ranking[:10]) if d in relevant), None)
    out["mrr@10"] = 0.0 if first is None else 1.0 / (first + 1)
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:10]) if rels.get(d, 0) > 0)
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:10]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    out["ndcg@10"] = dcg / idcg
    hits, ap = 0, 0.0
    for i, d in enumerate(ranking):
        if d in relevant:
            hits += 1
            ap += hits / (i + 1)
    out["map"] = ap / n_rel
    return out


def retrieval_scores(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]],
                     ks=(1, 10, 100)) -> dict[str, float]:
    """run {query id: {doc id: score}} and qrels -> the mean of each measure over the queries with
    a relevant document; ``queries``: how many."""
    per = []
    for q, rels in qrels.items():
        if not any(r >= 1 for r in rels.values()):
            continue
        per.append(query_scores(_ranked(run.get(q, {})), rels, ks))
    if not per:
        raise ValueError("no query has a relevant document in the qrels")
    out = {key: float(np.mean([p[key] for p in per])) for key in per[0]}
    out["queries"] = len(per)
    return out


def top_k(query_emb, doc_emb, k: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Cosine top k: [q, d] and [n, d] -> (scores [q, k'], indices [q, k']), k' = min(k, n), best first."""
    q = np.asarray(query_emb, dtype=np.float32)
    d = np.asarray(doc_emb, dtype=np.float32)
    q = q / np.linalg.norm(q, axis=1, keepdims=True).clip(min=1e-12)
    d = d / np.linalg.norm(d, axis=1, keepdims=True).clip(min=1e-12)
    sims = q @ d.T  # [q, n]
    k = min(k, d.shape[0])
    idx = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < d.shape[0] else np.tile(np.arange(k), (len(q), 1))
    part = np.take_along_axis(sims, idx, 1)
    order = np.argsort(-part, axis=1, kind="stable")
    return np.take_along_axis(part, order, 1), np.take_along_axis(idx, order, 1)


def evaluate_retrieval(encode, corpus: dict[str, dict[str, str]], queries: dict[str, str],
                       qrels: dict[str, dict[str, int]], k: int = 100, ks=(1, 10, 100)) -> dict[str, float]:
    """``encode``: texts -> [n, d] (an Encoder's encode) -> retrieval_scores of the cosine top k
    of each judged query over the corpus."""
    doc_ids = list(corpus)
    qids = [q for q in qrels if q in queries]
    docs = encode([doc_text(corpus[d]) for d in doc_ids])
    qs = encode([queries[q] for q in qids])
    scores, idx = top_k(qs, docs, k)
    run = {q: {doc_ids[j]: float(s) for s, j in zip(scores[i], idx[i])} for i, q in enumerate(qids)}
    return retrieval_scores(run, qrels, ks)
