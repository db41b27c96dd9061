"""Files: the checks and gzip detection every reader needs; the atomic file and directory writes
every writer of a model, checkpoint, tokenizer or shard directory uses (fsynced, umask honoured,
a full disk is one line); and the claim a command lays on its output directory.

Replacing a directory (``final/``, ``best/``) is one atomic swap on Linux (renameat2 with
RENAME_EXCHANGE), so there is no moment at which neither the old nor the new one is under the name.
Where the swap is missing (other systems, some filesystems) it is two renames, and a crash between
them leaves the old one as ``.NAME.old-PID``: ``recover_dir`` (called by every reader of a model
directory and by the next write) puts it back."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import gzip
import io
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
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
    """The whole UTF-8 text of a user's file (a byte-order mark dropped), or a one-line UserError
    naming it: the file and line of the first byte that is not UTF-8."""
    check_readable(path, expected)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(f"{path}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start}); berts reads UTF-8 "
                        "(convert it first, e.g. iconv -f latin1 -t utf-8)") from None


def text_lines(path: Path, expected: str = "a text file") -> io.StringIO:
    """A user's UTF-8 file to iterate line by line as ``open(path)`` would (universal newlines), read
    whole first so that a byte that is not UTF-8 is one line naming file:line (``read_text``)."""
    return io.StringIO(read_text(path, expected), newline=None)


# ----------------------------------------------------------------------------- writing
# errors of the machine, not of the program: one line naming the path, never a traceback
_STORAGE_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                   errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                   errno.EPERM: "permission denied", errno.EIO: "input/output error"}


def is_storage_error(exc: OSError) -> bool:
    """A full disk, a quota, a read-only or failing device, no permission: the machine's, not a bug."""
    return exc.errno in _STORAGE_ERRORS


def storage_error(path, exc: OSError) -> UserError:
    """The one-line UserError for an OSError met while writing ``path``."""
    why = _STORAGE_ERRORS.get(exc.errno) or exc.strerror or str(exc)
    return UserError(f"{path}: cannot write ({why})")


def _umask() -> int:
    try:  # Linux: read it without changing it (a thread, TensorBoard's writer, may create a file now)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # elsewhere the only way to read it: set straight back
    os.umask(mask)
    return mask


def fsync_path(path: Path) -> None:
    """Flush one file or directory to the disk (a directory: its entries, i.e. renames into it)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync a directory: not an error of ours
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _publishable(root: Path) -> None:
    """Before publishing: modes from the umask (mkdtemp makes 0700 and some writers 0600 files, while
    a model a user saves should read like any file they write), and everything flushed to the disk."""
    mask = _umask()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
                continue  # a link (carry_over) to a file that is not ours to change: its mode stays
            os.chmod(path, 0o666 & ~mask)
            fsync_path(path)
        os.chmod(dirpath, 0o777 & ~mask)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        fsync_path(Path(dirpath))


_RENAME_EXCHANGE = 2
_libc = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE). False where it is not supported."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _libc.renameat2  # glibc >= 2.28
        except (OSError, AttributeError):
            _libc = False
    if not _libc:
        return False
    at_fdcwd = -100
    if _libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # kernel or filesystem without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def _old_copies(directory: Path) -> list[Path]:
    """``.NAME.old-*`` siblings: a previous complete ``directory`` set aside by the two-rename
    fallback, newest first."""
    try:
        olds = [p for p in directory.parent.glob(f".{directory.name}.old-*") if p.is_dir()]
    except OSError:
        return []
    return sorted(olds, key=lambda p: p.stat().st_mtime, reverse=True)


def recover_dir(directory: str | os.PathLike) -> bool:
    """When a crash between the two renames of the fallback left only ``.NAME.old-*``, put it back
    under ``directory``'s name. True when it did."""
    directory = Path(directory)
    if directory.exists():
        return False
    for old in _old_copies(directory):
        try:
            os.rename(old, directory)
        except OSError:
            continue
        return True
    return False


def _remove_leftovers(directory: Path) -> None:
    for pattern in (f".{directory.name}.old-*", f".{directory.name}.tmp-*"):
        for p in directory.parent.glob(pattern):
            shutil.rmtree(p, ignore_errors=True)


def atomic_write_dir(directory: Path, write) -> None:
    """``write(tmp)`` into a temporary sibling directory, flush it, then swap it in, so that a crash
    never leaves a half-written directory under ``directory``'s name, nor none at all. A full disk
    (or any storage error) ends in one line naming ``directory``, with nothing replaced."""
    directory = Path(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        recover_dir(directory)
        _remove_leftovers(directory)  # of a writer killed after its swap (one writer at a time)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    except OSError as exc:
        raise storage_error(directory, exc) from None
    try:
        write(tmp)
        _publishable(tmp)
        if directory.exists():
            if _exchange(tmp, directory):  # tmp now holds the previous one
                fsync_path(directory.parent)
            else:
                old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
                os.replace(directory, old)
                os.replace(tmp, directory)  # a crash before this line: recover_dir puts `old` back
                fsync_path(directory.parent)
        else:
            os.replace(tmp, directory)
            fsync_path(directory.parent)
        _remove_leftovers(directory)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        recover_dir(directory)
        raise storage_error(directory, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        recover_dir(directory)
        raise


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)  # the same bytes under the new directory, without copying them
    except OSError:
        shutil.copy2(src, dst)


def carry_over(directory: Path, tmp: Path, skip: Iterable[str] = ()) -> None:
    """Into ``tmp``, what ``directory`` holds besides the names ``skip`` (what the writer replaces), so
    that publishing ``tmp`` in its place keeps the rest. Hard links where possible (no copy, and the
    files are never written to, only replaced), else copies."""
    skip = set(skip)
    for item in Path(directory).iterdir():
        if item.name in skip:
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.copytree(item, tmp / item.name, copy_function=_link_or_copy, symlinks=True)
        elif item.is_symlink():
            os.symlink(os.readlink(item), tmp / item.name)
        else:
            _link_or_copy(item, tmp / item.name)


def is_stream(path: str | os.PathLike) -> bool:
    """``path`` (through links) is a character device, a named pipe or a socket: something to write
    to, never to replace (``/dev/stdout``, ``/dev/null``, ``mkfifo`` pipes)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _write_stream(path: Path, data: bytes) -> None:
    try:
        with open(path, "wb") as f:  # no temporary file, no rename: the node stays what it is
            f.write(data)
    except OSError as exc:  # /dev/full: ENOSPC; a socket: ENXIO
        raise storage_error(path, exc) from None


def atomic_write_file(path: str | os.PathLike, data: bytes | str) -> None:
    """Write a whole file under a temporary name, flush it, rename it into place: readers see the old
    file or the new one, never a part. Storage errors: one line naming ``path``. A device, pipe or
    socket at ``path`` is written to as a stream, never replaced by a regular file."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if is_stream(path):
        return _write_stream(path, data)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask applies
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise storage_error(path, exc) from None


# ----------------------------------------------------------------------------- output files
def _same(a: Path, b: Path) -> bool:
    """One file under two names: equal after resolving links and ``..``, or the same inode (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(out: str | os.PathLike, inputs: Iterable = (), model_dirs: Iterable = (),
                    flag: str = "--out") -> None:
    """Refuse in one line an output that is (or resolves to, through links or ``..``) one of the
    command's input files, or a file inside one of its input model directories, or a model
    directory itself: writing it would destroy what the command reads."""
    out = Path(out)
    for inp in inputs:
        if inp is not None and str(inp) != "-" and _same(out, Path(inp)):
            raise UserError(f"{flag} {out}: is the input {inp} (writing it would destroy it); choose another path")
    resolved = out.resolve()
    for d in model_dirs:
        if d is None:
            continue
        d = Path(d).resolve()
        if resolved == d or d in resolved.parents and (resolved.exists() or resolved.is_symlink()):
            what = "is the input model directory" if resolved == d else f"is a file of the input model directory {d}"
            raise UserError(f"{flag} {out}: {what} (writing it would destroy the model); choose another path")
        try:  # a hard link to one of the model's files
            if out.exists() and any(_same(out, f) for f in d.iterdir() if f.is_file()):
                raise UserError(f"{flag} {out}: is a file of the input model directory {d} (a hard link); "
                                "choose another path")
        except OSError:
            pass


def claim_output_file(out: str | os.PathLike, *, inputs: Iterable = (), model_dirs: Iterable = (),
                      overwrite: bool = False, streams: bool = True, flag: str = "--out",
                      suffixes: tuple[str, ...] = ()) -> bool:
    """The one check every command that writes a file runs before it reads or computes anything.
    Refused in one line: an input (``check_not_input``), a directory, a block device, a stream
    when the writer must read its file back (``streams=False``: ONNX export), and an existing
    regular file without ``overwrite`` (berts cannot know it wrote a single file: it never
    replaces one unless asked, the rule of the training commands' --out). Returns True when
    ``out`` is a device, pipe or socket: write to it as a stream (``atomic_write_file`` does).
    ``suffixes``: the names the writer can produce (``(".png",)``): any other regular file name is
    refused, so a typo such as ``--report-png dev.tsv`` never reaches the writer."""
    out = Path(out)
    check_not_input(out, inputs, model_dirs, flag)
    if suffixes and not is_stream(out) and out.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {out}: this writes {' or '.join(suffixes)} files; name the file with that ending")
    if is_stream(out):
        if not streams:
            raise UserError(f"{flag} {out}: a device, pipe or socket; this command must write a regular file")
        if stat.S_ISSOCK(os.stat(out).st_mode):
            raise UserError(f"{flag} {out}: a socket, which cannot be opened as a file")
        return True
    if out.is_dir():
        raise UserError(f"{flag} {out}: is a directory; name the file to write")
    if out.exists():
        if not stat.S_ISREG(os.stat(out).st_mode):
            raise UserError(f"{flag} {out}: exists and is not a regular file (a block device?); not replaced")
        if not overwrite:
            raise UserError(f"{flag} {out}: exists; pass --overwrite to replace it, or choose a new name")
    elif out.parent != Path("") and not out.parent.is_dir():
        raise UserError(f"{flag} {out}: no such directory {out.parent}")
    return False


# ----------------------------------------------------------------------------- output directories
MARKER = ".berts-run.json"
# What a training run writes at the top of its --out (everything else there is someone else's).
RUN_NAMES = ("config.yaml", "metrics.jsonl", "checkpoints", "final", "best", "tb", "plots")
# What `berts tokenizer train|import` writes (berts.tokenizer.files.TOKENIZER_FILES).
TOKENIZER_NAMES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
RESUMABLE = ("pretrain", "finetune", "distill")  # kinds with a --resume flag


# What `berts compare --out DIR` writes.
COMPARE_NAMES = ("compare.md", "compare.json", "compare.png")


def _berts_names(kind: str, earlier: str | None) -> set[str]:
    if kind == "compare":  # a comparison's own files only: a training run's there are not its to remove
        return {MARKER, *COMPARE_NAMES}
    names = {MARKER, *RUN_NAMES}
    if "tokenizer" in (kind, earlier):
        names |= set(TOKENIZER_NAMES)
    if "compare" in (kind, earlier):
        names |= set(COMPARE_NAMES)
    return names


def _ours(name: str, names: set[str]) -> bool:
    """A name berts writes, or a leftover of its atomic writes (``.final.tmp-*``, ``.best.old-*``,
    ``.berts-run.json.tmp-*``)."""
    if name in names:
        return True
    if name.startswith("."):
        base, sep, _ = name[1:].rpartition(".tmp-")
        if not sep:
            base, sep, _ = name[1:].rpartition(".old-")
        return bool(sep) and (base in names or "." + base in names)
    return False


def _listing(names: list[str], directory: Path, limit: int = 4) -> str:
    shown = [n + "/" if (directory / n).is_dir() else n for n in names[:limit]]
    return ", ".join(shown + (["..."] if len(names) > limit else []))


def read_marker(directory: str | os.PathLike) -> dict | None:
    """The ``.berts-run.json`` of a run directory ({"kind", "created"}), or None."""
    path = Path(directory) / MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise UserError(f"{path}: not a berts run marker (expected a JSON object with a \"kind\")")
    return data


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def claim_output_dir(path: str | os.PathLike, kind: str, *, resume: bool = False, overwrite: bool = False,
                     protect: Iterable[str | os.PathLike] = ()) -> Path:
    """Take ``path`` as the output directory of a ``kind`` run ("pretrain", "finetune", "tokenizer"),
    or refuse in one line that says what is there and which flag to use.

    Missing or empty: created, marked (``.berts-run.json``). The same kind's marker and ``resume``:
    the run continues its own directory. ``overwrite``: what an earlier berts run wrote there (only
    the names berts writes) is removed, other files are kept; refused when a ``protect`` path (the
    model the run reads) lies inside what would be removed. Anything else non-empty: refused.
    A run directory of an older berts (no marker, only berts' names) counts as that kind's run."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    try:
        entries = sorted(os.listdir(out)) if out.is_dir() else []
    except OSError as exc:
        raise UserError(f"{out}: cannot read ({exc.strerror or exc})") from None
    marker = read_marker(out) if MARKER in entries else None
    earlier = marker["kind"] if marker else None
    names = _berts_names(kind, earlier)
    ours = [n for n in entries if _ours(n, names)]
    theirs = [n for n in entries if n not in ours]
    shown = [n for n in ours if n != MARKER and not n.startswith(".")]
    if earlier is None and shown and not theirs:
        # no marker but only berts' names: a run of an older berts; its kind is what its names say
        earlier = ("tokenizer" if set(shown) <= set(TOKENIZER_NAMES) else "compare" if set(shown) <= set(COMPARE_NAMES)
                   else kind if kind in RESUMABLE else "training")

    protected = [Path(p).resolve() for p in protect]

    def check_protect(removed: list[str], how: str) -> None:
        for p in protected:
            for n in removed:
                if _inside(p, (out / n).resolve()):
                    raise UserError(f"{out}: this run reads {p}, which lies inside {out / n} that {how}; "
                                    f"write to another --out")

    if not entries:
        pass
    elif resume and earlier == kind and not theirs or resume and marker and marker["kind"] == kind:
        check_protect([n for n in shown if n in ("checkpoints", "final", "best")], "the resumed run would replace")
        if marker is None:
            _write_marker(out, kind)
        return out
    elif overwrite:
        removed = [n for n in ours if n != MARKER]
        check_protect(removed, "--overwrite would remove")
        for n in removed:
            p = out / n
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            except OSError as exc:
                raise UserError(f"{p}: cannot remove ({exc.strerror or exc})") from None
    elif theirs and not (marker and shown):  # (a marked run's outputs are what matters: below)
        count = f"{len(theirs)} file{'s' if len(theirs) > 1 else ''}"
        raise UserError(f"{out}: holds {count} that berts did not write ({_listing(theirs, out)}); "
                        f"choose an empty or new directory, or pass --overwrite to write beside them "
                        f"(they are kept)")
    elif shown:
        what = {"tokenizer": "an earlier tokenizer", "compare": "an earlier comparison"}.get(earlier, f"an earlier {earlier} run")
        hint = ("--resume auto to continue it, or --overwrite to replace its outputs"
                if earlier == kind and kind in RESUMABLE else "--overwrite to replace it")
        raise UserError(f"{out}: holds {what} ({_listing(shown, out)}); pass {hint}")
    # else: only hidden leftovers of berts' atomic writes, or our own marker: take it
    _write_marker(out, kind)
    return out


def _write_marker(out: Path, kind: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"kind": kind, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}) + "\n"
    atomic_write_file(out / MARKER, body.encode("utf-8"))


def release_output_dir(path: str | os.PathLike) -> None:
    """Undo a claim that produced nothing (the command failed before writing): the marker goes, and
    the directory too when it is then empty. Anything else in it stays."""
    out = Path(path)
    try:
        (out / MARKER).unlink()
        out.rmdir()
    except OSError:
        pass
