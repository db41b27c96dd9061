"""Reading pretraining corpora: files, directories, globs, ``.gz``; three formats.

* ``bert``: one sentence a line, a blank line between documents (Google BERT's input).
* ``plain``: one paragraph a line, a blank line between documents; each line is split into
  sentences (:func:`split_sentences`: English with abbreviation rules, Chinese on 。！？；…).
* ``jsonl``: one document a record, its text in a ``text`` field (newlines separate paragraphs).

``auto`` picks per file: ``.jsonl``/``.json``/``.ndjson`` (optionally ``.gz``) or a first line
that parses as a JSON object -> jsonl; lines that mostly hold one sentence -> bert; else plain.

One reader for both commands that read corpora: :class:`Corpus` (expand the inputs, detect
each file's format, read documents, count problems) is what ``berts prepare`` (sentences, in
workers) and ``berts tokenizer train`` (:meth:`Corpus.texts`) go through, so the two accept the
same inputs and give the same one-line errors.

Reading is split in two so that it streams and parallelises: :func:`read_documents` (main
process) decodes bytes and groups lines into raw documents, noting each one's file and line;
:func:`document_sentences` (a worker) turns a raw document into sentences. Lines that are not
valid UTF-8, bad JSON records and empty documents are reported as ``file:line`` and counted
by a :class:`Problems`; they never stop the run.
"""
from __future__ import annotations

import glob as _glob
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from berts.errors import UserError, where
from berts.util.fileio import open_binary

FORMATS = ("auto", "bert", "plain", "jsonl")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
MAX_DOCUMENT_LINES = 10_000  # a longer document is cut into documents of this many lines

# ----------------------------------------------------------------------------- sentences
CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
CJK = re.compile(f"[{CJK_RANGES}]")

# Words that end with a period but never end a sentence (lower case, without the period).
NEVER_FINAL = frozenset("""
mr mrs ms messrs mme mlle dr prof rev hon gov sen rep pres gen col lt sgt capt cmdr adm maj supt
st mt ft e.g i.e cf viz vs al approx dept univ assn bros
""".split())
# ... and these only when a number follows ("No. 5", "Jan. 12", "Fig. 3").
BEFORE_NUMBER = frozenset("""
no nos vol vols p pp fig figs art sec ch eq ed op jan feb mar apr jun jul aug sep sept oct nov dec
""".split())
_OPENERS = "\"'“‘([{「『《〈【"

_BOUNDARY = re.compile(
    # Chinese terminators split wherever they are, with the closing quotes that follow them;
    # an ellipsis only when no lower-case Latin word continues the sentence.
    r"(?:[。！？；]+|…+(?!\s*[a-z]))[”’」』）》〕】\"')\]]*"
    # ASCII terminators followed by white space (checked further in _english_boundary)
    r"|(?P<en>[.!?]+)[”’\"')\]]*(?=\s)"
    # ASCII ! ? directly before a CJK character (Chinese written with ASCII punctuation)
    f"|[!?]+(?=[{CJK_RANGES}])"
)
_BOUNDARY_ASCII = re.compile(r"(?P<en>[.!?]+)[\"')\]]*(?=\s)")  # the same, for ASCII-only text


def _english_boundary(text: str, match: re.Match) -> bool:
    """Is an ASCII terminator followed by white space the end of a sentence?"""
    end = match.end()
    n = len(text)
    while end < n and text[end].isspace():
        end += 1
    if end == n:
        return True
    nxt = text[end]
    if not (nxt.isupper() or nxt.isdigit() or nxt in _OPENERS or CJK.match(nxt)):
        return False  # "e.g. before", "5 p.m. on Monday"
    if match.group("en") != ".":
        return True  # "!", "?", "..." before a capital
    start = match.start()
    word_start = text.rfind(" ", 0, start) + 1
    word = text[word_start:start].lstrip(_OPENERS).lower()
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. Smith"
    if word in NEVER_FINAL:
        return False
    if word in BEFORE_NUMBER and nxt.isdigit():
        return False
    return True


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences (English and Chinese, mixed text allowed).

    >>> split_sentences("Dr. Smith arrived, e.g. at 5 p.m. today. He left.")
    ['Dr. Smith arrived, e.g. at 5 p.m. today.', 'He left.']
    >>> split_sentences("他说：“好。”我们走吧！")
    ['他说：“好。”', '我们走吧！']
    """
    out = []
    start = 0
    for m in (_BOUNDARY_ASCII if text.isascii() else _BOUNDARY).finditer(text):
        if m.group("en") is not None and not _english_boundary(text, m):
            continue
        sentence = text[start:m.end()].strip()
        if sentence:
            out.append(sentence)
        start = m.end()
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out


# ----------------------------------------------------------------------------- problems
class Problems:
    """Counts what was skipped, by kind, and prints the first ``max_shown`` as ``file:line: ...``."""

    LABELS = {"invalid_utf8_line": "invalid UTF-8 line", "bad_record": "bad JSONL record",
              "empty_document": "empty document", "unpaired_document": "unpaired document",
              "unreadable_file": "unreadable file"}

    def __init__(self, max_shown: int = 100, stream=None, keep: int = 1000):
        self.counts: Counter[str] = Counter()
        self.max_shown = max_shown
        self.keep = keep
        self.shown = 0
        self.stream = stream if stream is not None else sys.stderr
        self.messages: list[str] = []  # the first `keep` messages, for the summary

    def add(self, kind: str, location: str, message: str) -> None:
        self.counts[kind] += 1
        text = f"{location}: {message}"
        if len(self.messages) < self.keep:
            self.messages.append(text)
        if self.shown < self.max_shown and self.stream is not False:
            self.shown += 1
            print(f"berts: warning: {text}", file=self.stream)

    def merge(self, items: Iterable[tuple[str, str, str]]) -> None:
        for kind, location, message in items:
            self.add(kind, location, message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """e.g. '3 invalid UTF-8 lines, 1 empty document skipped' ('' when nothing was)."""
        if not self.counts:
            return ""
        parts = [f"{n} {self.LABELS.get(kind, kind.replace('_', ' '))}{'s' if n != 1 else ''}"
                 for kind, n in sorted(self.counts.items())]
        hidden = self.total - self.shown
        tail = f" ({hidden} not shown)" if hidden > 0 and self.stream is not False else ""
        return "skipped " + ", ".join(parts) + tail


# ----------------------------------------------------------------------------- inputs
def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Files named by paths, directories (all files below, sorted, hidden ones left out) and
    globs (``**`` allowed), in the order given, each once."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files: list[Path] = []
    for item in inputs:
        text = str(item)
        if any(c in text for c in "*?[") and not os.path.exists(text):
            matches = [Path(p) for p in sorted(_glob.glob(text, recursive=True)) if os.path.isfile(p)]
            if not matches:
                raise UserError(f"{text}: no files match this pattern")
            files.extend(matches)
        elif os.path.isdir(text):
            found = []
            for root, dirs, names in os.walk(text):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
            if not found:
                raise UserError(f"{text}: directory holds no files")
            files.extend(found)
        elif os.path.isfile(text):
            files.append(Path(text))
        else:
            raise UserError(f"{text}: no such file or directory")
    seen, unique = set(), []
    for f in files:
        key = os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    if not unique:
        raise UserError("no input files given")
    return unique


def _base_name(path: Path) -> str:
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def detect_format(path: Path, sample_bytes: int = 1 << 16) -> str:
    """``bert``, ``plain`` or ``jsonl`` for one file (see the module docstring)."""
    if _base_name(path).endswith(JSONL_SUFFIXES):
        return "jsonl"
    try:
        with open_binary(path) as f:
            head = f.read(sample_bytes)
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    text = head.decode("utf-8", errors="replace")
    lines = [line.strip() for line in text.splitlines()[:-1] or text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return "bert"
    if lines[0].startswith("{"):
        try:
            if isinstance(json.loads(lines[0]), dict):
                return "jsonl"
        except json.JSONDecodeError:
            pass
    sample = lines[:200]
    multi = sum(len(split_sentences(line)) > 1 for line in sample)
    return "plain" if multi > 0.1 * len(sample) else "bert"


class RawDocument(NamedTuple):
    """A document as read: its file (index into the file list), first line, format and lines."""
    source: int
    line: int
    fmt: str
    lines: list[str]


def read_documents(files: list[Path], formats: list[str], problems: Problems,
                   counter: list[int] | None = None) -> Iterator[RawDocument]:
    """Raw documents of all files in order. ``counter[0]`` grows by the bytes read (progress).

    Blank lines separate documents (bert, plain); a JSONL line is a document. Lines that are
    not valid UTF-8 are reported and skipped.
    """
    for source, (path, fmt) in enumerate(zip(files, formats)):
        lines: list[str] = []
        first = 0
        try:
            with open_binary(path) as f:
                for lineno, raw in enumerate(f, 1):
                    if counter is not None:
                        counter[0] += len(raw)
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        problems.add("invalid_utf8_line", where(path, lineno),
                                     f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}), line skipped")
                        continue
                    if lineno == 1:
                        line = line.lstrip("\ufeff")
                    if fmt == "jsonl":
                        if line.strip():
                            yield RawDocument(source, lineno, fmt, [line])
                        continue
                    if not line.strip():
                        if lines:
                            yield RawDocument(source, first, fmt, lines)
                            lines = []
                        continue
                    if not lines:
                        first = lineno
                    lines.append(line.strip())
                    if len(lines) >= MAX_DOCUMENT_LINES:
                        yield RawDocument(source, first, fmt, lines)
                        lines = []
        except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
            problems.add("unreadable_file", str(path), f"cannot read further ({exc}), rest of file skipped")
        if lines:
            yield RawDocument(source, first, fmt, lines)


def document_sentences(doc: RawDocument, text_field: str = "text") -> tuple[list[str], str | None]:
    """(sentences, problem): the sentences of a raw document, or a reason it has none."""
    if doc.fmt == "bert":
        return doc.lines, None
    if doc.fmt == "plain":
        return [s for line in doc.lines for s in split_sentences(line)], None
    text, problem = _record_text(doc, text_field)
    if problem:
        return [], problem
    return [s for line in text.splitlines() for s in split_sentences(line)], None


def _record_text(doc: RawDocument, text_field: str) -> tuple[str, str | None]:
    """(text, problem): the ``text_field`` string of a JSONL document's record."""
    try:
        record = json.loads(doc.lines[0])
    except json.JSONDecodeError as exc:
        return "", f"invalid JSON ({exc.msg} at column {exc.colno}), record skipped"
    text = record.get(text_field) if isinstance(record, dict) else None
    if not isinstance(text, str):
        return "", f"no string \"{text_field}\" field, record skipped"
    return text, None


def document_lines(doc: RawDocument, text_field: str = "text") -> tuple[list[str], str | None]:
    """(lines, problem): the text of a raw document as lines, before sentence splitting (what a
    tokenizer trainer needs: the same words as :func:`document_sentences`, without its cost)."""
    if doc.fmt != "jsonl":
        return doc.lines, None
    text, problem = _record_text(doc, text_field)
    if problem:
        return [], problem
    return [line.strip() for line in text.splitlines() if line.strip()], None


class Corpus:
    """The inputs of ``berts prepare`` and ``berts tokenizer train``, read the same way.

    ``inputs``: files, directories, globs (see :func:`expand_inputs`); ``input_format``: auto
    (per file, :func:`detect_format`), bert, plain or jsonl; ``text_field``: the JSONL field.
    Problems (invalid UTF-8, bad records, unreadable .gz) are counted in ``problems``.
    """

    def __init__(self, inputs: str | os.PathLike | Iterable[str | os.PathLike], *, input_format: str = "auto",
                 text_field: str = "text", problems: Problems | None = None):
        if input_format not in FORMATS:
            raise UserError(f"input format must be one of {', '.join(FORMATS)}, got {input_format!r}")
        self.files = expand_inputs(inputs)
        self.formats = [detect_format(f) if input_format == "auto" else input_format for f in self.files]
        self.text_field = text_field
        self.problems = problems if problems is not None else Problems()
        self.lines = 0  # text lines yielded by texts()

    def documents(self, counter: list[int] | None = None) -> Iterator[RawDocument]:
        return read_documents(self.files, self.formats, self.problems, counter)

    def texts(self) -> Iterator[str]:
        """Every non-empty text line of every document (a line of a bert/plain file, a line of a
        JSONL record's text field), in order."""
        for doc in self.documents():
            lines, problem = document_lines(doc, self.text_field)
            if problem is not None:
                self.problems.add("bad_record", where(self.files[doc.source], doc.line), problem)
            self.lines += len(lines)
            yield from lines

    def sentences(self) -> Iterator[list[str]]:
        """The sentences of every document, as ``berts prepare``'s workers split them, serially
        (documents without any are skipped here; prepare reports them)."""
        for doc in self.documents():
            sents, problem = document_sentences(doc, self.text_field)
            if problem is not None:
                self.problems.add("bad_record", where(self.files[doc.source], doc.line), problem)
            if sents:
                yield sents
