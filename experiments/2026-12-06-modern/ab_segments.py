"""A/B in one process, short inputs: packed rows attended by sequence and segment (this code: global
layers per run of equal lengths with no mask, local layers reading segment ids, the block mask never
built; with autograd, rows up to encoder.PACKED_CALL_UPTO = 256 wide keep the packed call) against the path before it (forced here: unpad_index's result gets its block-diagonal
[rows, 1, S, S] mask built up front and no segments, so every layer takes the one packed SDPA call
with that mask, as the code before did on rows under 1,024 tokens). Forward with unpad + pack, the
32-row padded batches of benchmarks/long_context.py (lengths spread over L/4 .. L), one thread,
alternated, the order flipping each round, median of rounds after a warm-up. Models: tiny-modern,
and the classic encoder at its width and depth (every layer global: the most calls per sequence);
``train`` rows: forward + backward in train mode (attention dropout 0.1 for the classic one).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-modern/ab_segments.py --rounds 9

``--long L1,L2``: the same A/B on the long mixed batch of benchmarks/long_context.py (L, L/2, L/4, L/8
padded to L), tiny-modern, eval, with peak memory. The code before ran rows of 1,024 tokens or more
with the global layers per sequence already, so there "before" is: the block mask built up front,
the global layers per sequence, the local layers gathering each block's window from the [S, S] mask.
"""
import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from long_context import SHORT_VARIANTS, short_batches  # noqa: E402

from berts.model import encoder  # noqa: E402
from berts.model.config import preset  # noqa: E402
from berts.model.encoder import BertModel  # noqa: E402

NEW = encoder.unpad_index


def old_unpad_index(*args, **kwargs):
    u = NEW(*args, **kwargs)
    if u is None or u.segments is None:
        return u
    return replace(u, given_mask=u.mask, segments=None)  # the mask built up front, every layer reads it


REAL_LOCAL = encoder.local_attention


CURRENT = {}


def old_unpad_index_long(*args, **kwargs):
    u = NEW(*args, **kwargs)
    if u is not None and u.segments is not None:
        u.mask  # noqa: B018 (built up front, as unpad_index did)
        CURRENT["u"] = u
    return u


def old_local_attention(q, k, v, mask=None, *, window, dropout_p=0.0, segments=None):
    if segments is not None:  # the code before passed unpadded.mask (one [rows, 1, S, S]), gathered per block
        u = CURRENT["u"]
        assert segments is u.segments and mask is None
        mask = u.mask
    return REAL_LOCAL(q, k, v, mask, window=window, dropout_p=dropout_p)


def long_ab(lengths, rounds):
    from long_context import batches

    from berts.tools.bench.measure import peak_memory

    config = preset("tiny-modern")
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False).eval()
    model.set_fast_path(unpad=True, pack=True)
    fn = lambda b: model(**b).last_hidden_state  # noqa: E731
    sides = {"before": (old_unpad_index_long, old_local_attention), "after": (NEW, REAL_LOCAL)}

    def use(side):
        encoder.unpad_index, encoder.local_attention = sides[side]

    rows = []
    with torch.inference_mode():
        for length in lengths:
            b = batches(length, config.vocab_size, 4)["mixed"]
            real = int(b["attention_mask"].sum())
            outs, peaks, times = {}, {}, {s: [] for s in sides}
            for side in sides:
                use(side)
                outs[side] = fn(b)
                peaks[side] = peak_memory(fn, b, model, None, torch.device("cpu")) / 2 ** 20
            for r in range(rounds + 1):
                for side in (list(sides) if r % 2 else list(sides)[::-1]):
                    use(side)
                    t = time.perf_counter()
                    fn(b)
                    if r:
                        times[side].append(time.perf_counter() - t)
            use("after")
            med = {s: statistics.median(t) for s, t in times.items()}
            row = {"case": "tiny-modern eval, mixed", "length": length, "real_tokens": real,
                   "max_abs_diff_eval": float((outs["before"] - outs["after"]).abs().max()),
                   **{f"{s} tokens/s": round(real / med[s]) for s in sides},
                   "after / before": round(med["before"] / med["after"], 3),
                   **{f"{s} peak MiB": round(peaks[s], 1) for s in sides}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--lengths", default="128,512")
    ap.add_argument("--long", help="long mixed batches instead (lengths, e.g. 2048,8192)")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.long:
        rows = long_ab([int(x) for x in args.long.split(",")], args.rounds)
        if args.out:
            Path(args.out).write_text(json.dumps({"torch": torch.__version__, "rounds": args.rounds, "rows": rows},
                                                 indent=2) + "\n")
        return
    base = preset("tiny-modern")
    variants = dict(SHORT_VARIANTS)
    models = {}
    for name in ("modern", "classic"):
        torch.manual_seed(0)
        m = BertModel(base.replace(**variants[name]), add_pooling_layer=False)
        m.set_fast_path(unpad=True, pack=True)
        models[name] = m
    models["classic"].config.attention_probs_dropout_prob = 0.1
    for layer in models["classic"].encoder.layers:
        layer.attention.attn_dropout = 0.1
    sides = {"before": old_unpad_index, "after": NEW}

    def forward(model, batch, train):
        model.train(train)
        if train:
            model(**batch).last_hidden_state.square().mean().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode():
                model(**batch)

    cases = []
    for length in map(int, args.lengths.split(",")):
        batch = short_batches(length, base.vocab_size)["32 padded"]
        for name in models:
            cases.append((f"{name} eval", length, batch, models[name], False))
        for name in models:
            cases.append((f"{name} train", length, batch, models[name], True))
    rows = []
    for label, length, batch, model, train in cases:
        real = int(batch["attention_mask"].sum())
        model.eval()
        outs = {}
        for side, fn in sides.items():
            encoder.unpad_index = fn
            with torch.inference_mode():
                outs[side] = model(**batch).last_hidden_state
        times = {s: [] for s in sides}
        for r in range(args.rounds + 1):
            for side in (list(sides) if r % 2 else list(sides)[::-1]):
                encoder.unpad_index = sides[side]
                t = time.perf_counter()
                forward(model, batch, train)
                if r:
                    times[side].append(time.perf_counter() - t)
        encoder.unpad_index = NEW
        med = {s: statistics.median(t) for s, t in times.items()}
        row = {"case": label, "length": length, "real_tokens": real,
               "max_abs_diff_eval": float((outs["before"] - outs["after"]).abs().max()),
               **{f"{s} tokens/s": round(real / med[s]) for s in sides},
               "after / before": round(med["before"] / med["after"], 3)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"torch": torch.__version__, "rounds": args.rounds, "rows": rows},
                                             indent=2) + "\n")


if __name__ == "__main__":
    main()
