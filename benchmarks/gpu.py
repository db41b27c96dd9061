"""One GPU, one run, every number issue 29 asks for: `python benchmarks/gpu.py` (about 7 minutes
on one H100; `--minutes` sets the ELECTRA / MLM share). Writes benchmarks/gpu.json and
benchmarks/gpu.md (the table, also printed). `--dry-run` (alias `--quick`): the same code end to
end on the CPU at toy sizes, in about a minute (tests/test_benchmarks_quick.py); its numbers mean
nothing and it writes gpu-dry-run.json / .md in the current directory.

What it measures (each part reuses the code `berts bench` / `berts pretrain` run):

1. Pretraining throughput and MFU, BERT-base, bf16 autocast, sequence 128 (batch 128) and 512
   (batch 32), full-length rows, berts (fast paths on; also compiled) vs transformers (sdpa) on
   the same config, weights and batches, the two stepped alternately (berts.tools.bench).
2. Fine-tuning (sequence classification) and inference throughput at batch 32 and 256, sequence
   128, real text lengths (padding included, as a user's batches are).
3. The largest pretraining batch that fits (seq 128, bf16, AdamW) and its peak memory, for base
   and large: doubling until an out-of-memory error, then bisection to a multiple of 8.
4. ELECTRA vs MLM at equal compute: the same shards (CPython's reference manual: no download,
   the GPU machine is offline), the same model size, the same wall-clock budget each
   (train.budget), then the same fine-tuning on a downstream task made from held-out text
   (is this sentence's word order the original or shuffled?): dev loss and dev accuracy.

MFU (model FLOPs utilisation) = model FLOPs per second / the GPU's dense bf16 peak (H100 SXM and
H200: 989 TFLOP/s; H100 PCIe 756; A100 312; another GPU: the measured bf16 GEMM ceiling). Model
FLOPs of a training step (berts.tools.bench.measure.useful_flops, counted on the real tokens):
3 x forward, forward = 2 x tokens x L(4H^2 + 2HI) (the projections and FFN) + 4 x L x H x sum(n^2)
(q.k and probabilities x values, per sequence of n tokens) + 2 x masked x (H E + E V) (the MLM
head on the masked positions only) + 2 x rows x (H^2 + 2H) (pooler, NSP). Padding, recomputation
and the MLM head on unmasked positions count for nothing: MFU here is a conservative number.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
PEAK_TFLOPS = {"H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H200": 989.4, "GH200": 989.4,
               "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0}


def peak_tflops(device: torch.device, ceiling_gflops: float) -> tuple[float, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in PEAK_TFLOPS.items():  # the more specific names first
            if key in name:
                return value, f"{name}: dense bf16 peak {value} TFLOP/s (datasheet)"
    return ceiling_gflops / 1e3, f"{device}: no datasheet peak; the measured GEMM ceiling {ceiling_gflops / 1e3:.2f} TFLOP/s"


def sizes(dry: bool) -> dict:
    if dry:
        # one of each kind of run; no compile row (inductor on a shared 2-core CPU takes minutes)
        return dict(preset="tiny", big="mini", seq=[32], pre_batch={32: 8}, batches=[4], steps=1, compile=False,
                    warmup=1, device="cpu", limit=8, granularity=1, threads=1, lm_preset="tiny", lm_seq=32,
                    budget=None, max_steps=3, ft_examples=(48, 24), ft_epochs=1)
    return dict(preset="base", big="large", seq=[128, 512], pre_batch={128: 128, 512: 32}, batches=[32, 256],
                steps=10, warmup=3, device="cuda", limit=8192, granularity=8, compile=True, threads=None, lm_preset="small", lm_seq=128,
                budget=None, max_steps=None, ft_examples=(2000, 500), ft_epochs=2)


# ----------------------------------------------------------------------------- 1, 2: throughput
def throughput(sz: dict, log) -> list[dict]:
    import berts.tools.bench as bench
    from berts.tools.bench import run_bench
    from berts.tools.bench.options import BenchOptions

    if sz["device"] == "cpu":  # the dry run: one GEMM for the ceiling, not ten (6 s each on a busy CPU)
        ceiling = bench.matmul_ceiling
        bench.matmul_ceiling = lambda device, reps=10: ceiling(device, reps=1)

    rows = []
    runs = [(dict(only=("pretrain",), seq=s, batch=sz["pre_batch"][s], regimes=("fixed",)), False)
            for s in sz["seq"]]
    if sz["compile"]:
        runs.append((dict(only=("pretrain",), seq=sz["seq"][0], batch=sz["pre_batch"][sz["seq"][0]],
                          regimes=("fixed",), compile=True), True))
    runs += [(dict(only=("finetune", "infer"), seq=sz["seq"][0], batch=b, regimes=("real",)), False)
             for b in sz["batches"]]
    for kw, compiled in runs:
        t = time.perf_counter()
        opts = BenchOptions(preset=sz["preset"], steps=sz["steps"], warmup=sz["warmup"], device=sz["device"],
                            threads=sz["threads"], transformers=not compiled, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run_bench(opts)
        peak, peak_note = peak_tflops(torch.device(sz["device"]), result["ceiling"]["gflops"])
        for r in result["rows"]:
            r.update(seq=opts.seq, batch=opts.batch, compile=opts.compile, preset=opts.preset,
                     mfu=r["useful_gflops"] / (peak * 1e3), peak_tflops=peak, peak_note=peak_note)
            rows.append(r)
        log(f"throughput {kw}: {time.perf_counter() - t:.0f}s")
    return rows


# ----------------------------------------------------------------------------- 3: the largest batch
def search(fits, limit: int, granularity: int) -> tuple[int, int | None]:
    """(largest b, a multiple of granularity <= limit, with fits(b); the smallest tried that did not
    fit, or None when limit fits): doubling from granularity, then bisection."""
    lo, hi, b = 0, None, granularity
    while b <= limit:
        if fits(b):
            lo, b = b, b * 2
        else:
            hi = b
            break
    if hi is not None:  # lo fits, hi does not
        while hi - lo > granularity:
            mid = (lo + hi) // 2 // granularity * granularity
            if fits(mid):
                lo = mid
            else:
                hi = mid
    return lo, hi


def largest_batch(preset_name: str, seq: int, device: torch.device, limit: int, granularity: int) -> dict:
    """The largest pretraining batch (seq tokens a row, all real, 15% masked) whose bf16 AdamW step
    fits, and the peak memory of that step."""
    from berts.model.config import preset
    from berts.model.heads import BertForPreTraining

    torch.manual_seed(0)
    config = preset(preset_name)
    model = BertForPreTraining(config).to(device).train()
    kwargs = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **kwargs)
    tried = {}

    def fits(b: int) -> bool:
        g = torch.Generator().manual_seed(b)
        ids = torch.randint(5, config.vocab_size, (b, seq), generator=g)
        labels = torch.where(torch.rand(b, seq, generator=g) < 0.15, ids, -100)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
                 "labels": labels, "next_sentence_label": torch.zeros(b, dtype=torch.long)}
        batch = {k: v.to(device) for k, v in batch.items()}
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = model(**batch).loss
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            ok = True
        except torch.OutOfMemoryError:
            ok = False
        finally:
            opt.zero_grad(set_to_none=True)
            loss = batch = None
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" and ok else None
        tried[b] = peak
        return ok

    lo, hi = search(fits, limit, granularity)
    model.to("cpu")
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(device).total_memory / 2 ** 30 if device.type == "cuda" else None
    return {"preset": preset_name, "seq": seq, "largest_batch": lo, "capped": hi is None, "limit": limit,
            "peak_gib": tried.get(lo), "device_gib": total, "tries": len(tried)}


# ----------------------------------------------------------------------------- 4: ELECTRA vs MLM
def shuffled_task(sentences: list[str], n: int, seed: int) -> str:
    """TSV: a sentence, and whether its words are in the original order or shuffled (half each)."""
    rng = random.Random(seed)
    lines = ["sentence\tlabel"]
    for i in range(n):
        words = rng.choice(sentences).split()[:40]
        if i % 2:
            rng.shuffle(words)
        lines.append(" ".join(words).replace("\t", " ") + "\t" + ("shuffled" if i % 2 else "original"))
    return "\n".join(lines) + "\n"


def quiet_cli(argv: list) -> int:
    from berts.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main([str(a) for a in argv])
    if rc != 0:
        raise SystemExit(f"berts {argv[0]} failed (rc {rc}):\n{out.getvalue()[-2000:]}\n{err.getvalue()[-2000:]}")
    return rc


def electra_vs_mlm(sz: dict, minutes: float, work: Path, log) -> dict:
    from berts.data import prepare
    from berts.tokenizer.wordpiece import Tokenizer
    from berts.tools.bench.batches import default_corpus

    corpus = default_corpus(work / "corpus.txt")
    docs = corpus.read_text(encoding="utf-8").split("\n\n")
    random.Random(0).shuffle(docs)
    cut = max(1, len(docs) // 10)
    (work / "train.txt").write_text("\n\n".join(docs[cut:]) + "\n", encoding="utf-8")
    (work / "held.txt").write_text("\n\n".join(docs[:cut]) + "\n", encoding="utf-8")
    if sz["max_steps"]:  # dry run: a slice of the text
        (work / "train.txt").write_text("\n\n".join(docs[cut:cut + 60]) + "\n", encoding="utf-8")
    tok = work / "tok"
    Tokenizer.train([work / "train.txt"], 8000 if not sz["max_steps"] else 500, show_progress=False).save_pretrained(tok)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        prepare([work / "train.txt"], tok, work / "shards", objective="nsp", max_seq_length=sz["lm_seq"], workers=2,
                seed=1)
        prepare([work / "held.txt"], tok, work / "eval-shards", objective="nsp", max_seq_length=sz["lm_seq"],
                workers=2, seed=2)
    sentences = [s for d in docs[:cut] for s in d.split("\n") if len(s.split()) >= 6]
    n_train, n_dev = sz["ft_examples"]
    (work / "ft-train.tsv").write_text(shuffled_task(sentences, n_train, 1), encoding="utf-8")
    (work / "ft-dev.tsv").write_text(shuffled_task(sentences, n_dev, 2), encoding="utf-8")

    common = [f"model.preset={sz['lm_preset']}", f"impl.device={sz['device']}", "log.progress=none",
              "log.tensorboard=false", "log.plots=false", "train.batch_size=128" if not sz["max_steps"] else
              "train.batch_size=8", "train.save_every=100000", "data.num_workers=2", f"data.eval_shards={work / 'eval-shards'}",
              "optim.lr=5e-4" if not sz["max_steps"] else "optim.lr=1e-3"]
    common += [f"train.max_steps={sz['max_steps']}"] if sz["max_steps"] else [f"train.budget={int(minutes * 60)}s"]
    if sz["max_steps"]:
        common += ["model.max_position_embeddings=64", "impl.threads=1", "data.eval_batches=2"]
    out = {"budget_s": None if sz["max_steps"] else int(minutes * 60), "preset": sz["lm_preset"], "runs": {}}
    for name, objective in (("mlm", "none"), ("electra", "electra")):
        t = time.perf_counter()
        run = work / name
        sets = [x for s in common + [f"data.objective={objective}"] for x in ("--set", s)]
        quiet_cli(["pretrain", "--data", work / "shards", "--out", run, *sets])
        recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in recs if r.get("kind") == "train"]
        evals = [r for r in recs if r.get("kind") == "eval"]
        ft = work / f"ft-{name}"
        quiet_cli(["finetune", "--model", run / "final", "--train", work / "ft-train.tsv", "--dev", work / "ft-dev.tsv",
                   "--text-column", "sentence", "--label-column", "label", "--out", ft, "--epochs", sz["ft_epochs"],
                   "--batch-size", "32" if not sz["max_steps"] else "8", "--set", f"impl.device={sz['device']}",
                   "--set", "log.progress=none", "--set", "log.tensorboard=false", "--set", "log.plots=false",
                   *(["--set", "impl.threads=1"] if sz["max_steps"] else [])])
        best = json.loads((ft / "best" / "eval_results.json").read_text())
        out["runs"][name] = {"steps": train[-1]["step"] if train else 0, "tokens": train[-1].get("tokens") if train else 0,
                             "train_loss": train[-1]["loss"] if train else None,
                             "dev": {k: v for k, v in (evals[-1] if evals else {}).items()
                                     if k not in ("kind", "time", "epoch")},
                             "downstream_accuracy": best["metrics"].get("accuracy"), "downstream": best["metrics"],
                             "seconds": round(time.perf_counter() - t, 1)}
        log(f"{name}: {out['runs'][name]['steps']} steps, {time.perf_counter() - t:.0f}s")
    return out


# ----------------------------------------------------------------------------- report
def fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def markdown(result: dict) -> str:
    lines = [f"# GPU measurements ({result['device']}, torch {result['torch']}, "
             f"transformers {result['transformers']}{', DRY RUN: numbers mean nothing' if result['dry_run'] else ''})", "",
             f"MFU: model FLOPs/s over {result['peak_note']}; formula in benchmarks/gpu.py.", "",
             "| task | preset | seq | batch | impl | compile | tokens/s | step ms | MFU | peak MiB | berts/transformers |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["throughput"]:
        lines.append(f"| {r['task']} ({r['regime']}) | {r['preset']} | {r['seq']} | {r['batch']} | {r['impl']} | "
                     f"{'yes' if r['compile'] else 'no'} | {r['tokens_per_s']:,.0f} | {r['step_ms']:.1f} | "
                     f"{r['mfu']:.1%} | {r['peak_mib']:,.0f} | {fmt(r.get('ratio'), '.2f')} |")
    lines += ["", "| largest batch (pretraining, bf16, AdamW) | seq | batch | peak GiB | of GiB |", "|---|---|---|---|---|"]
    for m in result["largest_batch"]:
        lines.append(f"| {m['preset']} | {m['seq']} | {m['largest_batch']}{'+' if m['capped'] else ''} | "
                     f"{fmt(m['peak_gib'], '.1f')} | {fmt(m['device_gib'], '.0f')} |")
    e = result["electra_vs_mlm"]
    lines += ["", f"ELECTRA vs MLM, preset {e['preset']}, "
              + (f"{e['budget_s']} s of training each" if e["budget_s"] else "a few steps each (dry run)")
              + "; downstream: word order original vs shuffled, held-out text", "",
              "| objective | steps | dev mlm_loss (ELECTRA: its generator's) | dev (all) | downstream accuracy |", "|---|---|---|---|---|"]
    for name, r in e["runs"].items():
        dev = ", ".join(f"{k} {v:.3g}" for k, v in r["dev"].items() if isinstance(v, float))
        lines.append(f"| {name} | {r['steps']} | {fmt(r['dev'].get('mlm_loss'))} | {dev} | "
                     f"{fmt(r['downstream_accuracy'], '.3f')} |")
    lines += ["", f"total {result['seconds']:.0f} s"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", "--quick", dest="dry", action="store_true", help="CPU, toy sizes, end to end")
    p.add_argument("--minutes", type=float, default=1.0, help="ELECTRA and MLM training minutes each (default 1)")
    p.add_argument("--out", metavar="DIR", help="where gpu.json / gpu.md go (default benchmarks/; dry run: .)")
    p.add_argument("--skip", default="", help="comma-separated parts to leave out: throughput,batch,electra")
    args = p.parse_args(argv)
    sz = sizes(args.dry)
    if not args.dry and not torch.cuda.is_available():
        print("gpu.py: no CUDA device here; --dry-run runs the same code on the CPU at toy sizes", file=sys.stderr)
        return 2
    skip = set(filter(None, args.skip.split(",")))
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.0f}s] {msg}", flush=True)

    if not args.dry:
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 leftovers (optimizer, norms) as any trainer runs them
    device = torch.device(sz["device"])
    import transformers

    result = {"dry_run": args.dry, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "transformers": transformers.__version__, "sizes": sz}
    out = Path(args.out) if args.out else (Path.cwd() if args.dry else HERE)
    out.mkdir(parents=True, exist_ok=True)
    stem = "gpu-dry-run" if args.dry else "gpu"
    result.update(throughput=[], peak_note="-", largest_batch=[], seconds=0.0,
                  electra_vs_mlm={"budget_s": None, "preset": "-", "runs": {}})

    def save() -> str:  # after every part: a run cut short by a time limit keeps what it measured
        result["seconds"] = time.perf_counter() - t0
        (out / f"{stem}.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        table = markdown(result)
        (out / f"{stem}.md").write_text(table, encoding="utf-8")
        return table

    if "throughput" not in skip:
        result["throughput"] = throughput(sz, log)
        result["peak_note"] = result["throughput"][0]["peak_note"]
        save()
    if "batch" not in skip:
        for name in (sz["preset"], sz["big"]):
            result["largest_batch"].append(largest_batch(name, sz["seq"][0], device, sz["limit"], sz["granularity"]))
            log(f"largest batch {name}: {result['largest_batch'][-1]['largest_batch']}")
            save()
    if "electra" not in skip:
        with tempfile.TemporaryDirectory(prefix="berts-gpu-") as tmp:
            result["electra_vs_mlm"] = electra_vs_mlm(sz, args.minutes, Path(tmp), log)
    table = save()
    print(table)
    print(f"wrote {out / (stem + '.json')} and {out / (stem + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
