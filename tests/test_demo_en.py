"""The demo's English half and its report, in pieces (the end-to-end --quick run is
tests/test_demo.py): the Brown first-sentence retrieval set, the TF-IDF retrieval baseline, the
progress lines, the goals summary and the budget line."""
import json

import pytest

from berts.demo import report as rep
from berts.demo.steps import AnnouncedPlan, Steps, clock
from berts.util.report import Report


def test_brown_first_sentence_set(tmp_path):
    from berts.data.retrieval_sets import brown_first_sentence, brown_pairs

    long = "Every one of the men on the bank watched the water rise over the old stone wall by the mill."
    ok = f"The river was high this spring and the boats stayed in. {long} {long}"
    short_first = f"Too short here. {long} {long}"  # first sentence under 5 words
    two = f"The river was high this spring and the boats stayed in. {long}"  # 2 sentences
    short_rest = "The river was high this spring and the boats stayed in. It rose. It fell."  # rest < 20 words
    files = [[ok, short_first, two, ok], *[[ok]] * 10, [short_rest, ok]]  # files 0 and 10: test; 1 and 11: dev
    text = tmp_path / "brown.txt"
    text.write_text("\n\n".join("\n".join(f) for f in files) + "\n", encoding="utf-8")
    pairs = brown_pairs(text)
    assert [k for k, _, _ in pairs["test"]] == ["b0p0", "b0p3", "b10p0"]
    assert [k for k, _, _ in pairs["dev"]] == ["b1p0", "b11p1"]
    assert len(pairs["train"]) == 8
    _, q, d = pairs["test"][0]
    assert q == "The river was high this spring and the boats stayed in." and d == f"{long} {long}"
    got = brown_first_sentence(text, tmp_path / "beir", "test", limit=2)
    assert {k: v for k, v in got.items() if k != "folder"} == {"split": "test", "queries": 2, "documents": 2, "of": 3}
    corpus = [json.loads(line) for line in (tmp_path / "beir" / "corpus.jsonl").read_text().splitlines()]
    queries = [json.loads(line) for line in (tmp_path / "beir" / "queries.jsonl").read_text().splitlines()]
    assert [c["_id"] for c in corpus] == [q["_id"] for q in queries] == ["b0p0", "b0p3"]
    assert (tmp_path / "beir" / "qrels" / "test.tsv").read_text() == \
        "query-id\tcorpus-id\tscore\nb0p0\tb0p0\t1\nb0p3\tb0p3\t1\n"
    with pytest.raises(ValueError, match="split 'val'"):
        brown_first_sentence(text, tmp_path / "x", "val")


def test_tfidf_retrieval_is_the_cosine_of_sklearns_vectors():
    pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer

    from berts.embed.metrics import retrieval_scores
    from berts.tools.baselines import tfidf_retrieval

    corpus = {"a": "the river and the boats", "b": "the church and the priest", "c": "soldiers at war in the field"}
    queries = {"qa": "boats on the river", "qb": "a priest", "qc": "a field of rain"}
    run = tfidf_retrieval(corpus, queries, k=2)
    assert [list(run[q]) for q in queries] == [["a", "b"], ["b", "a"], ["c", "a"]]  # ties: corpus order
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(corpus.values())
    d, q = vec.transform(corpus.values()).toarray(), vec.transform(["boats on the river"]).toarray()[0]
    assert run["qa"]["a"] == pytest.approx(float(d[0] @ q), abs=1e-12)
    qrels = {"qa": {"a": 1}, "qb": {"b": 1}, "qc": {"c": 1}}
    assert retrieval_scores(run, qrels, (1, 10))["recall@1"] == 1.0


def test_progress_lines_count_stages_and_the_budget_left(tmp_path, capsys):
    steps = Steps(tmp_path, budget=1200, stages=3)
    steps.start -= 312  # 5m12s into the job
    assert steps.stage("en.teacher") == "[stage 1/3] en.teacher  (elapsed 5m12s, left 14m48s)"

    class Plan:  # BudgetPlan's interface
        deadlines = {"en.exits": 1.0}

        def start(self, stage, elapsed):
            return 42.0

        def done(self, step):
            self.finished = step

    plan = AnnouncedPlan(Plan(), steps)
    assert plan.start("en.exits", steps.elapsed()) == 42.0 and plan.deadlines == {"en.exits": 1.0}
    steps.start -= 1000
    steps.stage("report")
    steps.stage("extra")  # more stages than planned: the count grows, never "4/3"
    out = capsys.readouterr().out.split("\n")
    assert [x.split("  ")[0] for x in out if x.startswith("[stage")] == [
        "[stage 1/3] en.teacher", "[stage 2/3] en.exits", "[stage 3/3] report", "[stage 4/4] extra"]
    assert "over budget by 1m52s)" in out[-2]
    assert [s["stage"] for s in steps.started] == ["en.teacher", "en.exits", "report", "extra"]
    assert clock(59.6) == "1m00s" and clock(-3) == "0m00s"


def test_goals_summary_and_budget_line():
    doc = Report("t")
    doc.h2("English")
    rep.goal(doc, "The teacher against TF-IDF: +5.00 points.", True, {"the teacher": 0.85}, 0.6)
    rep.goal(doc, "DistilBERT: 99%.", True, {"the student": 0.55}, 0.6)  # below the majority: degenerate
    doc.verdict("int8: 2x.", None)  # no goal: not in the summary
    doc.h2("Search")
    doc.verdict("MiniLM against TF-IDF on recall@10: 0.50 vs 0.60.", False)
    assert rep.goals(doc) == [
        {"section": "English", "goal": "The teacher against TF-IDF: +5.00 points.", "verdict": "met"},
        {"section": "English", "goal": "degenerate: the student at 0.5500 no better than always predicting the "
                                       "majority class (0.6000 of the split). DistilBERT: 99%.",
         "verdict": "not met: degenerate"},
        {"section": "Search", "goal": "MiniLM against TF-IDF on recall@10: 0.50 vs 0.60.", "verdict": "not met"}]
    line = rep.budget_line({"budget_s": 1200, "seconds": 1080, "download_s": 7.4})
    assert line == ("Budget: 1200 s; used 1080 s (18.0 min, 90% of the budget); downloads excluded "
                    "(7 s, cached after the first run).")


def test_search_and_interop_sections_say_met_as_measured():
    from berts.demo.en import interop_section, search_section

    search = {"set": {"queries": 300, "documents": 300, "of": 693}, "max_length": 128, "k": 10,
              "minilm": {"recall@10": 0.71, "ndcg@10": 0.5, "mrr@10": 0.4, "recall@1": 0.3},
              "tfidf": {"recall@10": 0.72, "ndcg@10": 0.4, "mrr@10": 0.3, "recall@1": 0.2},
              "chance_recall@10": 10 / 300, "ms_per_query": 8.0, "queries_per_s": 125.0, "index_s": 20.1,
              "examples": [{"query": "q", "relevant": "b0p0", "rank": 1,
                            "hits": [{"id": "b0p0", "score": 0.8, "text": "d"}]}]}
    doc = Report("t")
    search_section(doc, search)
    (_, text, good), = [b for b in doc.blocks if b[0] == "verdict"]
    assert good is False and text.startswith("MiniLM against TF-IDF on recall@10: 0.7100 vs 0.7200")
    doc = Report("t")
    search_section(doc, {**search, "minilm": {**search["minilm"], "recall@10": 10 / 300}})
    (_, text, good), = [b for b in doc.blocks if b[0] == "verdict"]
    assert good is False and text.startswith("degenerate: MiniLM's recall@10 0.0333 is no better than chance")
    hf = {"examples": 64, "same_token_ids": True, "max_abs_logit_diff": 2e-6, "transformers_class": "B",
          "transformers_version": "5"}
    doc = Report("t")
    interop_section(doc, {"transformers": {"teacher": hf, "distilbert": {**hf, "max_abs_logit_diff": 3e-4}},
                          "sentence_transformers": {"examples": 64, "dim": 384, "max_abs_diff": 1.6e-7,
                                                    "min_cosine": 1.0, "version": "5"}})
    assert [b[2] for b in doc.blocks if b[0] == "verdict"] == [False, True]  # 3e-4 > 1e-4: not met
