"""The one validation layer for numeric flags: argparse ``type=`` functions that every command
uses, so a value that means nothing (nan, a negative count, 0 threads) is one line naming the flag
(argparse's ``berts CMD: error: argument --flag: ...``, exit 2), before anything is loaded.

    p.add_argument("--batch-size", type=count)          # an integer >= 1
    p.add_argument("--temperature", type=positive)      # a finite number > 0
    p.add_argument("--n", type=count_at_most(1000))     # bounded: a typo of 1000000 is not a run

Light on purpose (no torch): `berts CMD --help` and argparse errors import nothing heavy."""
from __future__ import annotations

import argparse
import math


def _number(text: str, kind=float):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{'an integer' if kind is int else 'a number'} expected, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"a finite number expected, got {text!r}")
    return value


def _typed(name: str, kind, ok, need: str):
    def convert(text):
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{need}, got {text!r}")
        return value
    convert.__name__ = name  # argparse names the type in some messages
    return convert


count = _typed("count", int, lambda v: v >= 1, "an integer >= 1 expected")
natural = _typed("natural", int, lambda v: v >= 0, "an integer >= 0 expected")
finite = _typed("finite", float, lambda v: True, "a finite number expected")
positive = _typed("positive", float, lambda v: v > 0, "a finite number > 0 expected")
nonnegative = _typed("nonnegative", float, lambda v: v >= 0, "a finite number >= 0 expected")
probability = _typed("probability", float, lambda v: 0 <= v <= 1, "a number in [0, 1] expected")
open_probability = _typed("open_probability", float, lambda v: 0 < v <= 1, "a number in (0, 1] expected")


def count_at_most(limit: int):
    """An integer in [1, limit]."""
    return _typed("count", int, lambda v: 1 <= v <= limit, f"an integer in [1, {limit:,}] expected")
