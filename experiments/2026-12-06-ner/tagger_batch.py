"""Tagger.predict's CPU time by batch size (sentences per batch), one thread, the texts and model of
benchmarks/ner_predict.py, alternated rounds, the median.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-ner/tagger_batch.py --preset mini
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import ner_predict  # noqa: E402

from berts.serve.tagger import Tagger  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--preset", default="mini")
p.add_argument("--batches", default="8,16,32,64,128")
p.add_argument("--rounds", type=int, default=5)
args = p.parse_args()
torch.set_num_threads(1)
texts, words = ner_predict.texts_and_vocab(128, 40)
with tempfile.TemporaryDirectory() as tmp:
    ner_predict.build(Path(tmp) / "ner", args.preset, words)
    tagger = Tagger.from_pretrained(Path(tmp) / "ner", device="cpu")
sizes = [int(x) for x in args.batches.split(",")]
times = {b: [] for b in sizes}
for b in sizes:
    tagger.predict(texts, batch_size=b)  # warm-up
for _ in range(args.rounds):
    for b in sizes:
        c = time.process_time()
        tagger.predict(texts, batch_size=b)
        times[b].append(time.process_time() - c)
for b in sizes:
    print(f"preset {args.preset} batch {b:4d}: {len(texts) / statistics.median(times[b]):7.1f} texts per CPU-second")
