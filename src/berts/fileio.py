"""Files: the checks and gzip detection every reader needs, and the atomic directory write every
writer of a model, checkpoint or tokenizer directory uses."""
from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

from berts.errors import UserError


def check_readable(path: Path, expected: str = "a text file") -> None:
    """Raise a one-line UserError naming ``path`` unless it is a readable file."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected {expected}") from None
    except PermissionError:
        raise UserError(f"{path}: not readable (permission denied)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None


def open_binary(path: Path):
    """A binary file object, decompressing gzip (by its magic bytes, whatever the name)."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if f.read(2) == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb")
    f.seek(0)
    return f


def read_text(path: Path, expected: str = "a text file") -> str:
    """The whole UTF-8 text of a user's file, or a one-line UserError naming it."""
    check_readable(path, expected)
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None


def atomic_write_dir(directory: Path, write) -> None:
    """``write(tmp)`` into a temporary sibling directory, then swap it in, so that a crash never
    leaves a half-written directory under ``directory``'s name."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        write(tmp)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
