#!/bin/bash
# alternate new / old code, one thread each, sequentially
# run from a scratch folder holding lc.py = benchmarks/long_context.py; NEW = this tree's src, OLD = b923e13's (git archive b923e13 src)
export OMP_NUM_THREADS=1
PY=/work/main/.venv/bin/python
NEW=/work/wt/modern28/src; OLD=/tmp/m28old/src
for round in 1 2; do
  for side in new old; do
    [ $side = new ] && P=$NEW || P=$OLD
    uptime > load_long_${side}_$round.txt
    PYTHONPATH=$P $PY lc.py --threads 1 --rounds 4 --lengths 512,2048 --short '' --out long_${side}_$round.json > long_${side}_$round.log 2>&1
    uptime >> load_long_${side}_$round.txt
  done
done
for side in new old; do
  [ $side = new ] && P=$NEW || P=$OLD
  uptime > load_short_${side}.txt
  PYTHONPATH=$P $PY lc.py --threads 1 --rounds 4 --only-short --short 128,512 --out short_${side}.json > short_${side}.log 2>&1
  uptime >> load_short_${side}.txt
done
echo done > finished
