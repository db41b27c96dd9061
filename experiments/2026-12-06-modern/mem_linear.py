"""Peak memory of one berts forward (tiny-modern, serving fast paths: unpad + pack, inference mode)
against the length: the padded mixed batch of benchmarks/long_context.py (L, L/2, L/4, L/8 padded
to L) and batch 1, as that script measures it (live tensors + the peak of the allocations during
the forward, torch's profiler), plus the largest single allocation of the forward: a mask or
scores tensor quadratic in L would show there. Memory, not time: separate processes (old code,
new code) compare fairly.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python experiments/2026-12-06-modern/mem_linear.py \
        --lengths 512,2048,4096,8192 --out experiments/2026-12-06-modern/mem_linear.json
"""
import argparse
import json
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from long_context import batches  # noqa: E402

from berts.model.config import preset  # noqa: E402
from berts.model.encoder import BertModel  # noqa: E402
from berts.tools.bench.measure import peak_memory  # noqa: E402


def largest_allocation(fn, batch) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(batch)
    return max((e.nbytes() for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), default=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="512,2048,4096,8192")
    ap.add_argument("--preset", default="tiny-modern")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = preset(args.preset)
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False).eval()
    model.set_fast_path(unpad=True, pack=True)
    fn = lambda b: model(**b).last_hidden_state  # noqa: E731
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2 ** 20
    rows = []
    with torch.inference_mode():
        for length in map(int, args.lengths.split(",")):
            for name, batch in batches(length, config.vocab_size, 4).items():
                fn(batch)  # warm-up
                real = int(batch["attention_mask"].sum())
                peak = peak_memory(fn, batch, model, None, torch.device("cpu")) / 2 ** 20
                row = {"length": length, "batch": name, "real_tokens": real, "peak_mib": round(peak, 1),
                       "peak_minus_weights_mib_per_1k_tokens": round((peak - weights) / real * 1000, 2),
                       "largest_allocation_mib": round(largest_allocation(fn, batch) / 2 ** 20, 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"torch": torch.__version__, "preset": args.preset,
                                              "weights_mib": round(weights, 1), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
