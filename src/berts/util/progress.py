"""One rule for the progress bars of every long loop outside the trainer (embed, index, predict,
evaluate, compare, augment, prepare): a tqdm bar on stderr when stderr is a terminal, none when it
is not (a log file, a pipe) or with the command's --quiet, as the trainer's ``log.progress: auto``.
``BERTS_PROGRESS=1`` forces the bars on (a log that wants them; the tests), ``=0`` off.

    for batch in progress(batches, total=n, desc="predict", unit="batch", quiet=args.quiet): ...
"""
from __future__ import annotations

import os
import sys


def progress_on(quiet: bool = False) -> bool:
    """Whether a long loop shows a bar: not with ``quiet``; BERTS_PROGRESS=1/0 decides; else a TTY."""
    if quiet:
        return False
    forced = os.environ.get("BERTS_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class _Silent:
    """What ``progress`` returns when the bar is off: the iterable itself, and tqdm's methods as no-ops."""

    def __init__(self, iterable=None):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n=1):
        pass

    def set_postfix_str(self, *a, **k):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it", quiet: bool = False,
             enabled: bool | None = None):
    """A tqdm bar over ``iterable`` (or a manual one: ``total`` and ``.update(n)``) on stderr, or a
    silent stand-in when ``progress_on(quiet)`` is false. ``enabled`` overrides the rule (an API
    argument such as Encoder.encode's ``show_progress``)."""
    if not (progress_on(quiet) if enabled is None else enabled):
        return _Silent(iterable)
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)
