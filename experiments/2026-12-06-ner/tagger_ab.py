"""Tagger.predict's CPU time with the two serving choices of this branch switched on and off in one
process (alternated rounds, the median): batch 16 vs 64 sentences, linear layers packed for oneDNN
(berts.model.onednn) vs plain nn.Linear (MKL). The model and texts of benchmarks/ner_predict.py
(128 texts), one thread.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-ner/tagger_ab.py --preset small
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

from berts.model.onednn import pack_linears, unpack_linears  # noqa: E402
from berts.serve.tagger import Tagger  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--preset", default="small")
p.add_argument("--rounds", type=int, default=5)
args = p.parse_args()
torch.set_num_threads(1)
texts, words = ner_predict.texts_and_vocab(128, 40)
with tempfile.TemporaryDirectory() as tmp:
    ner_predict.build(Path(tmp) / "ner", args.preset, words)
    tagger = Tagger.from_pretrained(Path(tmp) / "ner", device="cpu")
variants = [(b, packed) for packed in (False, True) for b in (64, 16)]
times = {v: [] for v in variants}
reference = None
for _ in range(args.rounds + 1):  # the first round is the warm-up, and checks the entities agree
    for b, packed in variants:
        (pack_linears if packed else unpack_linears)(tagger.model)
        c = time.process_time()
        out = tagger.predict(texts, batch_size=b)
        times[(b, packed)].append(time.process_time() - c)
        reference = reference or out
        assert [[(e["type"], e["start"], e["end"]) for e in x] for x in out] == \
            [[(e["type"], e["start"], e["end"]) for e in x] for x in reference]
base = statistics.median(times[(64, False)][1:])
for (b, packed), ts in times.items():
    m = statistics.median(ts[1:])
    print(f"preset {args.preset} batch {b:3d} {'oneDNN packed' if packed else 'nn.Linear    '}: "
          f"{len(texts) / m:7.1f} texts per CPU-second ({base / m:.3f}x batch 64 nn.Linear)")
