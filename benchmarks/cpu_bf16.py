"""bf16 autocast against fp32 on this CPU, through the real training commands.

    .venv/bin/python benchmarks/cpu_bf16.py --out bench_out/cpu_bf16 --threads 2 --steps 40 --rounds 2

Where the CPU has AMX's bf16 tiles (``berts.train.engine.cpu_has_amx``), oneDNN runs bf16 matmuls
several times faster than fp32; whether a training step gains depends on how much of it is matmuls.
Three steps of the demo, each run for ``--steps`` optimizer steps at both precisions, alternated
``--rounds`` times (the machine's drift hits both), the median seconds per step compared:

* ``finetune``: MiniLM-L6 (the demo's English teacher) on the Rotten Tomatoes snippets, batch 32, 64 tokens;
* ``distill``: a DistilBERT 3-layer student of that teacher (the fp32 fine-tuned one);
* ``pretrain``: the ``tiny`` preset (H=128) on MLM, batch 32 x 128 (``--shards``: prepared MLM shards;
  default the recipes benchmark's, skipped when absent).

The first-step losses of the two precisions are printed too (how far bf16 moves the numbers).
Results: OUT/results.jsonl, one line per run, and a table on stdout.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def run(argv: list, log: Path) -> None:
    with open(log, "w") as f:
        subprocess.run([sys.executable, "-m", "berts", *map(str, argv)], check=True, stdout=f, stderr=subprocess.STDOUT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench_out/cpu_bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--shards", default="bench_out/recipes14/shards-none-train-s128-r4")
    ap.add_argument("--quick", action="store_true", help="seconds, no download: a tiny 6-layer BERT on tiny "
                    "made-up reviews (benchmarks/quick.py), 20 steps, one round, no pretraining row unless --shards "
                    "is given (the numbers mean nothing)")
    args = ap.parse_args()
    if args.quick:
        import tempfile

        import quick

        if args.out == ap.get_default("out"):
            args.out = tempfile.mkdtemp(prefix="cpu-bf16-quick-")
        if args.shards == ap.get_default("shards"):
            args.shards = ""
        args.threads, args.steps, args.rounds = 1, 20, 1
        quick.use_tiny_corpora(args.out)

    from berts.data import corpora
    from berts.train.engine import cpu_has_amx

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    en, minilm = corpora.en_rotten_tomatoes(), corpora.en_minilm()
    data = ["--train", en["train"], "--dev", en["dev"], "--text-column", "text", "--label-column", "label",
            "--max-length", 64, "--batch-size", 32, "--eval-every", 100000, "--keep-last", 0]
    common = ["--max-steps", args.steps, "--set", f"impl.threads={args.threads}", "--set", "log.every=10",
              "--set", "log.progress=none"]
    teacher = out / "teacher-fp32"
    jobs = {
        "finetune": lambda d: ["finetune", "--model", minilm, "--out", d, "--overwrite", "--lr", "1e-4", *data],
        "distill": lambda d: ["distill", "--method", "distilbert", "--teacher", teacher / "final", "--student-layers",
                              "0,2,4", "--out", d, "--overwrite", "--lr", "1e-4", *data],
    }
    if Path(args.shards, "meta.json").is_file():
        jobs["pretrain"] = lambda d: ["pretrain", "--data", args.shards, "--preset", "tiny", "--out", d, "--overwrite",
                                      "--batch-size", 32, "--lr", "1e-3", "--set", "model.norm_position=pre",
                                      "--set", "model.hidden_dropout_prob=0", "--set",
                                      "model.attention_probs_dropout_prob=0", "--set", "model.max_position_embeddings=128",
                                      "--set", "train.save_every=100000"]
    else:
        print(f"no shards at {args.shards}: the pretraining row is skipped", flush=True)
    # the distillation's teacher: MiniLM fine-tuned in fp32 for the same number of steps
    run([*jobs["finetune"](teacher), *common, "--precision", "fp32"], out / "teacher.log")
    results = []
    for name, job in jobs.items():
        for rnd in range(args.rounds):
            for precision in ("fp32", "bf16"):
                d = out / f"{name}-{precision}-{rnd}"
                run([*job(d), *common, "--precision", precision], out / f"{d.name}.log")
                train = [r for r in records(d / "metrics.jsonl") if r.get("kind") == "train"]
                # seconds per step between the first and the last log line (start-up and the final save left out)
                s_per_step = (train[-1]["elapsed"] - train[0]["elapsed"]) / (train[-1]["step"] - train[0]["step"])
                row = {"job": name, "precision": precision, "round": rnd, "s_per_step": round(s_per_step, 4),
                       "first_loss": train[0]["loss"], "last_loss": train[-1]["loss"], "threads": args.threads,
                       "amx": cpu_has_amx()}
                results.append(row)
                with open(out / "results.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    print(f"\nCPU has AMX bf16: {cpu_has_amx()}; {args.threads} threads, {args.steps} steps, {args.rounds} rounds\n")
    print("| step | fp32 s/step | bf16 s/step | bf16 speed-up | loss at step 10, fp32 / bf16 |")
    print("|---|---:|---:|---:|---|")
    for name in jobs:
        med = {p: statistics.median(r["s_per_step"] for r in results if r["job"] == name and r["precision"] == p)
               for p in ("fp32", "bf16")}
        first = {p: next(r["first_loss"] for r in results if r["job"] == name and r["precision"] == p)
                 for p in ("fp32", "bf16")}
        print(f"| {name} | {med['fp32']:.3f} | {med['bf16']:.3f} | {med['fp32'] / med['bf16']:.2f}x | "
              f"{first['fp32']:.4f} / {first['bf16']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
