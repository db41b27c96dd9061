"""Encode's CPU levers one by one against sentence-transformers: all-MiniLM-L6-v2, 2,000 Rotten
Tomatoes snippets, batch 32, 2 threads, every side in turn each round (order reversed every other
round); speed-up = median over rounds of ST time / side time.

    PYTHONPATH=src .venv/bin/python experiments/2026-12-07-encode-speed/levers.py 3

Sides: base (no unpad, no oneDNN packing, one stream, SDPA's flash kernel at every length),
short (+ the short-row attention), +dnn (+ oneDNN-packed linears, GELU fused), +2s (+ two
1-thread streams), unpad+... (the encoder's unpad path too: what encode ships).
The table in README.md is of 068a41e; the short-row attention (berts.model.attention.SHORT_CPU) was
removed at 84da57e, so with today's code the "short" sides equal the ones without it.
"""
import sys, time, torch, statistics, numpy as np
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import embed as B
from berts.embed.encoder import Encoder
import berts.model.attention as A
torch.set_num_threads(2)
d = B.model_dir(Path("bench_out/levers"), False)
texts = B.sentences(2000)
from sentence_transformers import SentenceTransformer
st = SentenceTransformer(str(d), device="cpu")
enc = Encoder.from_pretrained(d)
ref = st.encode(texts, batch_size=32, convert_to_numpy=True)
V = {"base": dict(unpad=False, onednn=False, streams=1, short=0),
     "short": dict(unpad=False, onednn=False, streams=1, short=64),
     "short+dnn": dict(unpad=False, onednn=True, streams=1, short=64),
     "short+dnn+2s": dict(unpad=False, onednn=True, streams=2, short=64),
     "unpad+short+dnn+2s": dict(unpad=True, onednn=True, streams=2, short=64),
     "short+2s": dict(unpad=False, onednn=False, streams=2, short=64)}
def setv(v):
    enc.unpad, enc.onednn, enc.streams = v["unpad"], v["onednn"], v["streams"]; A.SHORT_CPU = v["short"]
for k, v in V.items():
    setv(v); print(k, "max abs diff to ST", np.abs(enc.encode(texts) - ref).max())
times = {k: [] for k in list(V) + ["st"]}
for r in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
    keys = list(times) if r % 2 == 0 else list(times)[::-1]
    for k in keys:
        t = time.perf_counter()
        if k == "st": st.encode(texts, batch_size=32, convert_to_numpy=True)
        else: setv(V[k]); enc.encode(texts)
        times[k].append(time.perf_counter() - t)
    print(r, {k: round(v[-1], 2) for k, v in times.items()}, flush=True)
for k, v in times.items():
    ratios = [s / t for s, t in zip(times["st"], v)]
    print("%-22s %.2f s  %.0f sent/s  x ST median %.3f" % (k, statistics.median(v), 2000/statistics.median(v), statistics.median(ratios)))
