"""The `berts` command. Each sub-command lives in berts/commands/<name>.py and
exposes ``register(subparsers)``, which adds its parser and sets ``func``."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from berts.errors import UserError

# Order is the order shown by `berts --help`.
COMMANDS = ["tokenizer", "info", "prepare", "pretrain", "finetune", "evaluate", "predict", "generate", "export", "bench", "demo", "distill", "compare", "baseline", "augment", "embed", "index", "search"]


class _Parser(argparse.ArgumentParser):
    """argparse, with an argument error as one line (the rule for every error of berts; the usage
    block argparse prints above it buried the line that matters): the flag, what it needs, and where
    the usage is. Sub-command parsers are of this class too (add_subparsers uses the parent's)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="berts",
        description="Train the BERT family from scratch: tokenizer, data, pretraining, fine-tuning, evaluation, serving.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"berts.commands.{name}").register(sub)
    return parser


class _StdoutFailed(Exception):
    """A write to stdout failed (a full disk behind `> file`, a closed pipe): told apart from the
    writes to files that the commands name themselves."""

    def __init__(self, error: OSError):
        super().__init__(error)
        self.error = error


class _Stdout:
    """sys.stdout, with its write errors marked as stdout's (see main)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise _StdoutFailed(exc) from None

    def flush(self):
        try:
            return self._stream.flush()
        except OSError as exc:
            raise _StdoutFailed(exc) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    """No more writes to the broken stdout, not even the interpreter's flush at exit."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # sys.stdout is None when started with stdout closed (`berts ... >&-`): print() then writes
    # nothing, and a command whose output is the point (predict) says so itself
    stdout = sys.stdout
    if stdout is not None:
        sys.stdout = _Stdout(stdout)
    try:
        rc = int(args.func(args) or 0)
        if sys.stdout is not None:
            sys.stdout.flush()  # here, where a failure is one line, not at the interpreter's exit
        return rc
    except UserError as exc:
        print(f"berts: error: {exc}", file=sys.stderr)
        return 2
    except _StdoutFailed as failed:
        exc = failed.error
        sys.stdout = stdout
        _silence_stdout()
        if isinstance(exc, BrokenPipeError):  # e.g. `berts predict ... | head`: the reader has enough
            return 0
        from berts.util.fileio import storage_error

        print(f"berts: error: {storage_error('<stdout>', exc)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        # a file the user named that a reader did not check first: still one line, not a traceback
        print(f"berts: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout's pipe, seen outside sys.stdout (a direct fd write)
        sys.stdout = stdout
        _silence_stdout()
        return 0
    except OSError as exc:
        from berts.util.fileio import is_storage_error, storage_error

        if not is_storage_error(exc):
            raise
        # a writer that did not name its file: still one line (the writers of berts name theirs)

        print(f"berts: error: {storage_error(exc.filename or 'a file', exc)}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:  # a reader that did not go through fileio.read_text: still one line
        print(f"berts: error: an input file is not UTF-8 text ({exc.reason} at byte {exc.start}); berts reads "
              "UTF-8 (convert it first, e.g. iconv -f latin1 -t utf-8)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("berts: interrupted", file=sys.stderr)
        return 130
    finally:
        if isinstance(sys.stdout, _Stdout):
            sys.stdout = stdout
