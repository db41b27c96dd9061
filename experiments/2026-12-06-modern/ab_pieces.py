"""The two changed pieces alone, old (ab_fastpath.py's copies of b923e13) vs new, alternated in one
process, one thread, median of 30 after 2 warm-ups (milliseconds per call).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-modern/ab_pieces.py
"""
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from ab_fastpath import old_local_attention, old_rope_qkv  # noqa: E402

from berts.model.attention import local_attention, rope_angles, rope_qkv  # noqa: E402


def ab(old, new, rounds=32):
    times = {"old": [], "new": []}
    with torch.inference_mode():
        for r in range(rounds):
            for side, fn in (("old", old), ("new", new)) if r % 2 else (("new", new), ("old", old)):
                t = time.perf_counter()
                fn()
                times[side].append(time.perf_counter() - t)
    return {k: round(statistics.median(v[2:]) * 1e3, 2) for k, v in times.items()}


def main():
    torch.set_num_threads(1)
    heads, d, length = 2, 64, 2048
    qkv = torch.randn(1, length, 3 * heads * d)
    cos, sin = rope_angles(torch.arange(length)[None], d, 1e4)
    print("rope on q and k, 1 x 2,048 tokens:", ab(lambda: old_rope_qkv(qkv, cos, sin, heads),
                                                     lambda: rope_qkv(qkv, cos, sin, heads)))
    for s, rows, padded in ((2048, 1, False), (128, 32, True), (512, 32, True)):
        q, k, v = torch.randn(3, rows, heads, s, d).unbind(0)
        mask = torch.ones(rows, 1, 1, s, dtype=torch.bool)
        if padded:
            mask[1:, ..., s // 2:] = False
        print(f"local attention, window 64, {rows} x {s}{' padded' if padded else ''}:",
              ab(lambda: old_local_attention(q, k, v, mask, window=64), lambda: local_attention(q, k, v, mask, window=64)))


if __name__ == "__main__":
    main()
