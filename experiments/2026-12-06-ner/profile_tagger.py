"""cProfile of Tagger.predict (3 calls on 64 texts, after a warm-up), the model and texts of
benchmarks/ner_predict.py, one thread; prints the top functions by own time.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-ner/profile_tagger.py --preset mini
"""
import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import ner_predict  # noqa: E402

from berts.serve.tagger import Tagger  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--preset", default="mini")
p.add_argument("--top", type=int, default=16)
args = p.parse_args()
torch.set_num_threads(1)
texts, words = ner_predict.texts_and_vocab(64, 40)
with tempfile.TemporaryDirectory() as tmp:
    ner_predict.build(Path(tmp) / "ner", args.preset, words)
    tagger = Tagger.from_pretrained(Path(tmp) / "ner", device="cpu")
tagger.predict(texts)
prof = cProfile.Profile()
prof.enable()
for _ in range(3):
    tagger.predict(texts)
prof.disable()
pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)
