"""Where every task's `berts predict` output goes: one writer for classification, token tagging,
question answering, multiple choice and multi-label (each task builds its rows, this writes them)::

    write_predictions([{"line": 1, "label": "pos"}, ...], args.out)        # JSONL, one object a row
    write_predictions([conll_text], args.out, fmt="text")                  # strings as they are

Everything is predicted and formatted before the first byte is written, and ``--out`` is written
whole through berts.util.fileio.atomic_write_file (a temporary file renamed into place: a failed
or interrupted run leaves the old file or none, never half of one; a device or pipe is written to
as a stream). Without ``--out`` the rows go to stdout; a closed pipe (``| head``) is left to the
CLI, which ends quietly; any other write error is one line naming the target.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable

from berts.errors import UserError
from berts.util.fileio import atomic_write_file

FORMATS = ("jsonl", "text")


def format_predictions(rows: Iterable, fmt: str = "jsonl") -> str:
    """``jsonl``: each row (a dict) as one JSON line (UTF-8 as it is, no ``\\u`` escapes);
    ``text``: each row a string, joined as it is (CoNLL blocks carry their own newlines)."""
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if fmt == "text":
        return "".join(rows)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def write_predictions(rows, out: str | None, fmt: str = "jsonl", what: str = "predictions",
                      count: int | None = None) -> int:
    """Write ``rows`` to ``out`` (a path, already claimed by claim_output_file) or stdout (None),
    and say on stderr where ``count`` (default: the number of rows) ``what`` went. Returns 0."""
    rows = list(rows)
    data = format_predictions(rows, fmt)
    n = len(rows) if count is None else count
    if out:
        atomic_write_file(out, data)  # storage errors: one line naming out
        print(f"predict: {n} {what} -> {out}", file=sys.stderr)
        return 0
    if sys.stdout is None:  # `berts predict M f >&-`
        raise UserError("stdout is closed: nowhere to write the predictions (give --out FILE)")
    try:
        sys.stdout.write(data)
        sys.stdout.flush()
    except BrokenPipeError:
        raise  # `| head`: cli.main ends quietly
    except OSError as exc:  # a full disk behind a redirect, a closed descriptor
        raise UserError(f"<stdout>: cannot write the predictions ({exc.strerror or exc})") from None
    return 0
