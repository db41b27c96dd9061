"""A/B in one process: the global layer on long packed rows per sequence (attention.varlen_attention,
rows >= encoder.VARLEN_FROM wide) against the one packed call with its block-diagonal mask (the path
before, forced by setting VARLEN_FROM past the width), tiny-modern, forward with unpad + pack,
alternated, one thread, median of rounds; peak memory as benchmarks/long_context.py measures it.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-modern/ab_varlen.py --rounds 4
"""
import argparse
import json
import statistics
import time

import torch

from berts.model import encoder
from berts.model.config import preset
from berts.model.encoder import BertModel
from berts.tools.bench.measure import peak_memory


def batch(rows, width, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (len(rows), width), generator=g)
    mask = (torch.arange(width)[None, :] < torch.tensor(rows)[:, None]).long()
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--lengths", default="2048,8192")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = preset("tiny-modern")
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False).eval()
    model.set_fast_path(unpad=True, pack=True)
    fn = lambda b: model(**b).last_hidden_state  # noqa: E731
    sides = {"packed": 10 ** 9, "per sequence": encoder.VARLEN_FROM}
    rows = []
    with torch.inference_mode():
        for length in map(int, args.lengths.split(",")):
            b = batch([length, length // 2, length // 4, length // 8], length, config.vocab_size)
            real = int(b["attention_mask"].sum())
            outs, times, peaks = {}, {s: [] for s in sides}, {}
            for side, at in sides.items():
                encoder.VARLEN_FROM = at
                outs[side] = fn(b)
                peaks[side] = peak_memory(fn, b, model, None, torch.device("cpu")) / 2 ** 20
            for r in range(args.rounds + 1):
                for side in (list(sides) if r % 2 else list(sides)[::-1]):
                    encoder.VARLEN_FROM = sides[side]
                    t = time.perf_counter()
                    fn(b)
                    if r:
                        times[side].append(time.perf_counter() - t)
            row = {"length": length, "real_tokens": real,
                   "max_abs_diff": float((outs["packed"] - outs["per sequence"]).abs().max()),
                   **{f"{s} tokens/s": real / statistics.median(t) for s, t in times.items()},
                   **{f"{s} peak MiB": peaks[s] for s in sides}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    encoder.VARLEN_FROM = sides["per sequence"]
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"torch": torch.__version__, "rounds": args.rounds, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
