"""`berts predict MODEL_DIR [FILE|-] [--out FILE]`: labels and probabilities as JSONL."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from berts.commands.common import add_data_arguments, data_settings


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="predict labels (JSONL) for a file or stdin",
        description="Run a fine-tuned model on a TSV/CSV/JSONL file, or on stdin (default: one text a line, "
                    "or TEXT<tab>PAIR for a pair model). Writes one JSON object per example: its input line, "
                    "label and probabilities (regression: value).")
    p.add_argument("model", metavar="MODEL_DIR", help="a fine-tuned model directory (e.g. OUT/best)")
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="input file, or - for stdin (default)")
    p.add_argument("--out", metavar="FILE", help="output JSONL (default: stdout)")
    add_data_arguments(p, labels=False)
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="examples per batch (default 64)")
    p.add_argument("--device", default="auto", metavar="DEV", help="auto, cpu, cuda (default auto)")
    p.set_defaults(func=run)


def _stdin_to_file(fmt: str) -> Path:
    suffix = {"csv": ".csv", "jsonl": ".jsonl"}.get(fmt, ".tsv")
    fd, name = tempfile.mkstemp(prefix="berts-predict-", suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        shutil.copyfileobj(sys.stdin.buffer, f)
    return Path(name)


def run(args) -> int:
    import numpy as np
    import torch

    from berts.data.classification import ClassificationDataset
    from berts.train.recipes import check_max_length, load_classifier, read_table
    from berts.train.tasks import predict_logits

    model, tokenizer, label_map, settings = load_classifier(args.model, args.device)
    regression = label_map is None
    stdin = args.file == "-"
    if stdin and (args.format or "tsv") == "tsv" and args.text_column is None:
        # plain lines from a pipe: TEXT, or TEXT<tab>PAIR for a pair model; no header
        settings = {**settings, "format": "tsv", "header": False, "text_column": "0",
                    "pair_column": "1" if settings.get("pair_column") is not None else None}
    d = data_settings(args, settings, labels=False)
    d.max_length = check_max_length(d.max_length, model.config.max_position_embeddings)
    path = _stdin_to_file(args.format or d.format) if stdin else Path(args.file)
    try:
        examples, report = read_table(path, d, labels=False, task="regression" if regression else "classification")
    finally:
        if stdin:
            path.unlink(missing_ok=True)
    if report.num_skipped:
        print(report.summary().replace(str(path), "<stdin>") if stdin else report.summary(), file=sys.stderr)
    ds = ClassificationDataset(examples, tokenizer, label_map=label_map, max_length=d.max_length,
                               regression=regression)
    logits = predict_logits(model, ds, args.batch_size)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        if regression:
            for e, value in zip(examples, logits[:, 0].tolist()):
                out.write(json.dumps({"line": e.line, "value": round(value, 6)}) + "\n")
        else:
            probs = torch.from_numpy(logits).softmax(-1).numpy()
            best = np.argmax(probs, axis=-1)
            names = label_map.names
            for e, p, k in zip(examples, probs.tolist(), best.tolist()):
                out.write(json.dumps({"line": e.line, "label": names[k],
                                      "probabilities": {n: round(x, 6) for n, x in zip(names, p)}},
                                     ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.out:
        print(f"predict: {len(examples)} predictions -> {args.out}", file=sys.stderr)
    return 0
