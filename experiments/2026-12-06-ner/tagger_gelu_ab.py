"""Tagger.predict's CPU time, the serving path before this change against the new one, in one
process (alternated rounds after a warm-up, the median): "before" = oneDNN linears without the
GELU fused, batch 16; "after" = the FFN's GELU fused into its oneDNN up-projection, at batch 16, 24
and 32 (32 is the new default). Both on unpad + pack, whose packed rows attend each sequence alone
without autograd (main since 95e1ff1; on e898ef6 they were padded rows with a block mask, which
this script measured first: see README). The model and texts of benchmarks/ner_predict.py (128
texts), one thread. The entities must be the same in every variant (asserted).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-ner/tagger_varlen_ab.py --preset small
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
p.add_argument("--rounds", type=int, default=8)
args = p.parse_args()
torch.set_num_threads(1)
texts, words = ner_predict.texts_and_vocab(128, 40)
with tempfile.TemporaryDirectory() as tmp:
    ner_predict.build(Path(tmp) / "ner", args.preset, words)
    tagger = Tagger.from_pretrained(Path(tmp) / "ner", device="cpu")
model = tagger.model
BEFORE = "before: GELU apart, b16"
variants = {BEFORE: (dict(unpad=True, pack=True), 16, False)}
for b in (16, 24, 32):
    variants[f"after: GELU fused, b{b}"] = (dict(unpad=True, pack=True), b, True)
times = {v: [] for v in variants}
reference = None
for r in range(args.rounds + 1):  # round 0: the warm-up, and the entity check
    for name, (switches, batch, fuse) in variants.items():
        model.set_fast_path(**switches)
        unpack_linears(model)
        pack_linears(model, fuse_gelu=fuse)
        c = time.process_time()
        out = tagger.predict_words(texts, batch_size=batch)
        times[name].append(time.process_time() - c)
        entities = [[(e["type"], e["start"], e["end"]) for e in x["entities"]] for x in out]
        scores = [s for x in out for s in x["scores"]]
        reference = reference or (entities, scores)
        assert entities == reference[0], name
        if r == 0:
            print(f"{name}: max |score - before's| {max(abs(a - b) for a, b in zip(scores, reference[1])):.1e}")
base = statistics.median(times[BEFORE][1:])
for name, ts in times.items():
    m = statistics.median(ts[1:])
    print(f"preset {args.preset} {name:32s} {len(texts) / m:7.1f} texts per CPU-second ({base / m:.3f}x before)")
