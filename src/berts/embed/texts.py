"""The texts to embed, read from a file, and the embeddings written out: what `berts embed` and
`berts index` share.

Input, ``read_texts(path, ...)`` -> list of (id, text):

* ``lines`` (the default for any file that is not .jsonl): one text a line; the id is the line
  number (1-based). Empty lines (only whitespace) are SKIPPED, and their count said once: a blank
  line is a separator in every corpus format berts reads, not a text; the ids keep the mapping
  back to the file's lines.
* ``bert`` / ``plain`` (berts.data.corpus, as `berts prepare` reads them): ``bert`` = one sentence
  a line, blank lines between documents (a text = a line); ``plain`` = one paragraph a line, split
  into sentences (a text = a sentence; id "LINE.N").
* ``jsonl`` (the default for .jsonl/.ndjson): one record a line, the text in field ``text_field``
  ("text"); the id is the record's "_id" or "id" field when it has one, else its line number.
* a table column (``text_column``: a name or 0-based index; TSV, CSV or JSONL by extension),
  read by berts.data.tables as fine-tuning reads its data (an empty text is an error there).

Invalid UTF-8 or a bad JSONL record: one line naming file:line (nothing is written).

Output, ``write_embeddings(path, ids, texts, vectors)`` by the extension: ``.npy`` (float32
[n, dim]), ``.jsonl`` ({"id", "text", "embedding"} a line) or ``.parquet`` (columns id, text,
embedding as a list of float32); written whole under a temporary name and renamed into place.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

from berts.errors import UserError
from berts.data.corpus import split_sentences
from berts.data.tables import read_examples
from berts.util.fileio import atomic_write_file
from berts.util.fileio import check_readable, open_binary

INPUT_FORMATS = ("auto", "lines", "bert", "plain", "jsonl")
OUTPUT_SUFFIXES = (".npy", ".jsonl", ".parquet")
JSONL = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")


def _lines(path: Path):
    """(line number, text) of a text file (.gz allowed); invalid UTF-8: one line naming file:line."""

    check_readable(path, "a text file")
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{path}:{lineno}: invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                                f"{exc.start + 1})") from None
            if lineno == 1:
                line = line.lstrip("\ufeff")
            yield lineno, line.rstrip("\r\n")


def read_texts(path, input_format: str = "auto", text_column=None, text_field: str = "text",
               say=print) -> list[tuple[str, str]]:
    """(id, text) pairs in file order (see the module docstring). ``say``: where the one-line
    notes go (empty lines skipped)."""
    path = Path(path)
    if input_format not in INPUT_FORMATS:
        raise UserError(f"input format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}")
    if text_column is not None:

        column = int(text_column) if str(text_column).isdigit() else text_column
        examples, _ = read_examples(path, text_column=column)
        return [(str(i + 1), e.text) for i, e in enumerate(examples)]
    fmt = input_format
    if fmt == "auto":
        fmt = "jsonl" if path.name.lower().endswith(JSONL) else "lines"
    out: list[tuple[str, str]] = []
    empty, first_empty = 0, None
    for lineno, line in _lines(path):
        if not line.strip():
            if fmt in ("lines", "jsonl"):
                empty += 1
                first_empty = first_empty or lineno
            continue  # bert / plain: a document boundary
        if fmt in ("lines", "bert"):
            out.append((str(lineno), line.strip()))
        elif fmt == "plain":

            out.extend((f"{lineno}.{k + 1}", s) for k, s in enumerate(split_sentences(line.strip())))
        else:  # jsonl
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            text = record.get(text_field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise UserError(f"{path}:{lineno}: no string {text_field!r} field")
            rid = record.get("_id", record.get("id", lineno))
            if not text.strip():
                empty += 1
                first_empty = first_empty or lineno
                continue
            out.append((str(rid), text))
    if empty:
        say(f"{path}: {empty} empty text(s) skipped (first at line {first_empty})")
    if not out:
        raise UserError(f"{path}: no texts")
    return out


def check_output(path) -> Path:
    """The --out path's format is known, and its folder exists: checked before any work."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UserError(f"{path}: the output format goes by the extension: {', '.join(OUTPUT_SUFFIXES)}")
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no such directory")
    if path.is_dir():
        raise UserError(f"{path}: is a directory")
    return path


def write_embeddings(path, ids, texts, vectors) -> Path:
    """vectors float32 [n, dim] (+ ids, texts) -> .npy / .jsonl / .parquet, atomically."""
    import numpy as np

    path = check_output(path)
    vectors = np.asarray(vectors, dtype=np.float32)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, vectors)
        data = buf.getvalue()
    elif suffix == ".jsonl":
        data = "".join(json.dumps({"id": i, "text": t, "embedding": [float(x) for x in v]}, ensure_ascii=False) + "\n"
                       for i, t, v in zip(ids, texts, vectors))
    else:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError(f"{path}: writing parquet needs pyarrow (pip install pyarrow)") from None
        table = pa.table({"id": list(ids), "text": list(texts),
                          "embedding": pa.array(list(vectors), type=pa.list_(pa.float32()))})
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf)
        data = buf.getvalue().to_pybytes()
    atomic_write_file(path, data)
    return path
