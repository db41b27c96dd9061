"""Labelled rows from GLUE-style TSV, CSV and JSONL files, parquet files and `datasets`
directories (``save_to_disk``): the readers and header detection.

``read_examples`` reads one file into :class:`Example` rows and a :class:`ReadReport`
(label strings become ids in berts.data.labels; the rows become batches in
berts.data.classification).

TSV is split on tabs only: quote characters are text (GLUE's files hold unbalanced quotes),
which is ``csv.QUOTE_NONE``. CSV uses standard quoting (a quoted field may span lines).
Columns are named by header name or by 0-based index (negative counts from the end).
Parquet and `datasets` rows are records like JSONL's (fields by name); their "line" in an error
is the 1-based row number.

``read_records`` gives any of these as ``(line, {field: value})`` records, for tasks whose rows
are not one text and one label (multiple choice's lists of choices, multi-label's label lists).
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berts.errors import UserError, where
from berts.util.fileio import check_readable, open_binary

FORMATS = ("tsv", "csv", "jsonl", "parquet", "datasets")
RECORD_FORMATS = ("jsonl", "parquet", "datasets")  # fields by name, a row is a dict
TASKS = ("classification", "regression")
MAX_REPORTED = 5  # bad-row locations kept in a ReadReport
_EXTENSIONS = {".tsv": "tsv", ".txt": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
               ".parquet": "parquet", ".pq": "parquet"}

Column = int | str


@dataclass(frozen=True, slots=True)
class Example:
    """One row: the text (and second text of a pair), the label and where it came from.

    ``label`` is the raw string (classification), a float (regression), or None (no label column).
    """
    text: str
    text_pair: str | None = None
    label: str | float | None = None
    line: int | None = None
    path: str | None = None


@dataclass
class ReadReport:
    """What ``read_examples`` read: counts of kept and skipped rows and where the first bad rows are."""
    path: str
    format: str
    header: list[str] | None = None  # the header row's column names, if the file has one
    rows: int = 0  # examples kept
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    first_skipped: list[str] = field(default_factory=list)  # "path:line: what is wrong", the first few

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        text = f"{self.path}: {self.rows} examples"
        if self.skipped:
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
            text += f", skipped {self.num_skipped} bad rows ({reasons}; first: {self.first_skipped[0]})"
        return text


class _BadRow(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


class _Problems:
    """Raises a UserError for a bad row, or (skip_bad_rows) counts it in the report."""

    def __init__(self, report: ReadReport, skip: bool):
        self.report, self.skip = report, skip
        self.row = 0  # parquet / datasets: the row number, their "line"

    def bad(self, line: int, reason: str, message: str) -> None:
        location = f"{where(self.report.path, line)}: {message}"
        if not self.skip:
            raise UserError(location)
        self.report.skipped[reason] = self.report.skipped.get(reason, 0) + 1
        if len(self.report.first_skipped) < MAX_REPORTED:
            self.report.first_skipped.append(location)


# ----------------------------------------------------------------------------- reading rows
def _raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes) of a plain or gzip file."""
    try:
        with open_binary(path) as f:
            yield from enumerate(f, 1)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise UserError(f"{path}: cannot read ({exc})") from None


def _decode(raw: bytes, lineno: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadRow("invalid UTF-8", f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    return text[1:] if lineno == 1 and text.startswith("\ufeff") else text  # a byte-order mark


def _text_lines(path: Path, problems: _Problems) -> Iterator[tuple[int, str]]:
    """(line number, text) of the lines that decode; the others are reported as bad rows."""
    for lineno, raw in _raw_lines(path):
        try:
            yield lineno, _decode(raw, lineno)
        except _BadRow as bad:
            problems.bad(lineno, bad.reason, bad.message)


def _tsv_rows(path: Path, problems: _Problems) -> Iterator[tuple[int, list[str]]]:
    for lineno, text in _text_lines(path, problems):
        text = text.rstrip("\r\n")
        if text.strip():  # blank lines are not rows
            yield lineno, text.split("\t")


def _csv_rows(path: Path, problems: _Problems) -> Iterator[tuple[int, list[str]]]:
    pending: list[tuple[int, str]] = []  # (line number, text) of the lines of the record being read

    def lines() -> Iterator[str]:
        for lineno, text in _text_lines(path, problems):
            pending.append((lineno, text))
            yield text

    reader = csv.reader(lines(), dialect="excel")  # it reads no further than the end of a record
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.bad(pending[0][0] if pending else 1, "malformed CSV", f"malformed CSV ({exc})")
            pending.clear()
            continue
        first, last = pending[0][0], pending[-1][0]  # a quoted field may span lines
        odd_quotes = first != last and sum(text.count('"') for _, text in pending) % 2
        pending.clear()
        if odd_quotes:  # the csv module quietly takes an unclosed quote to the end of the file
            problems.bad(first, "malformed CSV", f"malformed CSV (a quote opened on this line is never closed; it runs to line {last})")
        elif any(cell.strip() for cell in row):
            yield first, row


def _jsonl_objects(path: Path, problems: _Problems) -> Iterator[tuple[int, dict]]:
    for lineno, raw in _raw_lines(path):
        try:
            text = _decode(raw, lineno)
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _BadRow("invalid JSON", f"invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise _BadRow("invalid JSON", f"expected a JSON object, found {type(obj).__name__}")
        except _BadRow as bad:
            problems.bad(lineno, bad.reason, bad.message)
            continue
        yield lineno, obj


def _parquet_objects(path: Path, problems: _Problems) -> Iterator[tuple[int, dict]]:
    """(row number, record) of a parquet file (pyarrow, which `datasets` brings)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{path}: reading parquet needs pyarrow (pip install pyarrow, or datasets)") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow's own errors: not a parquet file, truncated
        raise UserError(f"{path}: cannot read as parquet ({str(exc).splitlines()[0]})") from None
    for batch in table.to_batches():
        for row in batch.to_pylist():
            problems.row += 1
            yield problems.row, row


def _datasets_objects(path: Path, problems: _Problems) -> Iterator[tuple[int, dict]]:
    """(row number, record) of a `datasets` directory (``Dataset.save_to_disk``; a DatasetDict's
    directory needs its split named: ``DIR/train``)."""
    if (path / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in path.iterdir() if p.is_dir())
        raise UserError(f"{path}: a DatasetDict: name one split's directory ({', '.join(splits)})")
    if not (path / "state.json").is_file():
        raise UserError(f"{path}: is a directory, expected a data file or a `datasets` save_to_disk directory "
                        "(no state.json)")
    try:
        from datasets import disable_progress_bars, load_from_disk

        disable_progress_bars()  # a progress bar on stderr for a local read: noise before our one-line errors
    except ImportError:
        raise UserError(f"{path}: reading a saved dataset needs the datasets library (pip install datasets)") from None
    try:
        ds = load_from_disk(str(path))
    except Exception as exc:
        raise UserError(f"{path}: cannot load the saved dataset ({str(exc).splitlines()[0]})") from None
    for row in ds:
        problems.row += 1
        yield problems.row, dict(row)


def _objects(path: Path, fmt: str, problems: _Problems) -> Iterator[tuple[int, dict]]:
    if fmt == "parquet":
        return _parquet_objects(path, problems)
    if fmt == "datasets":
        return _datasets_objects(path, problems)
    return _jsonl_objects(path, problems)


def read_records(path: str | os.PathLike, *, format: str = "auto", skip_bad_rows: bool = False
                 ) -> tuple[list[tuple[int, dict]], ReadReport]:
    """Every row of a JSONL, parquet or `datasets` file as ``(line, {field: value})`` (a TSV/CSV
    with a header row too, its cells as strings), and the ReadReport (rows = records read)."""
    path = Path(path)
    fmt = _format_of(path, format)
    if fmt != "datasets":
        check_readable(path, "a data file")
    report = ReadReport(path=str(path), format=fmt)
    problems = _Problems(report, skip_bad_rows)
    if fmt in RECORD_FORMATS:
        records = list(_objects(path, fmt, problems))
    else:
        rows = list((_tsv_rows if fmt == "tsv" else _csv_rows)(path, problems))
        if not rows:
            raise UserError(f"{path}: no rows")
        names = [c.strip() for c in rows[0][1]]
        report.header = names
        records = []
        for lineno, cells in rows[1:]:
            if len(cells) != len(names):
                problems.bad(lineno, "wrong column count", f"expected {len(names)} columns, found {len(cells)}")
                continue
            records.append((lineno, dict(zip(names, cells))))
    report.rows = len(records)
    if not records:
        raise UserError(f"{path}: no rows")
    return records, report


# ----------------------------------------------------------------------------- columns and cells
def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def _as_index(column: Column) -> int | None:
    """A column given by index (an int, or a string of digits as the command line passes it)."""
    if isinstance(column, bool):
        return None
    if isinstance(column, int):
        return column
    if isinstance(column, str) and column.lstrip("-").isdigit() and column.strip() == column:
        return int(column)
    return None


def _resolve(path: Path, column: Column, role: str, header: list[str] | None, width: int) -> int:
    if isinstance(column, str) and header is not None and column in header:
        return header.index(column)
    index = _as_index(column)
    if index is not None:
        if not -width <= index < width:
            raise UserError(f"{path}: {role} column {index} is out of range: the rows have {width} columns")
        return index % width
    if not isinstance(column, str):
        raise UserError(f"{path}: {role} column must be a name or a 0-based index, got {column!r}")
    if header is None:
        raise UserError(f"{path}: {role} column '{column}' is a name but the file has no header row; "
                        "give a 0-based column index")
    raise UserError(f"{path}: no column '{column}' in the header (columns: {', '.join(header)})")


def _detect_header(rows: list[tuple[int, list[str]]], columns: list[Column], label_column: Column | None,
                   task: str) -> bool:
    """header="auto": a column given by name means a header row. With indices only, the first row
    is a header when its label cell cannot be a label: not a number (regression), or neither a
    number nor a label found in any other row (classification). Without a label column: no header."""
    if any(_as_index(c) is None for c in columns if c is not None):
        return True
    if label_column is None or not rows:
        return False
    index = _as_index(label_column)
    first = rows[0][1]
    if not -len(first) <= index < len(first):
        return False
    cell = first[index].strip()
    if is_number(cell):
        return False
    if task == "regression":
        return True
    return not any(-len(r) <= index < len(r) and r[index].strip() == cell for _, r in rows[1:])


def _label(raw: Any, task: str, name: str) -> str | float:
    """A cell's label: the stripped string (classification) or a finite float (regression)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise _BadRow("empty label", f"empty label in column {name}")
    if task == "regression":
        if isinstance(raw, bool):
            raise _BadRow("bad label", f"regression label {json.dumps(raw)} is not a number")
        try:
            value = float(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            shown = raw.strip() if isinstance(raw, str) else json.dumps(raw)
            raise _BadRow("bad label", f"regression label '{shown}' is not a finite number")
        return value
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, (bool, int, float)):
        return json.dumps(raw)  # true/false, 1, 0.5 as written in the file
    raise _BadRow("bad label", f"label in column {name} is a {type(raw).__name__}, expected a string or number")


def _text(raw: Any, name: str) -> str:
    if raw is None:
        raise _BadRow("empty text", f"empty text in column {name}")
    if not isinstance(raw, str):
        raise _BadRow("bad text", f"text in column {name} is a {type(raw).__name__}, expected a string")
    if not raw.strip():
        raise _BadRow("empty text", f"empty text in column {name}")
    return raw


def _format_of(path: Path, fmt: str) -> str:
    if fmt != "auto":
        if fmt not in FORMATS:
            raise UserError(f"format must be auto, {', '.join(FORMATS)}; got {fmt!r}")
        return fmt
    if path.is_dir():  # a directory: a `datasets` save_to_disk
        return "datasets"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    found = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if found is None:
        raise UserError(f"{path}: cannot tell the format from the file name; say tsv, csv, jsonl or parquet")
    return found


# ----------------------------------------------------------------------------- read_examples
def read_examples(path: str | os.PathLike, *, text_column: Column, text_pair_column: Column | None = None,
                  label_column: Column | None = None, format: str = "auto", header: bool | str = "auto",
                  skip_bad_rows: bool = False, task: str = "classification") -> tuple[list[Example], ReadReport]:
    """Read labelled (or, without ``label_column``, unlabelled) examples from a TSV, CSV or JSONL file.

    ``format="auto"`` goes by the extension (.tsv/.txt, .csv, .jsonl/.ndjson/.json; .gz allowed).
    ``header="auto"``: see ``_detect_header``; JSONL fields are always named.
    A malformed row (wrong column count, empty text or label, a regression label that is not a
    number, invalid JSON, invalid UTF-8) raises ``UserError("path:line: ...")``; with
    ``skip_bad_rows`` it is skipped and counted in the report instead. Blank lines are ignored.
    """
    path = Path(path)
    if task not in TASKS:
        raise UserError(f"task must be classification or regression, got {task!r}")
    if header not in ("auto", True, False):
        raise UserError(f"header must be auto, true or false, got {header!r}")
    if text_column is None:
        raise UserError("no text column given")
    fmt = _format_of(path, format)
    if fmt != "datasets":
        check_readable(path, "a data file")
    report = ReadReport(path=str(path), format=fmt)
    problems = _Problems(report, skip_bad_rows)
    if fmt in RECORD_FORMATS:
        examples = _read_jsonl(path, text_column, text_pair_column, label_column, task, problems,
                               _objects(path, fmt, problems))
    else:
        rows = list((_tsv_rows if fmt == "tsv" else _csv_rows)(path, problems))
        examples = _read_table(path, rows, text_column, text_pair_column, label_column, header, task, problems)
    report.rows = len(examples)
    if not examples:
        extra = f" ({report.num_skipped} bad rows skipped; first: {report.first_skipped[0]})" if report.skipped else ""
        raise UserError(f"{path}: no examples{extra}")
    return examples, report


def _read_table(path: Path, rows: list[tuple[int, list[str]]], text_column: Column,
                text_pair_column: Column | None, label_column: Column | None, header: bool | str,
                task: str, problems: _Problems) -> list[Example]:
    columns = [text_column, text_pair_column, label_column]
    if header == "auto":
        header = _detect_header(rows, columns, label_column, task)
    names: list[str] | None = None
    if header and rows:
        names = [name.strip() for name in rows[0][1]]
        problems.report.header = names
        rows = rows[1:]
    if names is not None:
        width = len(names)
    elif rows:
        width = Counter(len(r) for _, r in rows).most_common(1)[0][0]  # the usual row, not a bad first one
    else:
        return []
    text_i = _resolve(path, text_column, "text", names, width)
    pair_i = None if text_pair_column is None else _resolve(path, text_pair_column, "text pair", names, width)
    label_i = None if label_column is None else _resolve(path, label_column, "label", names, width)

    def shown(i: int) -> str:
        return f"'{names[i]}'" if names is not None else str(i)

    spath = str(path)
    examples = []
    for lineno, cells in rows:
        try:
            if len(cells) != width:
                raise _BadRow("wrong column count", f"expected {width} columns, found {len(cells)}")
            text = _text(cells[text_i], shown(text_i))
            pair = None if pair_i is None else _text(cells[pair_i], shown(pair_i))
            label = None if label_i is None else _label(cells[label_i], task, shown(label_i))
        except _BadRow as bad:
            problems.bad(lineno, bad.reason, bad.message)
            continue
        examples.append(Example(text, pair, label, lineno, spath))
    return examples


def _read_jsonl(path: Path, text_column: Column, text_pair_column: Column | None, label_column: Column | None,
                task: str, problems: _Problems, objects=None) -> list[Example]:
    """JSONL's rows (or ``objects``: parquet's, a saved dataset's records) as Examples."""
    for role, column in (("text", text_column), ("text pair", text_pair_column), ("label", label_column)):
        if column is not None and not isinstance(column, str):
            raise UserError(f"{path}: JSONL fields are named: give the {role} field's name, not {column!r}")
    spath = str(path)
    examples = []
    for lineno, obj in (objects if objects is not None else _jsonl_objects(path, problems)):
        try:
            for column in (text_column, text_pair_column, label_column):
                if column is not None and column not in obj:
                    raise _BadRow("missing field", f"no field '{column}'")
            text = _text(obj[text_column], f"'{text_column}'")
            pair = None if text_pair_column is None else _text(obj[text_pair_column], f"'{text_pair_column}'")
            label = None if label_column is None else _label(obj[label_column], task, f"'{label_column}'")
        except _BadRow as bad:
            problems.bad(lineno, bad.reason, bad.message)
            continue
        examples.append(Example(text, pair, label, lineno, spath))
    return examples

SETTINGS_KEY = "berts_finetune"  # config.json key of directories written before BertConfig.finetune_data


def check_max_length(max_length: int | None, max_positions: int) -> int:
    """data.max_length, or its default: 128, or the model's positions if fewer."""
    if max_length is None:
        return min(128, max_positions)
    if max_length > max_positions:
        raise UserError(f"data.max_length {max_length} is more than the model's max_position_embeddings "
                        f"{max_positions}")
    return max_length


def read_table(path, d, *, labels: bool = True, task: str | None = None):
    """read_examples with a FinetuneData section's column settings: (examples, report)."""
    return read_examples(
        path, text_column=d.text_column, text_pair_column=d.pair_column,
        label_column=d.label_column if labels else None, format=d.format, header=d.header,
        skip_bad_rows=d.skip_bad_rows, task=task or d.task)
