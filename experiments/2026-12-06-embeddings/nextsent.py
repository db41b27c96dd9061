"""Issue 27's training goal on a second set built from real text, where a query and its target share
few words: a Brown sentence retrieves the sentence that FOLLOWS it in the same paragraph
(README.md, "A second set, where query and target share few words").

    # 1. the tiny model, pretrained as tiny.py pretrains it (Brown train files + SOTU, 8k WordPiece)
    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python experiments/2026-12-06-embeddings/nextsent.py pretrain --out /tmp/ec/ns27 --budget 22m
    # 2. the set (BEIR dev/test folders + train pairs) and TF-IDF on dev (n-gram range chosen on dev)
    ... nextsent.py build --out /tmp/ec/ns27
    ... nextsent.py meandev --out /tmp/ec/ns27   # the pretrained model + mean pooling, dev
    # 3. MNRL runs (one per call), each scored on dev only
    ... nextsent.py mnrl --out /tmp/ec/ns27 --lr 1e-3 --steps 300 [--plus-first]
    #    (--sotu instead: + next-sentence pairs of the State of the Union addresses)
    # (context: all-MiniLM-L6-v2 as shipped, dev and test: nextsent.py minilm --out /tmp/ec/ns27)
    # 4. the dev-chosen rows scored once on test
    ... nextsent.py test --out /tmp/ec/ns27 --runs run-...

The set (decided before any model was scored): the Brown corpus (berts.data.corpora.en_brown)
split by file exactly as run.py's first set (document i % 10 == 0 test, == 1 dev, else train). Each
paragraph, cut into sentences by berts.data.corpus.split_sentences (as the first set), is read as
disjoint consecutive pairs (s0, s1), (s2, s3), ...; a pair whose two sentences both have 5+ words
gives a query (the first) and its one relevant document (the sentence that follows it). Disjoint
pairs, so that no query is itself in the candidate pool. The candidate pool of a split = every
"next sentence" of that split's pairs. A pair is dropped when its query's or its target's text
occurs more than once among the split's kept sentences (exact text), so that each query has exactly
one correct document and never its own text in the pool. Train: the same pairs from the train files
(for MNRL); `--plus-first` adds the first set's train pairs (first sentence -> rest).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tiny import berts, lee, lee_spearman, pretrain_corpus  # noqa: E402

QUIET = ["--set", "log.progress=none", "--set", "log.plots=false", "--set", "log.tensorboard=false"]
MIN_WORDS = 5


# --recipe preln: the recipe that pretrained best in a short CPU budget for the demo's Chinese model
# (experiments/2026-12-01-pretraining-recipes: pre-LN, dropout off, lr 1e-3, batch 32, 128 positions)
RECIPES = {"tiny": [], "preln": ["--lr", "1e-3", "--batch-size", "32", "--set", "model.norm_position=pre",
                                 "--set", "model.hidden_dropout_prob=0", "--set", "model.attention_probs_dropout_prob=0",
                                 "--set", "model.max_position_embeddings=128"]}


def do_pretrain(out: Path, budget: str, recipe: str = "tiny", threads: int = 1) -> dict:
    """tiny.py's pretraining: Brown train-split files + SOTU, WordPiece 8k, tiny preset (the same
    corpus and vocabulary; ``recipe`` preln changes the model and optimiser settings, RECIPES)."""
    res = {"pretrain_corpus": pretrain_corpus(out)}
    print(res, flush=True)
    res["tokenizer_s"] = berts("tokenizer", "train", "--corpus", str(out / "pretrain.txt"), "--format", "plain",
                               "--vocab-size", "8000", "--out", str(out / "tok"), "--overwrite")
    res["prepare_s"] = berts("prepare", str(out / "pretrain.txt"), "--format", "plain", "--tokenizer",
                             str(out / "tok"), "--out", str(out / "shards"), "--objective", "none",
                             "--max-seq-length", "128", "--workers", "1", "--overwrite", "--quiet")
    res["pretrain_s"] = berts("pretrain", "--preset", "tiny", "--data", str(out / "shards"), "--out",
                              str(out / "pretrain"), "--overwrite", "--budget", budget, *RECIPES[recipe],
                              "--set", f"impl.threads={threads}", "--set", "data.num_workers=0", *QUIET)
    res["recipe"] = {"name": recipe, "args": RECIPES[recipe], "threads": threads}
    return res


def build_pairs() -> dict[str, list[tuple[str, str, str]]]:
    """{split: [(id, query, next sentence)]}: the definition in this module's docstring."""
    from collections import Counter

    from berts.data import corpora
    from berts.data.corpus import split_sentences

    docs = [d for d in corpora.en_brown()["text"].read_text(encoding="utf-8").split("\n\n") if d.strip()]
    raw = {"train": [], "dev": [], "test": []}
    for i, doc in enumerate(docs):
        which = "test" if i % 10 == 0 else "dev" if i % 10 == 1 else "train"
        for j, para in enumerate(doc.splitlines()):
            sents = [" ".join(x.split()) for x in split_sentences(para)]
            for k in range(0, len(sents) - 1, 2):
                q, t = sents[k], sents[k + 1]
                if len(q.split()) >= MIN_WORDS and len(t.split()) >= MIN_WORDS and "\t" not in q + t:
                    raw[which].append((f"b{i}p{j}s{k}", q, t))
    out = {}
    for which, rows in raw.items():
        seen = Counter(x for _, q, t in rows for x in (q, t))
        out[which] = [r for r in rows if seen[r[1]] == 1 and seen[r[2]] == 1]
    return out, {k: len(v) for k, v in raw.items()}


def sotu_pairs(out: Path) -> int:
    """More MNRL pairs of the same kind from the State of the Union addresses (in the pretraining text;
    no Brown text): each line of a speech read as disjoint consecutive sentence pairs, both of 5+
    words. Written with the Brown train pairs into train-pairs-sotu.tsv, shuffled (seed 2)."""
    from berts.data import corpora
    from berts.data.corpus import split_sentences

    rows = (out / "train-pairs.tsv").read_text(encoding="utf-8").splitlines()[1:]
    n = len(rows)
    for speech in corpora.en_sotu()["text"].read_text(encoding="utf-8").split("\n\n"):
        for line in speech.splitlines():
            sents = [" ".join(x.split()) for x in split_sentences(line)]
            for k in range(0, len(sents) - 1, 2):
                q, t = sents[k], sents[k + 1]
                if len(q.split()) >= MIN_WORDS and len(t.split()) >= MIN_WORDS and "\t" not in q + t:
                    rows.append(f"{q}\t{t}")
    random.Random(2).shuffle(rows)
    (out / "train-pairs-sotu.tsv").write_text("query\tdoc\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return len(rows) - n


def overlap(q: str, t: str) -> float:
    """Share of the query's content-word types (lowercased, sklearn's English stop words out) found in
    the target."""
    import re

    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    w = lambda x: {a for a in re.findall(r"[a-z0-9]+", x.lower()) if a not in ENGLISH_STOP_WORDS}
    a = w(q)
    return len(a & w(t)) / len(a) if a else 0.0


def build(out: Path) -> dict:
    import numpy as np

    from run import build_set

    pairs, before = build_pairs()
    for which in ("dev", "test"):
        d = out / f"beir-{which}"
        (d / "qrels").mkdir(parents=True, exist_ok=True)
        rows = pairs[which]
        (d / "corpus.jsonl").write_text("".join(json.dumps({"_id": k + "n", "text": t}) + "\n" for k, _, t in rows))
        (d / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": q}) + "\n" for k, q, _ in rows))
        (d / "qrels" / f"{which}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{k}\t{k}n\t1\n" for k, _, _ in rows))
    train = list(pairs["train"])
    random.Random(0).shuffle(train)
    (out / "train-pairs.tsv").write_text("query\tdoc\n" + "".join(f"{q}\t{t}\n" for _, q, t in train))
    # the first set (run.build_set, unchanged) in its own folder: its train pairs for --plus-first,
    # and its test pairs for the word-overlap figure
    first = out / "first"
    first.mkdir(exist_ok=True)
    res = {"sizes": {k: len(v) for k, v in pairs.items()}, "pairs_before_dedup": before,
           "first_set_sizes": build_set(first)}
    plus = (first / "train-pairs.tsv").read_text(encoding="utf-8").splitlines()[1:] + \
        [f"{q}\t{t}" for _, q, t in train]
    random.Random(1).shuffle(plus)
    (out / "train-pairs-plus.tsv").write_text("query\tdoc\n" + "".join(r + "\n" for r in plus))
    res["plus_pairs"] = len(plus)
    from berts.embed.metrics import read_beir

    c, q, qr = read_beir(first / "beir-test", "test")
    first_ov = [overlap(q[a], c[b]["text"]) for a, rel in qr.items() for b in rel]
    res["overlap_test"] = {"next_sentence": round(float(np.mean([overlap(a, b) for _, a, b in pairs["test"]])), 4),
                           "first_set": round(float(np.mean(first_ov)), 4)}
    res["words_test"] = {"query": round(float(np.mean([len(a.split()) for _, a, _ in pairs["test"]])), 1),
                         "target": round(float(np.mean([len(b.split()) for _, _, b in pairs["test"]])), 1)}
    return res


TFIDF = {"word 1-1": ("word", (1, 1)), "word 1-2": ("word", (1, 2)), "word 1-3": ("word", (1, 3)),
         "char_wb 3-5": ("char_wb", (3, 5))}


def tfidf(folder: Path, split: str, name: str) -> dict:
    """TF-IDF cosine, fitted on the split's corpus (the candidate pool), sublinear tf."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from berts.embed.metrics import read_beir, retrieval_scores, top_k

    corpus, queries, qrels = read_beir(folder, split)
    ids = list(corpus)
    analyzer, ngrams = TFIDF[name]
    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True).fit(
        [corpus[d]["text"] for d in ids])
    qids = list(qrels)
    d = vec.transform([corpus[i]["text"] for i in ids]).toarray()
    q = vec.transform([queries[i] for i in qids]).toarray()
    s, idx = top_k(q, d, 100)
    run = {qq: {ids[j]: float(v) for v, j in zip(s[n], idx[n])} for n, qq in enumerate(qids)}
    return pick(retrieval_scores(run, qrels, (1, 10, 100)))


def tfidf_lee(name: str, fit: str = "lee") -> float:
    """TF-IDF cosine on Lee et al.'s 50 documents, Spearman against the human scores; the IDF fitted
    on the 50 (``fit`` lee) or on the Brown corpus's train-split files + the 50 (``fit`` brown)."""
    return lee_spearman(tfidf_lee_vectors(name, fit), lee()[1])


def lee_vectors(model: Path):
    """A berts sentence encoder's vectors of Lee's 50 documents (its 128-token window: longer ones truncated)."""
    from berts.embed.encoder import Encoder

    return Encoder.from_pretrained(model, max_seq_length=128).encode(lee()[0], batch_size=64)


def lee_model(model: Path) -> float:
    return lee_spearman(lee_vectors(model), lee()[1])


def lee_bootstrap(a, b, rounds: int = 2000, seed: int = 0) -> dict:
    """Spearman(a) - Spearman(b) on Lee's pairs, the 50 DOCUMENTS resampled with replacement (the
    1,225 pairs share documents, so they are not independent draws): the 95% interval and the share
    of resamples where a is ahead. ``a``, ``b``: vectors [50, d]."""
    import numpy as np

    from berts.embed.metrics import spearman

    m = lee()[1]
    cos = lambda v: (lambda u: u @ u.T)(v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12))
    ca, cb = cos(np.asarray(a, dtype=np.float64)), cos(np.asarray(b, dtype=np.float64))
    rng, diffs = np.random.default_rng(seed), []
    i, j = np.triu_indices(50, 1)
    for _ in range(rounds):
        idx = rng.integers(0, 50, 50)
        keep = idx[i] != idx[j]  # a document drawn twice is not a pair with itself
        p, q = idx[i][keep], idx[j][keep]
        diffs.append(spearman(ca[p, q], m[p, q]) - spearman(cb[p, q], m[p, q]))
    d = np.array(diffs)
    return {"interval95": [round(float(np.quantile(d, 0.025)), 4), round(float(np.quantile(d, 0.975)), 4)],
            "ahead": round(float((d > 0).mean()), 4), "rounds": rounds}


def tfidf_lee_vectors(name: str, fit: str):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from berts.data import corpora

    texts = lee()[0]
    background = []
    if fit == "brown":
        docs = [d for d in corpora.en_brown()["text"].read_text(encoding="utf-8").split("\n\n") if d.strip()]
        background = [d for i, d in enumerate(docs) if i % 10 not in (0, 1)]
    vec = TfidfVectorizer(analyzer=TFIDF[name][0], ngram_range=TFIDF[name][1], sublinear_tf=True)
    return vec.fit(background + texts).transform(texts).toarray()


def pick(r: dict) -> dict:
    return {k: round(float(r[k]), 4) for k in ("recall@10", "ndcg@10", "mrr@10", "recall@1", "queries")}


def score(model: Path, out: Path, split: str) -> dict:
    from berts.embed.encoder import Encoder
    from berts.embed.metrics import evaluate_retrieval, read_beir

    enc = Encoder.from_pretrained(model, max_seq_length=128)
    corpus, queries, qrels = read_beir(out / f"beir-{split}", split)
    return pick(evaluate_retrieval(lambda x: enc.encode(x, batch_size=64), corpus, queries, qrels, k=100,
                                   ks=(1, 10, 100)))


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def save(path: Path, res: dict) -> None:
    path.write_text(json.dumps(res, indent=2) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["pretrain", "build", "meandev", "mnrl", "test", "minilm", "lee"])
    ap.add_argument("--out", default="bench_out/ns27")
    ap.add_argument("--budget", default="22m")
    ap.add_argument("--recipe", choices=sorted(RECIPES), default="tiny", help="pretrain: the model/optimiser settings")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (pretrain, mnrl, and the scoring)")
    ap.add_argument("--lr", default="1e-3")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--evals", type=int, default=3, help="dev evaluations per run (best/ = the best of them)")
    ap.add_argument("--plus-first", action="store_true", help="MNRL also on the first set's train pairs")
    ap.add_argument("--sotu", action="store_true", help="MNRL also on SOTU next-sentence pairs")
    ap.add_argument("--runs", default="", help="test: the run directories (names under OUT) to score on test")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    if args.what == "pretrain":
        res = do_pretrain(out, args.budget, args.recipe, args.threads)
        (out / "pretrain-results.json").write_text(json.dumps(res, indent=2) + "\n")
        print(json.dumps(res, indent=2))
        return
    base = out / "pretrain" / "final"
    dev = out / "dev-results.json"
    if args.what == "build":
        res = build(out)
        print(json.dumps(res, indent=2), flush=True)
        res["tfidf_dev"] = {}
        for name in TFIDF:
            res["tfidf_dev"][name] = tfidf(out / "beir-dev", "dev", name)
            print("tfidf", name, res["tfidf_dev"][name], flush=True)
        save(out / "set-results.json", res)
    elif args.what == "meandev":  # the pretrained model, mean pooling, no contrastive training: dev
        res = load(out / "set-results.json")
        res["mean_dev"] = score(base, out, "dev")
        print("pretrained+mean dev", res["mean_dev"], flush=True)
        save(out / "set-results.json", res)
    elif args.what == "mnrl":
        name = f"run-lr{args.lr}-s{args.steps}-b{args.batch}" + ("-plus" if args.plus_first else "") + \
            ("-sotu" if args.sotu else "")
        assert not (args.sotu and args.plus_first), "one of --sotu, --plus-first"
        extra = {}
        if args.sotu:
            extra["sotu_pairs"] = sotu_pairs(out)
        train = "train-pairs-sotu.tsv" if args.sotu else "train-pairs-plus.tsv" if args.plus_first else "train-pairs.tsv"
        cmd = ["finetune", "--task", "sentence-embedding", "--loss", "mnrl", "--model", str(base),
               "--train", str(out / train),
               "--dev", str(out / "beir-dev"), "--text-column", "query", "--pair-column", "doc",
               "--max-length", "128", "--max-steps", str(args.steps), "--batch-size", str(args.batch),
               "--lr", args.lr, "--eval-every", str(args.steps // args.evals), "--out", str(out / name),
               "--overwrite", "--set", f"impl.threads={args.threads}", "--set", "data.num_workers=0",
               "--set", "train.keep_last=0", *QUIET]
        secs = berts(*cmd)
        best = out / name / "best"
        res = load(dev)
        res[name] = {**extra, "seconds": round(secs), "cmd": "berts " + " ".join(cmd),
                     "best_eval": json.loads((best / "eval_results.json").read_text()),
                     "dev": score(best, out, "dev")}
        print(name, res[name], flush=True)
        save(dev, res)
    elif args.what == "minilm":  # context, not the goal's comparison: a real contrastive encoder
        from berts.data import corpora

        src = corpora.en_minilm()
        res = {"model": str(src), "dev": score(src, out, "dev"), "test": score(src, out, "test")}
        print("minilm", res, flush=True)
        save(out / "minilm-results.json", res)
    elif args.what == "lee":  # Lee et al.'s human-scored document similarity: once, the dev-chosen rows
        sres = load(out / "set-results.json")
        choice = max(sres["tfidf_dev"], key=lambda n: sres["tfidf_dev"][n]["ndcg@10"])
        res = {"tfidf": {"config": choice, "fit": "lee", "spearman": tfidf_lee(choice)},
               "tfidf_variants (not chosen: every config, IDF fitted on Lee's 50 or on Brown train + the 50)":
                   {f"{n} / {fit}": tfidf_lee(n, fit) for n in TFIDF for fit in ("lee", "brown")},
               "pretrained+mean": {"spearman": lee_model(base)}}
        variants = res["tfidf_variants (not chosen: every config, IDF fitted on Lee's 50 or on Brown train + the 50)"]
        strongest = max(variants, key=variants.get)
        for name in filter(None, args.runs.split(",")):
            v = lee_vectors(out / name / "best")
            res[name] = {"spearman": lee_spearman(v, lee()[1]),
                         "bootstrap over documents, this minus": {
                             "tfidf (dev choice)": lee_bootstrap(v, tfidf_lee_vectors(choice, "lee")),
                             f"tfidf {strongest} (the strongest variant)": lee_bootstrap(
                                 v, tfidf_lee_vectors(*strongest.split(" / "))),
                             "pretrained+mean": lee_bootstrap(v, lee_vectors(base))}}
        for k, v in res.items():
            print(k, v, flush=True)
        save(out / "lee-results.json", res)
    else:  # test: once, the dev-chosen rows only
        sres = load(out / "set-results.json")
        choice = max(sres["tfidf_dev"], key=lambda n: sres["tfidf_dev"][n]["ndcg@10"])
        res = {"tfidf": {"config": choice, "dev": sres["tfidf_dev"][choice],
                         "test": tfidf(out / "beir-test", "test", choice)},
               "pretrained+mean": {"dev": sres["mean_dev"], "test": score(base, out, "test")}}
        for name in filter(None, args.runs.split(",")):
            res[name] = {"dev": load(dev)[name]["dev"], "test": score(out / name / "best", out, "test")}
        for k, v in res.items():
            print(k, v, flush=True)
        save(out / "test-results.json", res)


if __name__ == "__main__":
    main()
