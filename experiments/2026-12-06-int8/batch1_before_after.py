"""Batch-1 torch latency before/after the batch-1 changes: Classifier.predict([text]) of the same
directory, run by two source trees in alternating subprocesses (one thread; process CPU time).

    python experiments/2026-12-06-int8/batch1_before_after.py BEFORE_SRC AFTER_SRC MODEL_DIR [--rounds 3]

BEFORE_SRC: `git worktree add /tmp/base b923e13` then /tmp/base/src; MODEL_DIR: the MiniLM-shaped
classifier benchmarks/batch1.py writes (OUT/model). Texts: the first 100 Brown paragraphs' first sentences.
"""
import json
import os
import statistics
import subprocess
import sys

CHILD = r'''
import sys, time, warnings, torch
torch.set_num_threads(1); warnings.filterwarnings("ignore")
from berts.serve.predict import Classifier
from berts.data import corpora
lines = [t for t in corpora.en_brown()["text"].read_text(encoding="utf-8").splitlines() if t.strip()]
texts = [t.split(" . ")[0][:400] for t in lines[:100]]
clf = Classifier.from_pretrained(sys.argv[1], device="cpu")
for t in texts[:10]: clf.predict([t])
c, w = time.process_time(), time.perf_counter()
for t in texts: clf.predict([t])
print((time.process_time() - c) / len(texts) * 1e3, (time.perf_counter() - w) / len(texts) * 1e3)
'''


def main():
    before, after, model = sys.argv[1:4]
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    res = {"before": [], "after": []}
    for r in range(rounds):
        for side in (("before", "after") if r % 2 == 0 else ("after", "before")):
            env = dict(os.environ, PYTHONPATH={"before": before, "after": after}[side], OMP_NUM_THREADS="1")
            out = subprocess.run([sys.executable, "-c", CHILD, model], env=env, capture_output=True, text=True, check=True)
            res[side].append([float(x) for x in out.stdout.split()])
    summary = {k: {"cpu_ms": statistics.median(x[0] for x in v), "wall_ms": statistics.median(x[1] for x in v)}
               for k, v in res.items()}
    summary["cpu_speedup"] = summary["before"]["cpu_ms"] / summary["after"]["cpu_ms"]
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
