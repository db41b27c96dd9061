"""Long context on CPU: forward tokens/s and peak memory of a modern berts encoder against
transformers' ModernBertModel on the same weights, and (``--short``) the cost of the modern
switches on short inputs: berts' classic encoder against the same width and depth with RoPE, then
a sliding window, then the whole modern preset, at 128 and 512 tokens, 32 rows a batch.

    .venv/bin/python benchmarks/long_context.py --threads 2 --out bench_out/long_context.json
    .venv/bin/python benchmarks/long_context.py --quick          # toy lengths, a check that it runs
    .venv/bin/python benchmarks/long_context.py --threads 1 --only-short --rounds 5   # the short rows

The berts model (``--preset``, default tiny-modern: RoPE, a 64-token window on two layers of three,
GeGLU, pre-LN) is saved as a ModernBERT directory and transformers loads it (``ModernBertModel``,
``attn_implementation="sdpa"``): same weights, and the script checks the two agree on the first
batch before timing. For each length L: batch 1 (one row of L tokens) and a padded batch of mixed
lengths (L, L/2, L/4, L/8, padded to L). berts runs in inference with its serving fast paths on
(unpad + pack: padding never reaches a linear layer; local layers attend by chunks of w/2, memory
linear in L); transformers as it ships. The two alternate, the order flipping each round; the first
round is a warm-up, the median of the rest is reported. tokens/s counts real tokens only. Peak
memory: the live tensors before the call plus the peak of the allocations during one forward
(torch's profiler, berts.tools.bench.measure.peak_memory), not the process RSS.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from berts.model.config import preset
from berts.model.encoder import BertModel
from berts.tools.bench.measure import peak_memory


def batches(length: int, vocab: int, mixed: int, seed: int = 0) -> dict[str, dict]:
    """{"batch 1": ..., "mixed": ...}: input_ids and attention_mask, ids drawn above the specials."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, lengths in (("batch 1", [length]), ("mixed", [max(8, length >> i) for i in range(mixed)])):
        ids = torch.randint(5, vocab, (len(lengths), length), generator=g)
        mask = torch.zeros(len(lengths), length, dtype=torch.long)
        for i, n in enumerate(lengths):
            mask[i, :n] = 1
        ids = ids.masked_fill(mask == 0, 0)
        out[name] = {"input_ids": ids, "attention_mask": mask}
    return out


def timed(fn, batch) -> float:
    t = time.perf_counter()
    with torch.inference_mode():
        fn(batch)
    return time.perf_counter() - t


def compare(sides: dict, lengths: list[int], vocab: int, rounds: int, mixed: int, make=None) -> list[dict]:
    """Time every side on each length's batches (``make(length, vocab)``: {name: batch}, default the
    long rows' ``batches``), alternated, the order flipping each round; round 0 is a warm-up."""
    make = make or (lambda length, vocab: batches(length, vocab, mixed))
    rows = []
    for length in lengths:
        for name, batch in make(length, vocab).items():
            real = int(batch["attention_mask"].sum())
            times = {impl: [] for impl in sides}
            order = list(sides)
            for r in range(rounds + 1):  # round 0: warm-up
                for impl in (order if r % 2 == 0 else order[::-1]):
                    t = timed(sides[impl], batch)
                    if r:
                        times[impl].append(t)
            peaks = {}
            for impl, fn in sides.items():
                with torch.inference_mode():
                    peaks[impl] = peak_memory(fn, batch, fn.model, None, torch.device("cpu")) / 2**20
            base = None
            for impl in sides:
                sec = statistics.median(times[impl])
                row = {"length": length, "batch": name, "rows": batch["input_ids"].shape[0], "real_tokens": real,
                       "impl": impl, "seconds": sec, "tokens_per_s": real / sec, "peak_mib": peaks[impl]}
                if base is None:
                    base = row
                else:
                    base.setdefault("ratio", {})[impl] = base["tokens_per_s"] / row["tokens_per_s"]
                rows.append(row)
            print(" | ".join(f"{r['impl']} {r['tokens_per_s']:.0f} tok/s {r['peak_mib']:.0f} MiB"
                             for r in rows[-len(sides):]) + f"   <- L={length} {name}", flush=True)
    return rows


class Forward:
    """A callable forward of one model (last hidden state), for timing and the memory profiler."""

    def __init__(self, model, berts: bool):
        self.model, self.berts = model, berts

    def __call__(self, batch):
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.last_hidden_state  # berts: zeros at padding positions with unpad on (real tokens equal)


def long_sides(config, workdir: Path) -> dict:
    import transformers

    torch.manual_seed(0)
    ours = BertModel(config, add_pooling_layer=False).eval()
    ours.set_fast_path(unpad=True, pack=True)  # serving: as berts.serve.load does
    ours.save_pretrained(workdir / "modern")
    saved = json.loads((workdir / "modern" / "config.json").read_text())
    assert saved["model_type"] == "modernbert", saved.get("model_type")
    transformers.utils.logging.set_verbosity_error()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = transformers.AutoModel.from_pretrained(workdir / "modern", attn_implementation="sdpa").eval()
    return {"berts": Forward(ours, True), "transformers": Forward(theirs, False)}


def check_same(sides: dict, vocab: int, length: int) -> float:
    """Largest |difference| of the real tokens' hidden states on a mixed batch longer than the window."""
    batch = batches(length, vocab, 3)["mixed"]
    with torch.inference_mode():
        a, b = (sides[k](batch) for k in ("berts", "transformers"))
    real = batch["attention_mask"].bool()
    return float((a[real] - b[real]).abs().max())


def short_batches(length: int, vocab: int, rows: int = 32, seed: int = 0) -> dict[str, dict]:
    """{"32 full": rows of ``length`` tokens, "32 padded": lengths spread evenly over length/4 .. length
    (mean 5/8 of it), padded to ``length``}: what a server batches at short lengths."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, lengths in ((f"{rows} full", [length] * rows),
                          (f"{rows} padded", [length // 4 + (i * (length - length // 4)) // (rows - 1)
                                              for i in range(rows)])):
        ids = torch.randint(5, vocab, (rows, length), generator=g)
        mask = (torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]).long()
        out[name] = {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}
    return out


# (name, switches on top of the preset): the classic encoder, then the modern switches added one
# group at a time, all at the preset's width, depth, heads and intermediate_size
SHORT_VARIANTS = (
    ("classic", dict(position_embedding_type="absolute", sliding_window=None, norm_position="post",
                     first_attn_norm=True, ffn="standard", bias=True, type_vocab_size=2, pooler_norm=False)),
    ("+rope", dict(sliding_window=None, norm_position="post", first_attn_norm=True, ffn="standard", bias=True,
                   type_vocab_size=2, pooler_norm=False)),
    ("+rope+window", dict(norm_position="post", first_attn_norm=True, ffn="standard", bias=True, type_vocab_size=2,
                          pooler_norm=False)),
    ("modern", {}),
)


def short_rows(name: str, lengths: list[int], rounds: int, rows: int = 32) -> list[dict]:
    """The cost of the modern switches on short inputs: berts' classic encoder against the same
    width and depth with RoPE, then a sliding window, then everything of the preset (GeGLU with its
    2x up matrix, pre-LN, no bias), forward with the serving fast paths, ``rows`` rows a batch."""
    base = preset(name)
    sides = {}
    for variant, switches in SHORT_VARIANTS:
        torch.manual_seed(0)
        m = BertModel(base.replace(**switches), add_pooling_layer=False).eval()
        m.set_fast_path(unpad=True, pack=True)
        sides[variant] = Forward(m, True)
    return compare(sides, lengths, base.vocab_size, rounds, 0, make=lambda n, v: short_batches(n, v, rows))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny-modern")
    ap.add_argument("--lengths", default="512,2048,8192")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds after one warm-up round")
    ap.add_argument("--mixed", type=int, default=4, help="rows of the mixed batch (L, L/2, L/4, ...)")
    ap.add_argument("--short", default="128,512", help="lengths of the classic-vs-modern rows ('' = none)")
    ap.add_argument("--short-rows", type=int, default=32, help="rows of a short batch")
    ap.add_argument("--only-short", action="store_true", help="the short rows alone (no transformers)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--quick", action="store_true", help="toy lengths: a check that the script runs")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")]
    short = [int(x) for x in args.short.split(",") if x]
    rounds = args.rounds
    if args.quick:
        lengths, short, rounds = [160, 320], [64], 1
    config = preset(args.preset)
    result = {"benchmark": "long_context", "preset": args.preset, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "rounds": rounds, "mixed_rows": args.mixed}
    if not args.only_short:
        with tempfile.TemporaryDirectory(prefix="berts-long-") as tmp:
            sides = long_sides(config, Path(tmp))
            import transformers

            result["transformers"] = transformers.__version__
            result["max_abs_diff"] = check_same(sides, config.vocab_size,
                                                max(2 * (config.sliding_window or 64) + 40, 160))
            print(f"same weights: max |berts - transformers| on real tokens = {result['max_abs_diff']:.2e}", flush=True)
            result["long"] = compare(sides, lengths, config.vocab_size, rounds, args.mixed)
    if short:
        result["short"] = short_rows(args.preset, short, rounds, 4 if args.quick else args.short_rows)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
