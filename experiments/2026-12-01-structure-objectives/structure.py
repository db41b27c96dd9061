"""The structure objectives and ELECTRA on real text (issue 11): does each task's accuracy rise
well above chance in a short run?

    .venv/bin/python experiments/2026-12-01-structure-objectives/structure.py --recipes bench_out/recipes --budget 3m

Text: People's Daily (gold word segmentation), the articles of experiments/2026-12-01-pretraining-recipes/recipes.py's split
(every 20th article held out), its tokenizer. Per task, `berts prepare` with that objective on
the training articles and the held-out ones, then `berts pretrain` (tiny preset, --budget, batch
32) with the held-out shards evaluated at the end. Chance levels:

* reorder: 5/9 = 0.556 (the pieces are visible between [SEP]s: count them, guess the order);
* distance: 1/3, or the held-out majority class share if larger (printed);
* wso: 1/3 (the three shuffled tokens are visible: pick one of them); copying the shown token
  scores 0.2 on average over the 5 non-identity orders;
* electra: the share of original tokens (answer "original" everywhere), printed per run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def cli(*args, log=None) -> None:
    print("$ berts " + " ".join(map(str, args)), flush=True)
    subprocess.run([sys.executable, "-m", "berts", *map(str, args)], check=True,
                   stdout=log, stderr=subprocess.STDOUT if log else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipes", default="bench_out/recipes", help="experiments/2026-12-01-pretraining-recipes/recipes.py's output (corpus, tokenizer)")
    ap.add_argument("--out", default=None, help="default: RECIPES/structure")
    ap.add_argument("--budget", default="3m")
    ap.add_argument("--tasks", default="reorder,distance,wso,electra")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", default="1e-3")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra --set for every run")
    args = ap.parse_args()
    rec = Path(args.recipes)
    out = Path(args.out or rec / "structure")
    out.mkdir(parents=True, exist_ok=True)
    train_txt, held_txt, tok = rec / "corpus" / "news.train.txt", rec / "corpus" / "news.heldout.txt", rec / "tokenizer"
    results = {}
    for task in args.tasks.split(","):
        objective = {"wso": "none", "electra": "none"}.get(task, task)
        shards = {}
        for name, text in (("train", train_txt), ("heldout", held_txt)):
            d = out / f"shards-{objective}-{name}"
            if not (d / "meta.json").is_file():
                cli("prepare", text, "--tokenizer", tok, "--out", d, "--objective", objective, "--max-seq-length", 128,
                    "--segmenter", "gold", "--workers", 2, "--overwrite", "--quiet")
            shards[name] = d
        sets = {"wso": ["data.objective=none", "data.wso=true"], "electra": ["data.objective=electra"]}.get(
            task, [f"data.objective={task}"])
        run = out / task
        with open(out / f"{task}.log", "w") as log:
            cli("pretrain", "--data", shards["train"], "--preset", "tiny", "--out", run, "--overwrite",
                "--budget", args.budget, "--batch-size", 32, "--lr", args.lr,
                "--set", f"data.eval_shards={shards['heldout']}", "--set", "data.eval_batches=40",
                "--set", "model.max_position_embeddings=128", "--set", "train.save_every=100000",
                "--set", "log.every=50", "--set", f"impl.threads={args.threads}",
                *[x for s in sets + args.sets for x in ("--set", s)], log=log)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        evals = [r for r in rows if r.get("kind") == "eval"]
        train = [r for r in rows if r.get("kind") == "train"]
        meta = json.loads((shards["heldout"] / "meta.json").read_text())
        results[task] = {"steps": train[-1]["step"], "eval": evals[-1] if evals else None,
                         "first_train": train[0], "last_train": train[-1], "heldout_labels": meta.get("labels")}
        print(json.dumps({task: results[task]["eval"], "labels": meta.get("labels")}), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
