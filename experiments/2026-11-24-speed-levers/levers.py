"""What each speed lever gives: berts with the lever off and on (every other lever on), in one
process, on the same batches, alternating; medians. Companion of `berts bench` (benchmarks/bench.py).

    python experiments/2026-11-24-speed-levers/levers.py --preset mini --batch 32 --seq 128 --rounds 8 [--only a,b] [--json FILE]

Levers (task, lengths): sparse_mlm (pretrain fixed: dense [B,S,V] logits vs the masked rows only),
sparse_output (pretrain, finetune fixed: last layer's projection + FFN on the rows the heads need),
fast_dropout (pretrain, finetune fixed), fused_qkv (pretrain fixed: one [3H,H] projection vs three),
padding (finetune real: pad to --seq, per batch, + unpad and pack, + length bucketing), packing (real
lengths: unpadding with attention on the batch's rows vs several sequences per row with a block-diagonal
mask), compile (infer fixed),
malloc (pretrain fixed, berts and transformers: glibc keeping freed memory instead of unmapping it).
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import json
import math
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

from berts import BertForPreTraining, BertForSequenceClassification, preset
from berts.tools.bench import BatchMaker, BenchOptions, Side, default_corpus, pad_rows, tokenize_corpus
from berts.model.encoder import BertAttention, compile_model, fast_dropout

LEVERS = ("sparse_mlm", "sparse_output", "fast_dropout", "fused_qkv", "padding", "packing", "compile", "malloc")


def alternate(variants: dict, inputs: list, rounds: int, warmup: int = 1) -> dict:
    """variants: name -> fn(input) -> tokens. Returns name -> (median ms per input, tokens/s)."""
    ms, rate = {k: [] for k in variants}, {k: [] for k in variants}
    items = list(variants.items())
    for r in range(rounds + warmup):
        x = inputs[r % len(inputs)]
        for name, fn in (items if r % 2 == 0 else items[::-1]):
            t = time.perf_counter()
            tokens = fn(x)
            dt = time.perf_counter() - t
            if r >= warmup:
                ms[name].append(dt * 1e3)
                rate[name].append(tokens / dt)
    return {k: {"ms": statistics.median(ms[k]), "tokens_per_s": statistics.median(rate[k])} for k in variants}


def trainer(model, task):
    side = Side("berts", model, task, torch.device("cpu"))
    return side


def step_fn(side, fast: dict | None = None):
    def fn(batch):
        if fast:
            side.model.set_fast_path(**fast)
        side.step(batch["berts"])
        return batch["meta"]["tokens"]
    return fn


# ----------------------------------------------------------------------------- individual levers
def dense_mlm_step(side):
    """The MLM loss over dense [B, S, V] logits, as transformers computes it."""
    def fn(batch):
        b, theirs = batch["berts"], batch["transformers"]
        out = side.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                         token_type_ids=b["token_type_ids"])
        v = out.prediction_logits.shape[-1]
        loss = F.cross_entropy(out.prediction_logits.reshape(-1, v), theirs["labels"].reshape(-1), ignore_index=-100)
        loss = loss + F.cross_entropy(out.seq_relationship_logits, b["next_sentence_label"])
        loss.backward()
        side.optimizer.step()
        side.optimizer.zero_grad(set_to_none=True)
        return batch["meta"]["tokens"]
    return fn


def separate_qkv_forward(self, x, mask=None, output_attentions=False, unpadded=None, rows=None):
    """BertAttention.forward with three [H, H] projections instead of one fused [3H, H] (fixed lengths)."""
    b, s, h = x.shape
    w, bias = self.qkv.weight.chunk(3), self.qkv.bias.chunk(3)
    q, k, v = (F.linear(x, w[i], bias[i]).view(b, s, self.num_heads, self.head_dim).transpose(1, 2) for i in range(3))
    p = self.attn_dropout if self.training else 0.0
    if self.dropout.fast_dropout and p > 0:
        probs = ((q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)).softmax(-1)
        ctx = fast_dropout(probs, p) @ v
    else:
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
    ctx = ctx.transpose(1, 2).reshape(b, s, h)
    if rows is not None:
        ctx, x = ctx.reshape(-1, h).index_select(0, rows), x.reshape(-1, h).index_select(0, rows)
    return self.norm(x + self.dropout(self.out(ctx))), None


def repad(batch: dict, width: int) -> dict:
    out = {}
    for k, v in batch.items():
        if v.dim() == 2:
            v = F.pad(v, (0, width - v.shape[1]))
        out[k] = v
    return out


def mallopt(tuned: bool) -> None:
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
    if tuned:
        libc.mallopt(M_MMAP_MAX, 0)
        libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)  # a C int: 1 << 40 would arrive as 0 (trim always)
    else:
        libc.mallopt(M_MMAP_MAX, 65536)
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
        libc.malloc_trim(0)


# ----------------------------------------------------------------------------- driver
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=",".join(LEVERS))
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    only = args.only.split(",")
    cfg = preset(args.preset)
    opts = BenchOptions(preset=args.preset, seq=args.seq, batch=args.batch)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = default_corpus(Path(tmp) / "corpus.txt")
        _, paragraphs, _ = tokenize_corpus(corpus, Path(tmp), min(8000, cfg.vocab_size))
    maker = BatchMaker(opts, cfg, paragraphs)
    n = args.rounds + 1
    fixed = {t: [maker.make(t, "fixed") for _ in range(min(n, 3))] for t in ("pretrain", "finetune", "infer")}
    real = {t: [maker.make(t, "real") for _ in range(n)] for t in ("pretrain", "finetune", "infer")}

    def model(task):
        torch.manual_seed(0)
        m = (BertForPreTraining if task == "pretrain" else BertForSequenceClassification)(cfg)
        return m.set_fast_path(unpad=True, pack=True, sparse_output=True, fast_dropout=True)

    def record(name, task, regime, res):
        results[f"{name}/{task}/{regime}"] = res
        base = next(iter(res.values()))["ms"]
        cells = ", ".join(f"{k} {v['ms']:.0f} ms ({v['tokens_per_s']:.0f} tok/s, {base / v['ms']:.2f}x)"
                          for k, v in res.items())
        print(f"{name:<13} {task:<8} {regime:<5} {cells}", flush=True)

    if "sparse_mlm" in only:
        side = trainer(model("pretrain"), "pretrain")
        record("sparse_mlm", "pretrain", "fixed", alternate(
            {"dense": dense_mlm_step(side), "sparse": step_fn(side)}, fixed["pretrain"], args.rounds))
    for lever in ("sparse_output", "fast_dropout"):
        if lever in only:
            for task in ("pretrain", "finetune"):
                side = trainer(model(task), task)
                record(lever, task, "fixed", alternate(
                    {"off": step_fn(side, {lever: False}), "on": step_fn(side, {lever: True})},
                    fixed[task], args.rounds))
    if "fused_qkv" in only:
        side = trainer(model("pretrain"), "pretrain")
        attns = [m for m in side.model.modules() if isinstance(m, BertAttention)]

        def split(on):
            def fn(batch):
                for a in attns:
                    if on:
                        a.__dict__.pop("forward", None)
                    else:
                        a.forward = types.MethodType(separate_qkv_forward, a)
                side.step(batch["berts"])
                return batch["meta"]["tokens"]
            return fn
        record("fused_qkv", "pretrain", "fixed", alternate({"separate": split(False), "fused": split(True)},
                                                             fixed["pretrain"], args.rounds))
    if "padding" in only:
        side = trainer(model("finetune"), "finetune")
        groups = [real["finetune"][i:i + 4] for i in range(0, len(real["finetune"]) - 3, 4)] or [real["finetune"]]

        def ladder(width, unpad, bucket):
            def fn(group):
                side.model.set_fast_path(unpad=unpad)
                batches = [g["berts"] for g in group]
                if bucket:  # the same examples, sorted by length and cut again (ResumableBatchSampler's bucketing)
                    rows = [(b["input_ids"][i], b["token_type_ids"][i], b["attention_mask"][i], b["labels"][i])
                            for b in batches for i in range(len(b["labels"]))]
                    rows.sort(key=lambda r: int(r[2].sum()))
                    batches = []
                    for s in range(0, len(rows), args.batch):
                        chunk = rows[s:s + args.batch]
                        arrays = pad_rows([(r[0][:int(r[2].sum())].numpy(), r[1][:int(r[2].sum())].numpy())
                                       for r in chunk], args.seq)
                        bb = {k: torch.from_numpy(v) for k, v in arrays.items()}
                        bb["labels"] = torch.stack([r[3] for r in chunk])
                        batches.append(bb)
                for b in batches:
                    side.step(repad(b, width) if width else b)
                return sum(g["meta"]["tokens"] for g in group)
            return fn
        rounds = max(2, args.rounds // 2)
        res = alternate({"pad to seq": ladder(args.seq, False, False), "per batch": ladder(None, False, False),
                         "+unpad+pack": ladder(None, True, False), "+bucketing": ladder(None, True, True)},
                        groups, rounds)
        record("padding", "finetune", "real", res)
    if "packing" in only:
        for task in ("pretrain", "finetune", "infer"):
            side = trainer(model(task), task)
            record("packing", task, "real", alternate(
                {"unpad": step_fn(side, {"pack": False}), "unpad+pack": step_fn(side, {"pack": True})},
                real[task], args.rounds))
    if "compile" in only:
        plain = model("infer").eval()
        compiled = copy.deepcopy(plain)
        t = time.perf_counter()
        compile_model(compiled, dynamic=False)
        with torch.inference_mode():
            compiled(**fixed["infer"][0]["berts"])
        print(f"compile: first call {time.perf_counter() - t:.1f}s", flush=True)
        a, b = trainer(plain, "infer"), trainer(compiled, "infer")
        record("compile", "infer", "fixed", alternate({"plain": step_fn(a), "compiled": step_fn(b)},
                                                        fixed["infer"], args.rounds))
    if "malloc" in only:
        side = trainer(model("pretrain"), "pretrain")
        sides = [("berts", side)]
        try:
            import transformers  # noqa: F401
            from berts.tools.bench import build_sides
            with tempfile.TemporaryDirectory() as tmp:
                sides.append(("transformers", build_sides(opts, cfg, "pretrain", torch.device("cpu"), Path(tmp))[1]))
        except ImportError:
            pass
        for name, s in sides:
            def run(tuned, s=s, name=name):
                def fn(batch):
                    mallopt(tuned)
                    s.step(batch[name])
                    return batch["meta"]["tokens"]
                return fn
            record("malloc", f"pretrain ({name})", "fixed", alternate(
                {"glibc default": run(False), "keep freed memory": run(True)}, fixed["pretrain"], args.rounds))
        mallopt(False)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
