"""`berts bench`: berts and transformers side by side, in one process, on the same batches.

For each task (a pretraining step: MLM + NSP, 15% masked; a fine-tuning step: sequence
classification; inference: no grad) and each length regime (``fixed``: every row ``seq``
tokens; ``real``: paragraphs of a real corpus (pairs of them for pretraining), padded per
batch; ``prepared``, pretraining only: instances `berts prepare` made from the corpus, batched
by our PretrainingDataset as the trainer gets them), both implementations get the same
batches, config, weights (transformers loads the directory berts saved), optimizer (AdamW)
and thread count. Steps alternate between the two (the order flips every round); the first
``warmup`` rounds are dropped and the median of the rest is reported. It also times `berts
prepare` on the corpus (MB/s) and the tokenizers (berts' and transformers' fast one, loaded
from the same directory).

==========  =================================================================
options.py  what is measured: ``BenchOptions``, the tasks and length regimes
batches.py  what each side is fed, made by berts' own data code (collator, padding, truncation)
sides.py    the two implementations: a model, its optimizer and a step each
measure.py  timing, useful FLOPs, the matmul ceiling, peak memory, tokenizer / prepare speed
here        ``run_bench`` (the whole run) and ``format_table`` (the report)
==========  =================================================================
"""
from __future__ import annotations

import math
import statistics
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from berts.tools.bench.batches import BatchMaker, default_corpus, pad_rows
from berts.tools.bench.measure import matmul_ceiling, time_prepare, time_task, tokenize_corpus, useful_flops
from berts.tools.bench.options import EXTRAS, REGIMES, TASKS, BenchOptions
from berts.tools.bench.sides import Side, _transformers, build_sides
from berts.model.config import preset
from berts.errors import UserError
from berts.data.dataset import PretrainingDataset

__all__ = ["BenchOptions", "BatchMaker", "Side", "build_sides", "default_corpus", "pad_rows", "tokenize_corpus",
           "useful_flops", "matmul_ceiling", "time_task", "run_bench", "format_table", "TASKS", "EXTRAS", "REGIMES"]


def run_bench(opts: BenchOptions) -> dict:
    for name in opts.only:
        if name not in TASKS + EXTRAS:
            raise UserError(f"--only: unknown part {name!r} (choose from {', '.join(TASKS + EXTRAS)})")
    for name in opts.regimes:
        if name not in REGIMES:
            raise UserError(f"unknown length regime {name!r} (choose from {', '.join(REGIMES)})")
    if opts.steps < 1 or opts.warmup < 0 or opts.batch < 1 or opts.seq < 8:
        raise UserError("need --steps >= 1, --warmup >= 0, --batch >= 1 and --seq >= 8")
    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {opts.device}: CUDA is not available here")
    device = torch.device(opts.device)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    threads = torch.get_num_threads()
    config = preset(opts.preset)
    if opts.seq > config.max_position_embeddings:
        raise UserError(f"--seq {opts.seq} is longer than the preset's {config.max_position_embeddings} positions")
    tf = _transformers() if opts.transformers else None
    result = {
        "preset": opts.preset, "seq": opts.seq, "batch": opts.batch, "steps": opts.steps, "warmup": opts.warmup,
        "threads": threads, "device": str(device), "precision": "fp32" if device.type == "cpu" else "bf16 autocast",
        "torch": torch.__version__, "transformers": getattr(tf, "__version__", None),
        "fast_path": dict(opts.fast_path), "compile": opts.compile,
        "config": {k: getattr(config, k) for k in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                                                     "intermediate_size", "vocab_size", "hidden_dropout_prob",
                                                     "attention_probs_dropout_prob")},
        "rows": [], "tokenizer": None, "prepare": None,
    }
    with tempfile.TemporaryDirectory(prefix="berts-bench-") as tmp:
        workdir = Path(tmp)
        corpus = Path(opts.corpus) if opts.corpus else default_corpus(workdir / "corpus.txt")
        if opts.corpus and not corpus.is_file():
            raise UserError(f"{corpus}: no such corpus file")
        result["corpus"] = str(opts.corpus) if opts.corpus else "pydoc_data.topics (CPython reference manual)"
        tasks = [t for t in TASKS if t in opts.only]
        need_text = (set(opts.regimes) & {"real", "prepared"} and tasks) or "tokenizer" in opts.only \
            or "prepare" in opts.only
        paragraphs = tokenizer = None
        if need_text:
            tokenizer, paragraphs, tok_stats = tokenize_corpus(corpus, workdir, min(8000, config.vocab_size))
            if "tokenizer" in opts.only:
                result["tokenizer"] = tok_stats
        if "prepare" in opts.only:
            result["prepare"] = {k: v for k, v in time_prepare(corpus, workdir, opts.seq, threads).items()
                                 if k != "out"}  # a temporary directory
        dataset = None
        if "pretrain" in tasks and "prepared" in opts.regimes:
            prep = time_prepare(corpus, workdir, opts.seq, threads)
            if "error" in prep:
                warnings.warn(f"no 'prepared' regime: {prep['error']}", stacklevel=2)
            else:

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    dataset = PretrainingDataset(prep["out"], mask_prob=opts.mask_prob, max_predictions_per_seq=None,
                                                 seed=opts.seed)
        if tasks:
            ceilings = [matmul_ceiling(device)]
            maker = BatchMaker(opts, config, paragraphs, dataset, tokenizer)  # its special ids
            for task in tasks:
                for regime in opts.regimes:
                    if regime == "prepared" and (task != "pretrain" or dataset is None):
                        continue  # prepared data are pretraining instances
                    rows = time_task(opts, config, task, regime, maker, device, workdir)
                    result["rows"] += [asdict(r) for r in rows]
                ceilings.append(matmul_ceiling(device))
            # the machine's ceiling: the best of the measurements (others' load only lowers it)
            ceiling = max(ceilings, key=lambda c: c["gflops"])
            result["ceiling"] = dict(ceiling, measurements=[round(c["gflops"], 1) for c in ceilings])
            for row in result["rows"]:
                row["ceiling_share"] = row["useful_gflops"] / ceiling["gflops"]
            if maker.collate_s:
                result["collate"] = {"ms_per_batch": statistics.median(maker.collate_s) * 1e3,
                                     "batches": len(maker.collate_s)}
    return result


# ------------------------------------------------------------------------- report
def _fmt(x, spec):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_table(result: dict) -> str:
    c = result["config"]
    lines = [
        f"berts bench: preset {result['preset']} (L{c['num_hidden_layers']} H{c['hidden_size']} "
        f"A{c['num_attention_heads']} I{c['intermediate_size']} V{c['vocab_size']}, dropout "
        f"{c['hidden_dropout_prob']}/{c['attention_probs_dropout_prob']}), batch {result['batch']}, "
        f"seq {result['seq']}, {result['device']} {result['precision']}, {result['threads']} threads, "
        f"torch {result['torch']}, transformers {result['transformers'] or 'not installed'}",
        f"berts fast paths: {', '.join(k for k, v in result['fast_path'].items() if v) or 'none (plain)'}"
        f"{', compile' if result['compile'] else ''}; median of {result['steps']} steps after "
        f"{result['warmup']} warm-up; corpus: {result['corpus']}",
    ]
    if result.get("ceiling"):
        ce = result["ceiling"]
        lines.append(f"matmul ceiling: {ce['gflops']:.1f} GFLOP/s ({ce['dtype']} GEMM {ce['n']}^3, median of 10; best of "
                     f"{len(ce.get('measurements', [1]))} measurements through the run)")
    if result["rows"]:
        head = (f"{'task':<9} {'lengths':<8} {'pad':>4} {'impl':<12} {'tokens/s':>9} {'ratio':>6} "
                f"{'step ms':>8} {'GFLOP/s':>8} {'ceil':>5} {'peak MiB':>9}")
        lines += ["", head, "-" * len(head)]
        for r in result["rows"]:
            lines.append(
                f"{r['task']:<9} {r['regime']:<8} {r['padding'] * 100:>3.0f}% {r['impl']:<12} "
                f"{r['tokens_per_s']:>9.0f} {_fmt(r['ratio'], '>5.2f') + ('x' if r['ratio'] else ''):>6} "
                f"{r['step_ms']:>8.1f} {r['useful_gflops']:>8.1f} {r['ceiling_share'] * 100:>4.0f}% "
                f"{r['peak_mib']:>9.0f}")
    tok = result.get("tokenizer")
    if tok:
        lines.append("")
        lines.append(f"tokenizer ({tok['lines']} lines, {tok['mb']:.2f} MB): berts {tok['berts']['mb_per_s']:.2f} MB/s "
                     f"({tok['berts']['tokens_per_s']:.0f} tokens/s)"
                     + (f"; transformers {tok['transformers']['mb_per_s']:.2f} MB/s "
                        f"({tok['transformers']['tokens_per_s']:.0f} tokens/s)" if "transformers" in tok else "")
                     + f"; vocabulary training {tok['train_s']:.1f}s")
    col = result.get("collate")
    if col:
        steps = [r["step_ms"] for r in result["rows"] if r["regime"] == "prepared" and r["impl"] == "berts"]
        share = f" ({col['ms_per_batch'] / steps[0] * 100:.2f}% of a berts step)" if steps else ""
        lines.append(f"collate (PretrainingDataset.batch: pad, mask 15%, sparse targets): "
                     f"{col['ms_per_batch']:.2f} ms per batch{share}")
    prep = result.get("prepare")
    if prep:
        lines.append("berts prepare: " + (prep["error"] if "error" in prep else
                                            f"{prep['mb']:.2f} MB in {prep['seconds']:.1f}s = {prep['mb_per_s']:.2f} MB/s"))
    return "\n".join(lines)
