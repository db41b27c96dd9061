"""Generation speed with and without the key/value cache (berts.serve.generate), and (``--pretrain``)
a short pretraining run per UniLM objective on real text.

    .venv/bin/python benchmarks/generate.py --preset mini --threads 2 --out bench_out/generate.json
    .venv/bin/python benchmarks/generate.py --pretrain --budget 3m --threads 1 --out bench_out/unilm

A randomly initialised BertForUnifiedLM of ``--preset`` (speed does not depend on the weights)
generates greedily, left to right, with [SEP] never chosen (its logit pushed down) so that every
run makes exactly the tokens asked for: from a 1-token prompt ([CLS]) to a total length of 32,
128 and 512 positions. Per length, tokens/s with the cache (each step runs one position) and
without (each step runs the whole sequence), the best of ``--repeats`` runs, and a check that both
give the same ids. Without the cache the cost of a token grows with the length; with it, it
stays nearly flat (attention over the cached keys is the only part that grows).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from berts.model.config import preset
from berts.serve.generate import generate_ids
from berts.model.heads import BertForUnifiedLM


def cli(*args) -> None:
    import subprocess
    import sys

    print("$ berts " + " ".join(map(str, args)), flush=True)
    subprocess.run([sys.executable, "-m", "berts", *map(str, args)], check=True)


def unigram_entropy(shards) -> float:
    """Nats per token of the shards' unigram distribution (specials and padding left out)."""
    import numpy as np

    from berts.data.shards import ShardReader

    reader = ShardReader(shards)
    special = set(reader.meta["tokenizer"]["special_ids"])
    counts = np.zeros(int(reader.meta["vocab_size"]), dtype=np.int64)
    for i in range(len(reader)):
        np.add.at(counts, np.asarray(reader.instance(i)["input_ids"]), 1)
    counts[list(special)] = 0
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def pretrain(args) -> int:
    """The Brown corpus (berts.data.corpora.en_brown), 5% of its documents held out; one WordPiece
    vocabulary (--vocab), NSP-pair shards of --seq tokens; then `berts pretrain` with each of
    data.objective = clm, seq2seq, unilm for --budget on --preset; the held-out losses against
    the unigram entropy, and greedy continuations of the first --samples held-out sentences."""
    from pathlib import Path

    from berts.data import corpora
    from berts.serve.generate import TextGenerator

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    docs = corpora.en_brown()["text"].read_text(encoding="utf-8").split("\n\n")
    held = docs[::20]
    train = [d for i, d in enumerate(docs) if i % 20]
    (out / "train.txt").write_text("\n\n".join(train) + "\n", encoding="utf-8")
    (out / "heldout.txt").write_text("\n\n".join(held) + "\n", encoding="utf-8")
    tok = out / "tok"
    cli("tokenizer", "train", "--corpus", out / "train.txt", "--vocab-size", args.vocab, "--out", tok, "--overwrite")
    for name in ("train", "heldout"):
        cli("prepare", out / f"{name}.txt", "--tokenizer", tok, "--out", out / f"shards-{name}", "--objective", "nsp",
            "--max-seq-length", args.seq, "--workers", 1, "--overwrite", "--quiet")
    entropy = unigram_entropy(out / "shards-train")
    held_entropy = unigram_entropy(out / "shards-heldout")
    results = {"unigram_entropy_train": entropy, "unigram_entropy_heldout": held_entropy, "runs": {}}
    for objective in args.objectives.split(","):
        run = out / objective
        cli("pretrain", "--data", out / "shards-train", "--preset", args.pretrain_preset, "--out", run, "--overwrite",
            "--budget", args.budget, "--batch-size", 32, "--lr", args.lr, "--set", "schedule.warmup=0.02",
            "--set", f"data.objective={objective}", "--set", f"data.eval_shards={out / 'shards-heldout'}",
            "--set", f"model.max_position_embeddings={args.seq}", "--set", "train.save_every=100000",
            "--set", "train.eval_every=250", "--set", "data.eval_batches=10", "--set", "log.every=50", "--set", f"impl.threads={args.threads}",
            "--set", "log.progress=none", "--set", "data.num_workers=0")
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        part = "mlm" if objective == "unilm" else "lm"
        curve = [(r["step"], round(r[part], 3)) for r in rows if r["kind"] == "train" and part in r]
        evals = [r for r in rows if r["kind"] == "eval"]
        results["runs"][objective] = {"curve": curve, "eval": evals[-1] if evals else None}
        print(json.dumps({objective: results["runs"][objective]["eval"], "unigram_entropy": entropy}), flush=True)
    samples = []
    prompts = [" ".join(p.split()[:6]) for d in held for p in d.splitlines() if len(p.split()) > 10][:args.samples]  # the first N
    for objective in ("clm", "unilm"):
        if (out / objective / "final").is_dir():
            gen = TextGenerator.load(out / objective / "final")
            for prompt in prompts:
                samples.append({"model": objective, "prompt": prompt, "text": gen(prompt, max_new_tokens=20)})
                print(json.dumps(samples[-1]), flush=True)
    results["samples"] = samples
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pretrain", action="store_true", help="the pretraining runs instead of the speed table")
    ap.add_argument("--budget", default="3m", help="--pretrain: wall clock per objective")
    ap.add_argument("--objectives", default="clm,seq2seq,unilm")
    ap.add_argument("--pretrain-preset", default="tiny")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--seq", type=int, default=64, help="--pretrain: tokens per instance (64)")
    ap.add_argument("--lr", default="3e-3", help="--pretrain: peak learning rate (3e-3)")
    ap.add_argument("--vocab", type=int, default=8000, help="--pretrain: WordPiece vocabulary (8000)")
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--lengths", default="32,128,512")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="write the table as JSON here")
    ap.add_argument("--quick", action="store_true",
                    help="toy sizes, seconds, no download: tiny preset, lengths 8,16; with --pretrain, tiny made-up "
                         "text, 2 s per objective (the numbers mean nothing)")
    args = ap.parse_args()
    if args.quick:
        args.preset, args.lengths, args.repeats, args.threads = "tiny", "8,16", 1, 1
        args.budget, args.vocab, args.seq, args.samples = "2s", 120, 32, 1
        if args.pretrain:
            import tempfile

            import quick

            args.out = args.out or tempfile.mkdtemp(prefix="generate-quick-")
            quick.use_tiny_corpora(args.out)
    if args.pretrain:
        return pretrain(args)
    torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")]
    torch.manual_seed(0)
    config = preset(args.preset, vocab_size=8000, max_position_embeddings=max(512, max(lengths)))
    model = BertForUnifiedLM(config).to(args.device).eval()
    sep = 3
    with torch.no_grad():
        model.mlm.bias[sep] = -1e4  # never stop early: every run makes exactly the tokens asked for
    rows = []
    for length in lengths:
        row = {"length": length, "new_tokens": length - 1}
        ids = {}
        for cache in (True, False):
            best = float("inf")
            for _ in range(args.repeats if length < 512 or cache else 1):
                t0 = time.perf_counter()
                out = generate_ids(model, [2], eos_token_id=sep, max_new_tokens=length - 1, use_cache=cache)
                if args.device != "cpu":
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t0)
            ids[cache] = out
            row["cache_tok_s" if cache else "no_cache_tok_s"] = round(len(out) / best, 1)
        row["same_ids"] = ids[True] == ids[False]
        row["speedup"] = round(row["cache_tok_s"] / row["no_cache_tok_s"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{args.preset} ({config.num_hidden_layers} layers, hidden {config.hidden_size}), {args.device}, "
          f"{args.threads} threads, greedy, batch 1\n")
    print("| length | tokens/s, cache | tokens/s, no cache | speed-up | same ids |")
    print("|---:|---:|---:|---:|:---:|")
    for r in rows:
        print(f"| {r['length']} | {r['cache_tok_s']:.0f} | {r['no_cache_tok_s']:.0f} | {r['speedup']:.1f}x | "
              f"{'yes' if r['same_ids'] else 'NO'} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"preset": args.preset, "device": args.device, "threads": args.threads, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
