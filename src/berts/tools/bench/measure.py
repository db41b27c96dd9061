"""How `berts bench` measures: step timing (alternating sides, medians), useful FLOPs, the
matmul ceiling, peak memory, and the tokenizer's and `berts prepare`'s throughput.

* tokens/s: real (non-padding) tokens per second; the ratio berts / transformers is the median
  over rounds of the two step times on the same batch (robust to load from other processes);
* useful GFLOP/s: the FLOPs of the work that matters (encoder matmuls and attention on the
  real tokens, MLM head on the masked positions only, x3 for a training step) per second,
  and that as a share of the matmul ceiling measured in-process (large GEMM, median of 10,
  measured before the first task and after each one; the best counts);
* peak memory of one step: live tensors before it (weights, optimizer state, batch) plus the
  peak of what it allocates (CPU: from the profiler's allocation events; CUDA: the allocator).
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from berts.tools.bench.batches import BatchMaker, corpus_documents
from berts.tools.bench.options import BenchOptions
from berts.tools.bench.sides import _to, _transformers, build_sides
from berts.model.config import BertConfig
from berts.cli import main
from berts.tokenizer.wordpiece import Tokenizer


# ------------------------------------------------------------------------- FLOPs, ceiling
def useful_flops(config: BertConfig, lengths: list[int], masked: int, task: str) -> float:
    """FLOPs of the work that matters for one batch: encoder matmuls and attention on the real
    tokens, the MLM head on the masked positions only, pooler and small heads; x3 for training."""
    h, i, n, e, v = (config.hidden_size, config.intermediate_size, config.num_hidden_layers,
                     config.emb_size, config.vocab_size)
    tokens = sum(lengths)
    per_token = n * (4 * h * h + 2 * h * i) + (e * h if config.embedding_size is not None else 0)
    fwd = 2 * tokens * per_token + n * 4 * h * sum(length * length for length in lengths)
    rows = len(lengths)
    if task == "pretrain":
        fwd += 2 * masked * (h * e + e * v) + 2 * rows * (h * h + 2 * h)
    else:
        fwd += 2 * rows * (h * h + h * config.num_labels)
    return float(3 * fwd if task in ("pretrain", "finetune") else fwd)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_ceiling(device: torch.device, reps: int = 10) -> dict:
    """Median GFLOP/s of a large square GEMM: fp32 on CPU, bf16 on CUDA (the training precisions)."""
    n, dtype = (2048, torch.float32) if device.type == "cpu" else (8192, torch.bfloat16)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    times = []
    for _ in range(reps + 1):
        _sync(device)
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        _sync(device)
        times.append(time.perf_counter() - t)
    return {"gflops": 2 * n ** 3 / statistics.median(times[1:]) / 1e9, "n": n,
            "dtype": str(dtype).replace("torch.", "")}


# ------------------------------------------------------------------------- peak memory
def _tensor_bytes(*objs) -> int:
    seen, total = set(), 0

    def add(t):
        nonlocal total
        if isinstance(t, torch.Tensor):
            key = (t.untyped_storage().data_ptr(), t.device)
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
        elif isinstance(t, dict):
            for x in t.values():
                add(x)
        elif isinstance(t, (list, tuple)):
            for x in t:
                add(x)

    for o in objs:
        add(o)
    return total


@contextlib.contextmanager
def _quiet_stderr():
    """The profiler's C++ side prints start/stop lines on fd 2: silence them."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def peak_memory(step, batch, model, optimizer, device: torch.device) -> int:
    """Bytes: live tensors before the step (weights, grads, optimizer state, batch) + its peak allocations."""
    state = optimizer.state if optimizer is not None else {}
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        step(batch)
        _sync(device)
        return int(torch.cuda.max_memory_allocated(device))
    base = _tensor_bytes(list(model.parameters()), [p.grad for p in model.parameters()],
                         [list(s.values()) for s in state.values()], batch)
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(batch)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return base + peak


# ------------------------------------------------------------------------- running
@dataclass
class Row:
    task: str
    regime: str
    impl: str
    tokens_per_s: float
    step_ms: float
    useful_gflops: float
    ceiling_share: float  # useful GFLOP/s / matmul ceiling (set once the ceiling is known)
    peak_mib: float
    padding: float  # share of padding in the batches
    ratio: float | None = None  # berts / transformers tokens/s (berts rows)


def time_task(opts: BenchOptions, config: BertConfig, task: str, regime: str, maker: BatchMaker,
              device: torch.device, workdir: Path) -> list[Row]:
    sides = build_sides(opts, config, task, device, workdir)
    rounds = opts.warmup + opts.steps
    batches = [maker.make(task, regime) for _ in range(rounds)]
    rates = {s.name: [] for s in sides}
    step_s = {s.name: [] for s in sides}
    flops = {s.name: [] for s in sides}
    for r, batch in enumerate(batches):
        order = sides if r % 2 == 0 else sides[::-1]
        meta = batch["meta"]
        work = useful_flops(config, meta["lengths"], meta["masked"], task)
        for side in order:
            inputs = _to(batch[side.name], device)
            _sync(device)
            t = time.perf_counter()
            side.step(inputs)
            _sync(device)
            dt = time.perf_counter() - t
            if r >= opts.warmup:
                rates[side.name].append(meta["tokens"] / dt)
                step_s[side.name].append(dt)
                flops[side.name].append(work / dt)
    padding = 1 - sum(b["meta"]["tokens"] for b in batches) / sum(b["berts"]["input_ids"].numel() for b in batches)
    rows = []
    for side in sides:
        mem = peak_memory(side.step, _to(batches[-1][side.name], device), side.model, side.optimizer, device)
        gflops = statistics.median(flops[side.name]) / 1e9
        rows.append(Row(task, regime, side.name, statistics.median(rates[side.name]),
                        statistics.median(step_s[side.name]) * 1e3, gflops, math.nan,
                        mem / 2 ** 20, padding))
    if len(rows) == 2:  # per round (same batch, back to back), then the median: robust to a busy machine
        rows[0].ratio = statistics.median(t / o for o, t in zip(step_s["berts"], step_s["transformers"]))
    for side in sides:
        side.model.to("cpu")
    return rows


def tokenize_corpus(corpus: Path, workdir: Path, vocab_size: int) -> tuple[object, list[list[np.ndarray]], dict]:
    """Train a WordPiece vocabulary on the corpus, encode it (timed), and time transformers' tokenizer."""

    docs = corpus_documents(corpus)
    tok = Tokenizer.train([corpus], vocab_size, show_progress=False)
    tok.save_pretrained(workdir / "tokenizer")
    lines = [p for d in docs for p in d]
    nbytes = sum(len(p.encode("utf-8")) for p in lines)
    stats = {"lines": len(lines), "mb": nbytes / 1e6, "train_s": tok.train_stats["seconds"]}
    t = time.perf_counter()
    ids = tok.encode_ids_batch(lines)
    dt = time.perf_counter() - t
    n_tokens = sum(len(x) for x in ids)
    stats["berts"] = {"tokens_per_s": n_tokens / dt, "mb_per_s": nbytes / 1e6 / dt}
    tf = _transformers()
    if tf is not None:
        tf.utils.logging.set_verbosity_error()  # "longer than the maximum length": we only count tokens
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_tok = tf.AutoTokenizer.from_pretrained(workdir / "tokenizer")
        t = time.perf_counter()
        hf_ids = hf_tok(lines, add_special_tokens=False)["input_ids"]
        dt = time.perf_counter() - t
        stats["transformers"] = {"tokens_per_s": sum(len(x) for x in hf_ids) / dt, "mb_per_s": nbytes / 1e6 / dt}
    arrays, k = [], 0
    for d in docs:
        arrays.append([np.asarray(x, dtype=np.int64) for x in ids[k:k + len(d)]])
        k += len(d)
    return tok, [d for d in arrays if any(len(x) for x in d)], stats


def time_prepare(corpus: Path, workdir: Path, seq: int, threads: int) -> dict:
    """`berts prepare` on the corpus, in-process: MB/s of input text."""

    out = workdir / "prepared"
    args = ["prepare", str(corpus), "--tokenizer", str(workdir / "tokenizer"), "--out", str(out),
            "--max-seq-length", str(seq), "--workers", str(max(1, threads)), "--quiet", "--overwrite"]
    mb = corpus.stat().st_size / 1e6
    if out.exists():
        return {"seconds": None, "mb": mb, "mb_per_s": None, "out": str(out)}
    t = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(args)
    except (ImportError, SystemExit) as exc:
        return {"error": f"berts prepare unavailable ({exc})"}
    dt = time.perf_counter() - t
    if rc != 0:
        return {"error": f"berts prepare exited with {rc}"}
    return {"seconds": dt, "mb": mb, "mb_per_s": mb / dt, "out": str(out)}
