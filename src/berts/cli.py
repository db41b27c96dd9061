"""The `berts` command. Each sub-command lives in berts/commands/<name>.py and
exposes ``register(subparsers)``, which adds its parser and sets ``func``."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from berts.errors import UserError

# Order is the order shown by `berts --help`.
COMMANDS = ["tokenizer", "info", "prepare", "pretrain", "finetune", "evaluate", "predict", "bench", "demo"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="berts",
        description="Train the BERT family from scratch: tokenizer, data, pretraining, fine-tuning, evaluation, serving.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"berts.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"berts: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        # a file the user named that a reader did not check first: still one line, not a traceback
        print(f"berts: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("berts: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `berts predict ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
