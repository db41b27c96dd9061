"""F.linear (MKL sgemm) against oneDNN's linear on a weight held as a oneDNN tensor
(berts.model.onednn.PackedLinear), fp32, one thread, CPU time, the four matrix shapes of a
preset-small layer (hidden 512, intermediate 2048) on 500 tokens (a batch of 16 sentences).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-ner/onednn_linear.py
"""
import statistics
import time

import torch
import torch.nn.functional as F

from berts.model.onednn import PackedLinear

torch.set_num_threads(1)
SHAPES = [(500, 512, 1536), (500, 512, 512), (500, 512, 2048), (500, 2048, 512)]  # tokens, in, out
data = []
for m, k, n in SHAPES:
    lin = torch.nn.Linear(k, n).eval()
    data.append((torch.randn(m, k), lin, PackedLinear(lin)))


def mkl():
    for x, lin, _ in data:
        F.linear(x, lin.weight, lin.bias)


def onednn():
    for x, _, packed in data:
        packed(x)


times = {mkl: [], onednn: []}
with torch.inference_mode():
    worst = max(float((lin(x) - packed(x)).abs().max()) for x, lin, packed in data)
    for _ in range(15):  # alternated rounds, CPU time, the median
        for fn, ts in times.items():
            c = time.process_time()
            for _ in range(5):
                fn()
            ts.append(time.process_time() - c)
a, b = statistics.median(times[mkl]), statistics.median(times[onednn])
print(f"F.linear {a:.4f} s, oneDNN packed {b:.4f} s: {a / b:.3f}x; max |diff| {worst:.1e}")
