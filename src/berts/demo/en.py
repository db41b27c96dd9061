"""The demo's English half: from a real checkpoint (all-MiniLM-L6-v2), every step a `berts` command.

    classification: MiniLM-L6 fine-tuned on Rotten Tomatoes against TF-IDF -> a DistilBERT
        3-layer student, a TinyBERT 4-layer student (pruned out of the teacher), FastBERT exits
        (the speed chosen on dev) -> `berts compare` on test, scored once (+ int8).
    search: MiniLM as a sentence encoder (saved with its pooling files) -> `berts index` over the
        Brown first-sentence set (berts.data.retrieval_sets) -> `berts search` of every query ->
        recall@10 / nDCG@10 against TF-IDF cosine on the same set, queries per second.
    interop: transformers loads the fine-tuned classifier directories (same token ids, logits),
        sentence-transformers loads the encoder directory (same embeddings).

run_en runs it (called by berts.demo.run.run_demo, which owns the settings and the budget);
en_section writes its part of the report.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np

from berts.data.retrieval_sets import brown_first_sentence
from berts.demo.checks import tokenizer_stats, transformers_check
from berts.demo.report import (
    _f,
    _points,
    best_eval,
    commands,
    compare_table,
    compression_verdicts,
    goal,
    plot_dev_curves,
    plot_tradeoff,
    run_summary,
)
from berts.demo.steps import Steps, cap, choose_exit_speed, head, majority_rate, quiet
from berts.embed.encoder import Encoder
from berts.embed.metrics import read_beir, retrieval_scores
from berts.errors import UserError
from berts.tools.baselines import tfidf_retrieval
from berts.train import engine
from berts.util.report import Report

# the English half's fixed stages, each announced with a progress line (its budgeted stages are
# announced by the plan: berts.demo.steps.AnnouncedPlan)
EN_STAGES = ("en.baseline", "en.compare", "en.search", "en.interop")


def en_precision(s) -> str:
    """The English stages' training precision: ``s.en_precision``, "auto" resolved by the CPU."""
    if s.en_precision not in ("auto", "fp32", "bf16"):
        raise UserError(f"en_precision {s.en_precision!r}: auto, fp32 or bf16")
    return s.en_precision if s.en_precision != "auto" else "bf16" if engine.cpu_has_amx() else "fp32"


def run_en(out: Path, inputs, s, steps: Steps, plan) -> dict:
    """The English half into OUT/en: ``inputs`` an EnInputs, ``s`` the DemoSettings, ``plan`` the job's
    BudgetPlan (berts.demo.run; not imported here: run imports this module)."""
    en = out / "en"
    quick = s.quick
    precision = en_precision(s)
    data = en / "data"
    train = head(inputs.train, data / "train.tsv", 1200 if quick else None)
    dev = head(inputs.dev, data / "dev.tsv", 200 if quick else None)
    test = head(inputs.test, data / "test.tsv", 200 if quick else None)
    r: dict = {"inputs": {**inputs.names, "checkpoint_dir": steps.show(Path(inputs.checkpoint))},
               "precision": precision}
    for name, path in (("train", train), ("dev", dev), ("test", test)):
        r["inputs"][f"{name}_examples"] = len(path.read_text(encoding="utf-8").splitlines()) - 1
    r["tokenizer"] = tokenizer_stats(Path(inputs.checkpoint), train, s.en_max_length)
    steps.stage("en.baseline")
    r["tfidf"] = steps.json("en", "baseline: TF-IDF word 1-2 grams + logistic regression", [
        "baseline", "--train", train, "--dev", dev, "--test", test, "--text-column", "text", "--label-column", "label",
        "--analyzer", "word", "--ngrams", "1,2", "--C", s.tfidf_C, "--json"])
    plan.done("en.baseline")
    data_args = ["--train", train, "--dev", dev, "--text-column", "text", "--label-column", "label",
                 "--max-length", s.en_max_length, "--batch-size", s.batch_size, "--metric", "accuracy",
                 "--keep-last", "0", "--precision", precision, *quiet()]
    every = ["--eval-every", max(25, s.eval_every // 2)]
    teacher = en / "teacher"
    budget = plan.start("en.teacher", steps.elapsed())
    steps.run("en", "fine-tuning MiniLM-L6 (the teacher)", [
        "finetune", "--model", inputs.checkpoint, "--out", teacher, "--overwrite", "--budget", f"{budget:.0f}s",
        "--lr", s.en_lr, "--epochs", s.en_epochs, *every, *data_args, *cap(s, "en.teacher")])
    r["teacher"] = run_summary(teacher)
    r["test_majority"] = majority_rate(test)  # the goals' degenerate check (report.degenerate)
    r["test"] = steps.json("en", "test accuracy, teacher", ["evaluate", teacher / "best", test, "--json"])
    plan.done("en.evaluate")

    layers = json.loads((teacher / "best" / "config.json").read_text())["num_hidden_layers"]
    student = ",".join(str(i) for i in range(0, layers, 2))
    distil, tiny, exits = en / "distilbert", en / "tinybert", en / "exits"
    budget = plan.start("en.distilbert", steps.elapsed())
    steps.run("en", f"DistilBERT: a {len(student.split(','))}-layer student (teacher layers {student})", [
        "distill", "--method", "distilbert", "--teacher", teacher / "best", "--student-layers", student,
        "--out", distil, "--overwrite", "--budget", f"{budget:.0f}s", "--lr", s.student_lr, "--epochs", s.en_epochs,
        *every, *data_args, *cap(s, "en.distilbert")])
    config = json.loads((teacher / "best" / "config.json").read_text())
    width = max(config["num_attention_heads"], config["hidden_size"] // 2)
    # half the width, the teacher's heads (half their size), an FFN of 2x the width: 4 layers, hidden 192,
    # FFN 384 for MiniLM-L6 (FFN 768 measured 4.00x against 4.79x at the same accuracy)
    shape = [f"model.num_hidden_layers={max(1, layers * 2 // 3)}", f"model.hidden_size={width}",
             f"model.num_attention_heads={config['num_attention_heads']}", f"model.intermediate_size={2 * width}"]
    # TinyBERT's task distillation in its paper's two steps: the intermediate layers (embeddings,
    # attention scores, hidden states) first, then the prediction layer. Both at once ("all") in
    # this budget left the classifier at the majority class: the attention MSE, 40x the soft
    # cross-entropy, takes every step. The student starts
    # cut out of the teacher (--student-init prune, Minitron's pruning): there is no time here for
    # TinyBERT's general distillation, and from random weights it reached 89% of the teacher
    layers_dir = en / "tinybert-layers"
    budget = plan.start("en.tinybert_layers", steps.elapsed())
    steps.run("en", "TinyBERT, step 1: a student pruned out of the teacher learns its embeddings, attention, "
                    "hidden states", [
        "distill", "--method", "tinybert", "--teacher", teacher / "best", "--student-preset", "mini",
        *[x for kv in shape for x in ("--set", kv)], "--student-init", "prune",
        "--set", f"distill.prune_examples={s.prune_examples}", "--stage", "intermediate",
        "--out", layers_dir, "--overwrite",
        "--budget", f"{budget:.0f}s", "--lr", s.tinybert_lr, "--epochs", s.en_epochs, *every, *data_args,
        *cap(s, "en.tinybert_layers")])
    budget = plan.start("en.tinybert", steps.elapsed())
    steps.run("en", "TinyBERT, step 2: the same student learns the teacher's predictions", [
        "distill", "--method", "tinybert", "--teacher", teacher / "best", "--student", layers_dir / "final",
        "--stage", "prediction", "--out", tiny, "--overwrite", "--budget", f"{budget:.0f}s", "--lr", s.tinybert_lr,
        "--epochs", s.en_epochs, *every, *data_args, *cap(s, "en.tinybert")])
    budget = plan.start("en.exits", steps.elapsed())
    steps.run("en", "FastBERT: exit classifiers by self-distillation (labels not read)", [
        "finetune", "--early-exit", "--model", teacher / "best", "--train", train, "--text-column", "text",
        "--out", exits, "--overwrite", "--budget", f"{budget:.0f}s", "--lr", s.exit_lr, "--epochs", 1, "--keep-last", "0",
        "--batch-size", s.batch_size, "--max-length", s.en_max_length, "--precision", precision, *quiet(),
        *cap(s, "en.exits")])
    r["distilbert"], r["tinybert"], r["exits"] = run_summary(distil), run_summary(tiny), run_summary(exits)
    r["tinybert_layers"] = run_summary(layers_dir)
    steps.stage("en.compare")
    r["exit_choice"] = choose_exit_speed(steps, "en", exits / "final", dev, s.en_speeds)
    plan.done("en.exit_choice")
    cmp_dir = en / "compare"
    steps.run("en", "compare: teacher, students, exits, int8 on the test split (scored once)", [
        "compare", teacher / "best", distil / "best", tiny / "best", exits / "final", "--eval-file", test,
        "--speed", f"{r['exit_choice']['speed']:g}", "--int8", "--out", cmp_dir, "--overwrite", "--repeats", s.compare_repeats,
        "--latency-examples", s.compare_examples])
    plan.done("en.compare")
    r["compare"] = json.loads((cmp_dir / "compare.json").read_text())
    r["search"] = run_search(en / "search", inputs, s, steps)
    plan.done("en.search")
    r["interop"] = run_interop(en, test, r["search"], steps)
    plan.done("en.interop")
    plan.done("en.overhead")
    return r


# ----------------------------------------------------------------------------- search
def run_search(out: Path, inputs, s, steps: Steps) -> dict:
    """MiniLM as a sentence encoder on the Brown first-sentence set (its test split: Brown files
    i % 10 == 0, the first ``s.search_docs`` pairs): `berts index` the documents, `berts search`
    every query, scored against the qrels beside TF-IDF cosine on the same documents."""
    steps.stage("en.search")
    t0 = time.perf_counter()
    beir = out / "brown-test"
    built = brown_first_sentence(Path(inputs.brown), beir, "test", limit=s.search_docs)
    # the encoder directory the index names: MiniLM with its pooling files (mean, normalised) and
    # a window of search_max_length tokens (a document is about 108 tokens on average: 128 keeps
    # most whole at half the cost of the checkpoint's 256); sentence-transformers loads it (interop)
    encoder = out / "encoder"
    Encoder.from_pretrained(inputs.checkpoint, pooling="mean", normalize=True,
                            max_seq_length=s.search_max_length).save_pretrained(encoder)
    steps.python("en", "search set: Brown first sentences -> their paragraphs (test files); MiniLM saved as a "
                       "sentence encoder (mean pooling, normalised)",
                 f"from berts.data.retrieval_sets import brown_first_sentence; from berts.embed.encoder import Encoder; "
                 f"brown_first_sentence('{steps.show(Path(inputs.brown))}', '{steps.show(beir)}', 'test', "
                 f"limit={s.search_docs}); Encoder.from_pretrained('{steps.show(Path(inputs.checkpoint))}', "
                 f"pooling='mean', normalize=True, max_seq_length={s.search_max_length})"
                 f".save_pretrained('{steps.show(encoder)}')", time.perf_counter() - t0)
    idx = out / "brown.idx"
    said = steps.run("en", f"index the {built['documents']} documents with MiniLM", [
        "index", beir / "corpus.jsonl", "--model", encoder, "--out", idx, "--overwrite"], capture=True, capture_err=True)
    build = re.search(r"indexed (\d+) texts in ([\d.]+)s", said)
    lines = steps.run("en", "search: every query, top 10", [
        "search", idx, "--queries", beir / "queries.jsonl", "-k", s.search_k, "--json"], capture=True, capture_err=True)
    corpus, queries, qrels = read_beir(beir, "test")
    answers = [json.loads(line) for line in lines.splitlines() if line.startswith("{")]
    qids = list(queries)
    if len(answers) != len(qids):
        raise UserError(f"berts search answered {len(answers)} of {len(qids)} queries of {beir / 'queries.jsonl'}")
    run = {q: {h["id"]: h["score"] for h in a["hits"]} for q, a in zip(qids, answers)}
    speed = re.search(r"\(([\d.]+) ms/query", lines)
    t0 = time.perf_counter()
    texts = {d: doc["text"] for d, doc in corpus.items()}
    tfidf_run = tfidf_retrieval(texts, queries, k=s.search_k)
    steps.python("en", "baseline: TF-IDF cosine (word 1-2 grams, fitted on the documents) on the same queries",
                 f"from berts.tools.baselines import tfidf_retrieval  # on '{steps.show(beir)}'",
                 time.perf_counter() - t0)
    keep = ("recall@10", "ndcg@10", "mrr@10", "recall@1")
    score = lambda r: {k: round(v, 4) for k, v in retrieval_scores(r, qrels, (1, 10)).items() if k in keep}
    examples = []
    for n in sorted({0, len(qids) // 2, len(qids) - 1}):  # three queries, fixed: the first, middle and last
        q, hits = qids[n], answers[n]["hits"]
        ranked = [h["id"] for h in hits]
        examples.append({"query": queries[q], "relevant": q, "rank": ranked.index(q) + 1 if q in ranked else None,
                         "hits": [{"id": h["id"], "score": round(h["score"], 4), "text": h["text"][:160]}
                                  for h in hits[:3]]})
    return {"set": {k: v for k, v in built.items() if k != "folder"}, "folder": steps.show(beir),
            "encoder_dir": steps.show(encoder), "max_length": s.search_max_length, "k": s.search_k,
            "minilm": score(run), "tfidf": score(tfidf_run),
            "chance_recall@10": round(min(1.0, 10 / max(1, len(corpus))), 4),
            "ms_per_query": float(speed.group(1)) if speed else None,
            "queries_per_s": round(1000 / float(speed.group(1)), 1) if speed else None,
            "index_s": float(build.group(2)) if build else None, "examples": examples}


# ----------------------------------------------------------------------------- interop
def run_interop(en: Path, test: Path, search: dict, steps: Steps, n: int = 64) -> dict:
    """Other libraries load what the demo wrote: transformers each fine-tuned classifier directory
    (the same token ids and logits as berts on ``n`` test snippets), sentence-transformers the
    search stage's encoder directory (the same embeddings on ``n`` of its queries)."""
    steps.stage("en.interop")
    t0 = time.perf_counter()
    out = {"transformers": {name: transformers_check(en / name / "best", test, n)
                            for name in ("teacher", "distilbert", "tinybert")}}
    encoder = en / "search" / "encoder"
    _, queries, _ = read_beir(en / "search" / "brown-test", "test")
    texts = list(queries.values())[:n]
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        out["sentence_transformers"] = {"skipped": "sentence-transformers is not installed (pip install "
                                                   "'berts[embed]')"}
    else:
        import sentence_transformers

        ours = Encoder.from_pretrained(encoder).encode(texts)
        theirs = SentenceTransformer(str(encoder), device="cpu").encode(texts, batch_size=32, convert_to_numpy=True)
        cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
        out["sentence_transformers"] = {"examples": len(texts), "dim": int(ours.shape[1]),
                                        "max_abs_diff": float(np.abs(ours - theirs).max()),
                                        "min_cosine": float(cos.min()), "version": sentence_transformers.__version__}
    steps.python("en", "interop: transformers loads the classifiers, sentence-transformers the encoder",
                 f"from transformers import AutoModelForSequenceClassification as A; A.from_pretrained('teacher/best'); "
                 f"from sentence_transformers import SentenceTransformer as S; S('{search['encoder_dir']}')",
                 time.perf_counter() - t0)
    return out


def en_section(doc: Report, r: dict, out: Path, plots: Path, steps: list[dict]) -> None:
    """The English half's part of the report (its plots drawn into ``plots``)."""
    plot_dev_curves({"MiniLM-L6 teacher": out / "en" / "teacher", "DistilBERT student": out / "en" / "distilbert",
                     "TinyBERT student": out / "en" / "tinybert"}, r["tfidf"]["dev_accuracy"],
                    "English sentence sentiment", plots / "en_finetune.png")
    plot_tradeoff(r["compare"], r["tfidf"]["test_accuracy"], "English: accuracy vs latency", plots / "en_compare.png")
    inp, test, tf = r["inputs"], r["test"], r["tfidf"]
    doc.h2("English, from a real checkpoint")
    doc.h3("Data")
    tok = r["tokenizer"]
    doc.bullets([f"Checkpoint: {inp.get('checkpoint', inp['checkpoint_dir'])}.",
                 f"Task: {inp.get('task', 'sentence sentiment')}: {inp['train_examples']:,} train / "
                 f"{inp['dev_examples']:,} dev / {inp['test_examples']:,} test.",
                 f"Tokenizer: the checkpoint's ({tok['vocab_size']:,} entries); a training snippet is "
                 f"{tok['mean_tokens']} tokens on average (95th percentile {tok['p95_tokens']}), "
                 f"[UNK] rate {100 * tok['unk_rate']:.3f}%."])
    doc.h3("Fine-tuning the teacher")
    precision = r.get("precision", "fp32")
    doc.p(f"Training precision of every English stage: {precision}"
          + (" autocast, since this CPU has AMX bf16 tiles (`berts demo --en-precision fp32` for fp32; the "
             "comparisons below run fp32 and int8)." if precision == "bf16" else "."))
    t, best = r["teacher"], best_eval(r["teacher"])
    doc.table(["model", "dev accuracy (best)", "test accuracy", "test vs teacher"], [
        [f"MiniLM-L6 fine-tuned ({t['steps']} steps, {_f(t.get('epochs'), 2)} epochs, {t.get('seconds')} s)",
         _f(best.get("accuracy")), _f(test["accuracy"]), ""],
        [f"TF-IDF word 1-2 grams + logistic regression (C={tf['C']:g}, chosen on dev)", _f(tf["dev_accuracy"]),
         _f(tf["test_accuracy"]), _points(tf["test_accuracy"], test["accuracy"])]],
        marks=[None, "bad" if tf["test_accuracy"] > test["accuracy"] else None])
    goal(doc, f"The teacher against TF-IDF: {_points(test['accuracy'], tf['test_accuracy'])} of test accuracy "
              "(goal: clearly above; here >= 2 points).", test["accuracy"] - tf["test_accuracy"] >= 0.02,
         {"the teacher": test["accuracy"]}, r.get("test_majority"))
    doc.image(plots / "en_finetune.png", "English: dev accuracy of the teacher and its students")
    doc.h3("Compression (test split)")
    doc.p("Every model on the same test examples and threads, alternated round by round, medians. Students: "
          f"DistilBERT {r['distilbert']['steps']} steps; TinyBERT {r['tinybert_layers']['steps']} steps on the "
          f"intermediate layers then {r['tinybert']['steps']} on the predictions, from a student pruned out of the "
          f"teacher (`--student-init prune`: no time for TinyBERT's general distillation in this budget); exits "
          f"{r['exits']['steps']} steps.")
    compare_table(doc, r["compare"])
    compression_verdicts(doc, r["compare"], "distilbert", "tinybert", r.get("exit_choice"), r.get("test_majority"))
    doc.image(plots / "en_compare.png", "English: test accuracy against CPU latency (squares: int8)")
    if "search" in r:
        search_section(doc, r["search"])
    if "interop" in r:
        interop_section(doc, r["interop"])
    doc.h3("Commands")
    commands(doc, steps, "en")


def search_section(doc: Report, r: dict) -> None:
    m, t = r["minilm"], r["tfidf"]
    doc.h3("Search: MiniLM as a sentence encoder")
    sset = r["set"]
    doc.p(f"The set (built here, not a published benchmark; berts.data.retrieval_sets): a Brown paragraph of 3+ "
          f"sentences gives a query, its first sentence, and a document, the rest of the paragraph; each query has one "
          f"relevant document among all the documents. The test files' first {sset['queries']:,} pairs "
          f"(of {sset['of']:,}): {sset['queries']:,} queries, {sset['documents']:,} documents. MiniLM (mean pooling, "
          f"normalised, window {r['max_length']} tokens) through `berts index` (exact cosine) and `berts search`; "
          "TF-IDF cosine (word 1-2 grams, sublinear tf, fitted on the documents) on the same queries.")
    keys = ("recall@10", "ndcg@10", "mrr@10", "recall@1")
    doc.table(["system", *keys], [["MiniLM-L6 (`berts search`)", *[_f(m.get(k)) for k in keys]],
                                  ["TF-IDF cosine", *[_f(t.get(k)) for k in keys]]],
              marks=[None, "bad" if t["recall@10"] > m["recall@10"] else None])
    text = (f"MiniLM against TF-IDF on recall@10: {m['recall@10']:.4f} vs {t['recall@10']:.4f} "
            f"(nDCG@10 {m['ndcg@10']:.4f} vs {t['ndcg@10']:.4f}; goal: MiniLM at or above TF-IDF).")
    chance = r.get("chance_recall@10")
    if chance is not None and m["recall@10"] <= chance + 1e-9:
        doc.verdict(f"degenerate: MiniLM's recall@10 {m['recall@10']:.4f} is no better than chance ({chance:.4f}). "
                    + text, False)
    else:
        doc.verdict(text, m["recall@10"] >= t["recall@10"])
    if r.get("queries_per_s"):
        doc.p(f"Speed: {r['queries_per_s']:,} queries/s ({r['ms_per_query']} ms a query, its embedding included, "
              f"batches of 32; the model loaded before the clock starts); the index of {sset['documents']:,} "
              f"documents was built in {r.get('index_s')} s.")
    rows = []
    for e in r["examples"]:
        for i, h in enumerate(e["hits"]):
            rows.append([e["query"] if i == 0 else "", str(e["rank"] or "not in the top 10") if i == 0 else "",
                         f"{i + 1}. {h['score']:.3f}{' (its paragraph)' if h['id'] == e['relevant'] else ''}",
                         h["text"] + ("..." if len(h["text"]) >= 160 else "")])
    doc.p("Three queries (the first, middle and last of the set) and their top three documents:")
    doc.table(["query", "rank of its paragraph", "hit, cosine", "document"], rows)


def interop_section(doc: Report, r: dict) -> None:
    doc.h3("Interop: other libraries load what the demo wrote")
    rows, worst = [], 0.0
    for name, hf in r["transformers"].items():
        if "max_abs_logit_diff" in hf:
            worst = max(worst, hf["max_abs_logit_diff"])
            rows.append([f"transformers {hf['transformers_version']}", f"en/{name}/best",
                         f"`{hf['transformers_class']}`", f"same token ids: {hf['same_token_ids']}",
                         f"logits, max abs diff {hf['max_abs_logit_diff']:.2e} ({hf['examples']} test snippets)"])
    st = r.get("sentence_transformers", {})
    if "max_abs_diff" in st:
        rows.append([f"sentence-transformers {st['version']}", "en/search/encoder", "`SentenceTransformer`",
                     f"{st['dim']} dimensions", f"embeddings, max abs diff {st['max_abs_diff']:.2e}, lowest cosine "
                     f"{st['min_cosine']:.6f} ({st['examples']} queries)"])
    doc.table(["library", "directory", "loaded as", "", "against berts"], rows)
    hf_ok = bool(r["transformers"]) and all(hf.get("same_token_ids") and hf.get("max_abs_logit_diff", 1) <= 1e-4
                                            for hf in r["transformers"].values())
    if any("skipped" in hf for hf in r["transformers"].values()):
        doc.verdict("transformers: not installed, not checked.", None)
    else:
        doc.verdict(f"transformers loads the {len(r['transformers'])} fine-tuned classifiers with the same token ids "
                    f"and logits: largest difference {worst:.2e} (goal: <= 1e-4).", hf_ok)
    if "max_abs_diff" in st:
        doc.verdict(f"sentence-transformers loads the encoder directory with the same embeddings: largest "
                    f"difference {st['max_abs_diff']:.2e} (goal: <= 1e-4).", st["max_abs_diff"] <= 1e-4)
    else:
        doc.verdict(f"sentence-transformers: {st.get('skipped', 'not checked')}.", None)
