"""int8 schemes on real all-MiniLM-L6-v2 and real sentences: lowest / mean cosine of each
sentence's int8 embedding to its fp32 one, and sentences per second, one thread, alternated.

    PYTHONPATH=src python experiments/2026-12-06-int8/run.py --n 512 --rounds 3

The model: berts.data.corpora.en_minilm() with its sentence-transformers files (benchmarks/embed.py's
model_dir: mean pooling, normalisation). The sentences: the Brown corpus (berts.data.corpora.en_brown,
one paragraph a line): the LAST --n lines are embedded and scored; `smooth` calibrates on the
FIRST 256 lines (other texts than the scored ones). Each round runs every side in turn, the order
reversed every other round; speed-up = median over rounds of fp32 time / side time, in process
CPU time (steadier than wall time on a shared box; one thread, so it is the work done) and wall.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", default="bench_out/int8")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from embed import model_dir

    from berts.compress.transforms import INT8_SCHEMES
    from berts.data import corpora
    from berts.embed.engines import load_engine

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    d = model_dir(out, False)
    lines = [t for t in corpora.en_brown()["text"].read_text(encoding="utf-8").splitlines() if t.strip()]
    calibration, texts = lines[:256], lines[-args.n:]
    sides = {"fp32": load_engine(d)}
    for scheme in INT8_SCHEMES:
        sides[scheme] = load_engine(d, int8=scheme, calibration=calibration)
    ref = sides["fp32"].encode(texts, batch_size=args.batch)
    result = {"model": "all-MiniLM-L6-v2", "sentences": len(texts), "batch": args.batch, "threads": 1,
              "rounds": args.rounds, "torch": torch.__version__, "schemes": {}}
    cos = {}
    for k, enc in sides.items():
        e = enc.encode(texts, batch_size=args.batch)
        cos[k] = (e * ref).sum(1) / np.linalg.norm(e, axis=1) / np.linalg.norm(ref, axis=1)
    wall = {k: [] for k in sides}
    cpu = {k: [] for k in sides}
    for r in range(args.rounds):
        for k in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            t, c = time.perf_counter(), time.process_time()
            sides[k].encode(texts, batch_size=args.batch)
            wall[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    print("| scheme | lowest cosine | mean cosine | sentences/s | speed-up (CPU time) | speed-up (wall) |")
    print("|---|---|---|---|---|---|")
    for k in sides:
        row = {"min_cosine": float(cos[k].min()), "mean_cosine": float(cos[k].mean()),
               "sentences_per_s": len(texts) / statistics.median(wall[k]),
               "cpu_speedup": statistics.median(a / b for a, b in zip(cpu["fp32"], cpu[k])),
               "wall_speedup": statistics.median(a / b for a, b in zip(wall["fp32"], wall[k]))}
        result["schemes"][k] = row
        print(f"| {k} | {row['min_cosine']:.4f} | {row['mean_cosine']:.4f} | {row['sentences_per_s']:.1f} | "
              f"{row['cpu_speedup']:.2f}x | {row['wall_speedup']:.2f}x |")
    (out / "int8.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
