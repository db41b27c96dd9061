"""berts.embed.metrics: STS correlations (= scipy), retrieval measures (hand cases, = pytrec_eval on
random runs), BEIR readers with one-line errors."""
import json
import math

import numpy as np
import pytest

from berts.embed.metrics import (
    evaluate_retrieval,
    pearson,
    read_beir,
    read_qrels,
    retrieval_scores,
    spearman,
    sts_scores,
    top_k,
)
from berts.errors import UserError


def test_correlations_equal_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 40).astype(float)  # many ties
    b = a + rng.normal(0, 1, 40)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert pearson(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 1, 0]) == pytest.approx(-1.0)


def test_sts_scores_are_correlations_of_the_cosine():
    e1 = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    e2 = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cosines 1, 0.7071, 0
    s = sts_scores(e1, e2, [5.0, 2.0, 1.0])
    assert s["spearman"] == pytest.approx(1.0)
    cos = np.array([1.0, 1 / math.sqrt(2), 0.0])
    assert s["pearson"] == pytest.approx(np.corrcoef(cos, [5.0, 2.0, 1.0])[0, 1])


def test_retrieval_measures_by_hand():
    run = {"q": {"d1": 0.9, "d2": 0.8, "d3": 0.7, "d4": 0.6}}
    qrels = {"q": {"d2": 2, "d4": 1, "d5": 1, "d1": 0}, "empty": {"d1": 0}}  # "empty": no relevant doc: skipped
    s = retrieval_scores(run, qrels, ks=(1, 10))
    assert s["queries"] == 1
    assert s["recall@1"] == 0.0
    assert s["recall@10"] == pytest.approx(2 / 3)
    assert s["mrr@10"] == pytest.approx(1 / 2)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)  # d2 at rank 2, d4 at rank 4
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert s["ndcg@10"] == pytest.approx(dcg / idcg)
    assert s["map"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    # a judged query with no run counts 0; ties go by doc id, descending (trec_eval)
    s2 = retrieval_scores({"q": {"a": 1.0, "b": 1.0}}, {"q": {"a": 1}, "r": {"a": 1}}, ks=(1,))
    assert s2["recall@1"] == 0.0 and s2["mrr@10"] == pytest.approx(0.25)  # q: b first, a at rank 2; r: 0


def test_retrieval_measures_equal_pytrec_eval_on_random_runs():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(1)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(25):
        rel = rng.choice(60, size=rng.integers(1, 8), replace=False)
        qrels[f"q{q}"] = {docs[j]: int(rng.integers(1, 4)) for j in rel}
        qrels[f"q{q}"][docs[int(rng.integers(60))]] = 0  # a judged non-relevant doc (or a relevant one made 0)
        if not any(r > 0 for r in qrels[f"q{q}"].values()):
            qrels[f"q{q}"][docs[rel[0]]] = 1
        shown = rng.choice(60, size=40, replace=False)
        run[f"q{q}"] = {docs[j]: float(rng.random()) for j in shown}
    ours = retrieval_scores(run, qrels, ks=(1, 10, 100))
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"recall.1,10,100", "ndcg_cut.10", "map"})
    ref = ev.evaluate(run)
    cut = {q: dict(sorted(r.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10]) for q, r in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    mean = lambda name, res: float(np.mean([v[name] for v in res.values()]))
    assert ours["recall@1"] == pytest.approx(mean("recall_1", ref), abs=1e-9)
    assert ours["recall@10"] == pytest.approx(mean("recall_10", ref), abs=1e-9)
    assert ours["recall@100"] == pytest.approx(mean("recall_100", ref), abs=1e-9)
    assert ours["ndcg@10"] == pytest.approx(mean("ndcg_cut_10", ref), abs=1e-9)
    assert ours["map"] == pytest.approx(mean("map", ref), abs=1e-9)
    assert ours["mrr@10"] == pytest.approx(mean("recip_rank", rr), abs=1e-9)


def _beir(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"_id": "a", "title": "Cats", "text": "cats purr"}) + "\n"
        + json.dumps({"_id": "b", "title": "", "text": "dogs bark"}) + "\n"
        + json.dumps({"_id": "c", "text": "birds sing"}) + "\n")
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "purr"}) + "\n\n"
                                            + json.dumps({"_id": "2", "text": "bark"}) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\ta\t1\n2\tb\t1\n2\tc\t0\n")
    return tmp_path


def test_beir_reader_and_evaluation(tmp_path):
    corpus, queries, qrels = read_beir(_beir(tmp_path))
    assert corpus["a"] == {"title": "Cats", "text": "cats purr"} and corpus["c"]["title"] == ""
    assert queries == {"1": "purr", "2": "bark"}
    assert qrels == {"1": {"a": 1}, "2": {"b": 1, "c": 0}}
    vocab = ["cats", "purr", "dogs", "bark", "birds", "sing"]

    def encode(texts):  # bag of words: a perfect retriever here
        return np.array([[t.lower().split().count(w) + 1e-3 for w in vocab] for t in texts])

    s = evaluate_retrieval(encode, corpus, queries, qrels, k=2, ks=(1,))
    assert s == {"recall@1": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0, "map": 1.0, "queries": 2}
    scores, idx = top_k(np.eye(3)[:1], np.array([[0.0, 1, 0], [1, 0.1, 0], [1, 0, 0]]), 2)
    assert idx.tolist() == [[2, 1]] and scores[0, 0] == pytest.approx(1.0)


def test_beir_bad_lines_fail_in_one_line(tmp_path):
    d = _beir(tmp_path)
    (d / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "x"}) + "\n{oops\n")
    with pytest.raises(UserError, match=r"queries.jsonl:2: invalid JSON"):
        read_beir(d)
    (d / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "x"}) + "\n" + json.dumps({"id": "2"}) + "\n")
    with pytest.raises(UserError, match=r"queries.jsonl:2: no '_id' field"):
        read_beir(d)
    (d / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "x"}) + "\n" + json.dumps({"_id": "2", "text": "y"}))
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\ta\tyes\n")
    with pytest.raises(UserError, match=r"test.tsv:2: score must be an integer, got 'yes'"):
        read_qrels(d / "qrels" / "test.tsv")
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\tzz\t1\n")
    with pytest.raises(UserError, match=r"test.tsv: corpus id 'zz' is not in"):
        read_beir(d)
    with pytest.raises(UserError, match=r"dev.tsv: no such file"):
        read_beir(d, split="dev")
