"""`berts embed MODEL FILE --out F.npy|.jsonl|.parquet`: sentence embeddings of a file's texts.

Under torchrun each rank embeds its contiguous slice of the texts (every rank reads the file: it
is cheap next to the model), rank 0 gathers the slices in rank order and writes the whole output,
so the rows come out in input order whatever the number of processes."""
from __future__ import annotations

import argparse
import sys

from berts.commands.common import add_int8_argument
from berts.util.values import count


def add_engine_arguments(p) -> None:
    """The flags that pick and tune the Encoder (shared with `berts index`)."""
    p.add_argument("--batch-size", type=count, default=32, metavar="N", help="texts per forward (default 32)")
    p.add_argument("--pooling", metavar="MODE",
                   help="override the directory's pooling: mean, cls, max, mean-sqrt-len, weightedmean, lasttoken "
                        "(a plain BERT directory without modules.json gets mean, said once)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="L2-normalise the embeddings (default: the directory's 2_Normalize module)")
    p.add_argument("--max-length", type=count, metavar="N", help="truncation window in tokens (default: the model's)")
    add_int8_argument(p, "dynamic int8 quantization of the encoder's Linear layers (CPU; about 2x; lowest "
                         "cosine to fp32 on 512 Brown sentences: 0.977 per-channel, 0.991 smooth: docs/embed.md).")
    p.add_argument("--threads", type=count, metavar="N", help="torch / onnxruntime threads")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, auto")


def add_progress_arguments(p) -> None:
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (shown on stderr when it is a terminal, or with BERTS_PROGRESS=1)")
    p.add_argument("--progress", action="store_true", help="a progress bar on stderr even when it is not a terminal")


def show_progress(args) -> bool:
    from berts.util.progress import progress_on

    return not args.quiet and (args.progress or progress_on())


def add_input_arguments(p) -> None:
    p.add_argument("--input-format", default="auto", choices=["auto", "lines", "bert", "plain", "jsonl"],
                   help="auto (default): jsonl for .jsonl/.ndjson, else one text a line; bert/plain: the corpus "
                        "formats of `berts prepare` (a text = a sentence)")
    p.add_argument("--text-field", default="text", metavar="NAME", help="the JSONL field with the text (default text)")
    p.add_argument("--text-column", metavar="NAME|INDEX",
                   help="read FILE as a table (TSV, CSV, JSONL by extension) and embed this column")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "embed", help="sentence embeddings of a file's texts (.npy, .jsonl, .parquet)",
        description="Embed the texts of FILE with a sentence encoder (a sentence-transformers directory, a berts "
                    "`finetune --task sentence-embedding` output, or any BERT directory with mean pooling) and "
                    "write them in input order. Empty lines are skipped (counted; the ids are the line numbers). "
                    "Under torchrun every process embeds a slice and rank 0 writes the whole output.")
    p.add_argument("model", metavar="MODEL", help="the model directory (or an ONNX one: model.onnx inside)")
    p.add_argument("file", metavar="FILE", help="the texts: one a line, a corpus (bert/plain/jsonl) or a table")
    p.add_argument("--out", required=True, metavar="F.npy",
                   help="the output: .npy (float32 [n, dim]), .jsonl (id, text, embedding) or .parquet")
    add_input_arguments(p)
    add_engine_arguments(p)
    add_progress_arguments(p)
    p.set_defaults(func=run)


def load_encoder(args, texts=None):
    """The Encoder the flags describe (torch, int8 or ONNX engine)."""
    from berts.embed.engines import load_engine

    if args.threads is not None:  # (--batch-size and --threads are counts: berts.util.values checked them)
        import torch

        torch.set_num_threads(args.threads)
    return load_engine(args.model, int8=args.int8, pooling=args.pooling, normalize=args.normalize,
                       max_seq_length=args.max_length, device=args.device, threads=args.threads,
                       calibration=texts)  # --int8 smooth: the first input texts


def run(args) -> int:
    import numpy as np

    from berts.embed.texts import check_output, read_texts, write_embeddings
    from berts.train.distributed import setup, teardown

    def say(msg):
        print(f"embed: {msg}", file=sys.stderr)

    out = check_output(args.out)
    dist = setup(args.device)
    try:
        items = read_texts(args.file, args.input_format, args.text_column, args.text_field,
                           say=say if dist.is_main else (lambda m: None))
        enc = load_encoder(args, [t for _, t in items[:256]])
        n, w, r = len(items), dist.world_size, dist.rank
        lo, hi = r * n // w, (r + 1) * n // w  # this rank's contiguous slice
        mine = enc.encode([t for _, t in items[lo:hi]], batch_size=args.batch_size,
                          show_progress=show_progress(args) and dist.is_main)
        parts = dist.gather(mine) if dist.enabled else [mine]
        if dist.is_main:
            vectors = np.concatenate(parts, axis=0) if n else np.zeros((0, enc.dim), np.float32)
            write_embeddings(out, [i for i, _ in items], [t for _, t in items], vectors)
            procs = f" ({w} processes)" if w > 1 else ""
            print(f"embed: {n} texts -> {out} [{n}, {vectors.shape[1]}]{procs}")
        dist.barrier()
    finally:
        teardown()
    return 0
