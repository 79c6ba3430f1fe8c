"""Users' data files: CSV, TSV, JSONL and Parquet, read with clear errors and written atomically.

A file's format comes from its extension (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``,
``.parquet``/``.pq``), optionally compressed (``.gz``, ``.bz2``). Writing keeps the format of
the input, via a temporary file and a rename, so a failure never leaves half a file.

Two ways to read:

* :func:`read_data` — typed columns, for training (``datacarto run``); only the id column is
  read as text, so ids ``00001`` stay ``00001`` and ``1`` and ``01`` are different ids.
* :func:`read_table` — a :class:`DataTable` for the commands that copy a user's rows
  (``select --data``, ``review --export``) or show them (``flag``, ``report``): every CSV/TSV
  cell is read as the text in the file, JSONL values as JSON gives them, Parquet as its own
  types, and the raw records are kept. :func:`write_rows` writes a subset of those rows with
  some cells changed: every record that is not changed is copied byte for byte (CSV/TSV header
  and rows, quoting and line endings included; JSONL lines), a changed cell is spliced into
  its record without touching the record's other cells, and Parquet keeps its schema.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._validation import fmt_id
from .errors import InputError, SchemaError
from .store import atomic_write

FORMATS = ("csv", "tsv", "jsonl", "parquet")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".parquet": "parquet", ".pq": "parquet"}
_PANDAS_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
_COMPRESSIONS = tuple(_PANDAS_COMPRESSION)


def data_format(path: str | os.PathLike[str]) -> Literal["csv", "tsv", "jsonl", "parquet", "hf"]:
    """The format of ``path`` from its extension, or an InputError listing the supported ones;
    ``"hf"`` for a Hugging Face ``save_to_disk`` directory
    (:mod:`datacarto.integrations.hf_datasets`)."""
    from .integrations.hf_datasets import dataset_kind

    if dataset_kind(path) is not None:
        return "hf"
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    fmt = _EXTENSIONS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise InputError(f"{path}: unsupported file type; use .csv, .tsv, .jsonl or .parquet "
                         "(optionally .gz/.bz2 compressed).")
    return fmt  # type: ignore[return-value]


def copy_format(out: str | os.PathLike[str], source_fmt: str) -> str:
    """The format of a copy written to ``out`` of a ``source_fmt`` input: a name without a data
    extension is a dataset directory when the input is one, else :func:`data_format`."""
    suffixes = [s.lower() for s in Path(out).suffixes]
    if source_fmt == "hf" and not (set(suffixes) & (set(_EXTENSIONS) | set(_COMPRESSIONS))):
        return "hf"
    return data_format(out)


def _check_readable(path: Path) -> None:
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a data file; give the .csv/.tsv/.jsonl/"
                         ".parquet file itself.")
    if not path.is_file():
        raise InputError(f"{path}: no such file")


def read_data(path: str | os.PathLike[str], *,
              text_columns: Iterable[str | None] = ()) -> pd.DataFrame:
    """Read a user's data file; malformed content raises InputError naming the file and row.

    ``text_columns`` (e.g. the id column) are read as the text in a CSV/TSV file, not as numbers.
    A header that names a column twice is an error (pandas would rename it ``label.1``).
    """
    path = Path(path)
    fmt = data_format(path)
    if fmt == "hf":
        from .integrations.hf_datasets import read_dataset

        return read_dataset(path)[0]
    _check_readable(path)
    as_text = [c for c in text_columns if c is not None]
    with _read_errors(path, fmt):
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "jsonl":
            frame = _read_jsonl(path)
        else:
            _check_delimited(path, fmt)  # duplicate column names, malformed quoting
            frame = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", encoding="utf-8",
                                keep_default_na=False, na_values=[""], dtype_backend="numpy_nullable",
                                dtype={c: "string" for c in as_text} or None)
    _check_columns(frame, path)
    if len(frame) == 0:
        raise InputError(f"{path}: the file has no rows")
    return frame


class _read_errors:  # noqa: N801 - used as a context manager
    """Turn every way a file can fail to parse into one InputError naming the file."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: Any) -> bool:
        if err is None or isinstance(err, InputError):
            return False
        path, fmt = self.path, self.fmt
        if isinstance(err, UnicodeDecodeError):
            raise InputError(f"{path}: not UTF-8 text ({_byte_position(path, err)}). Re-save the "
                             "file as UTF-8.") from err
        if isinstance(err, pd.errors.EmptyDataError):
            raise InputError(f"{path}: the file is empty") from err
        if isinstance(err, (EOFError, zlib.error)) or "compressed" in str(err).lower() \
                or "end-of-stream" in str(err):
            raise InputError(f"{path}: the compressed file is truncated or corrupt "
                             f"({_one_line(err)}).") from err
        if isinstance(err, (pd.errors.ParserError, csv.Error)):
            raise InputError(f"{path}: malformed {fmt.upper()} ({_one_line(err)})") from err
        if isinstance(err, (OSError, ValueError, TypeError, KeyError, IndexError, OverflowError)):
            raise InputError(f"{path}: cannot read as {fmt} ({_one_line(err)})") from err
        try:
            import pyarrow as pa

            if isinstance(err, pa.ArrowException):
                raise InputError(f"{path}: cannot read as {fmt} ({_one_line(err)})") from err
        except ImportError:  # pragma: no cover - pyarrow is a core dependency
            pass
        return False


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _check_names(names: list[Any], path: Path) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        key = str(name)
        if key in seen:
            raise SchemaError(f"{path}: column {key!r} appears more than once in the header "
                              f"(column {i + 1}); rename one of them.")
        seen.add(key)


def _check_columns(frame: pd.DataFrame, path: Path) -> None:
    _check_names(list(frame.columns), path)


def _byte_position(path: Path, err: UnicodeDecodeError) -> str:
    # pandas decodes in chunks, so err.start is relative to a chunk: find the byte again
    try:
        raw = path.read_bytes()
        raw.decode("utf-8")
    except UnicodeDecodeError as whole:
        line = raw[: whole.start].count(b"\n") + 1
        return f"line {line}: byte {raw[whole.start:whole.start + 1]!r}"
    except OSError:
        pass
    return str(err)


def _open_text(path: Path, newline: str | None = None):  # noqa: ANN202 - a text file object
    import bz2
    import gzip
    import lzma

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix.lower(), open)
    return opener(path, "rt", encoding="utf-8", newline=newline)


def _jsonl_object(line: str, path: Path, lineno: int) -> dict[str, Any]:
    """One JSONL line as a dict, or an error naming the file, line and what is wrong."""
    try:
        obj = json.loads(line, object_pairs_hook=_unique_keys)
    except _DuplicateKey as err:
        raise SchemaError(f"{path} line {lineno}: key {err.args[0]!r} appears more than once "
                          "in the object; rename one of them.") from None
    except RecursionError:
        raise InputError(f"{path} line {lineno}: JSON nested too deeply.") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path} line {lineno}: invalid JSON ({err.msg}); the line may be "
                         "truncated.") from err
    if not isinstance(obj, dict):
        raise InputError(f"{path} line {lineno}: expected a JSON object, got "
                         f"{type(obj).__name__}.")
    return obj


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            records.append(_jsonl_object(line, path, lineno))
    return pd.DataFrame.from_records(records)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def write_data(frame: pd.DataFrame, path: str | os.PathLike[str],
               fmt: str | None = None) -> None:
    """Write ``frame`` in ``fmt`` (default: from the extension) atomically."""
    path = Path(path)
    fmt = fmt or data_format(path)
    # the temporary name hides the extension, so compression is passed explicitly
    compression = _PANDAS_COMPRESSION.get(path.suffix.lower())

    def write(tmp: Path) -> None:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt == "jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False,
                          compression=compression)
        else:
            frame.to_csv(tmp, sep="\t" if fmt == "tsv" else ",", index=False,
                         compression=compression)

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)


def example_ids(frame: pd.DataFrame, id_column: str | None, *, path: str | os.PathLike[str]) -> np.ndarray:
    """The example ids of a data file: its ``id_column``, or the 0-based row number."""
    if id_column is None:
        return np.arange(len(frame), dtype=np.int64)
    if id_column not in frame.columns:
        raise SchemaError(f"{path}: no column {id_column!r}; columns are {list(frame.columns)}.")
    col = frame[id_column]
    if col.isna().any():
        row = int(np.flatnonzero(col.isna().to_numpy())[0])
        raise InputError(f"{path} row {row}: id column {id_column!r} is empty.")
    values = col.to_numpy()
    if pd.api.types.is_integer_dtype(col.dtype):
        ids = values.astype(np.int64)
    else:
        ids = _text_ids(values)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][0]
        row = int(np.flatnonzero(ids == dup)[1])
        raise InputError(f"{path} row {row}: id {fmt_id(dup)} appears more than once in column {id_column!r}.")
    return ids


_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")


def _text_ids(values: np.ndarray) -> np.ndarray:
    """Ids read as text (or JSON values): int64 when every one is an integer written the plain
    way (``12``, not ``012`` or ``+12``), else strings exactly as read, so ``1`` and ``01`` are
    two different ids and ``00001`` keeps its zeros."""
    if len(values) and all((isinstance(v, str) and _CANONICAL_INT.fullmatch(v) is not None)
                           or (isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                               and abs(int(v)) < 1 << 62)
                           for v in values):
        return np.asarray([int(v) for v in values], dtype=np.int64)
    return np.asarray([str(v) for v in values])


# ----------------------------------------------------------------- byte-preserving copies
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass
class DataTable:
    """A user's data file read for copying: the frame plus what is needed to write rows back as
    they were. ``frame`` holds CSV/TSV cells as the text in the file (empty cells are missing),
    JSONL values as JSON gives them, Parquet in its own types; row i of ``frame`` is ``records[i]``
    (the raw text of the record, CSV/TSV/JSONL) and row i of ``arrow`` (Parquet)."""

    path: Path
    fmt: str
    frame: pd.DataFrame
    header: str | None = None  # CSV/TSV: the header record as in the file
    records: list[str] | None = None  # CSV/TSV/JSONL: each row's text, blank lines after it kept
    preamble: str = ""  # blank lines before the first record
    arrow: Any = None  # Parquet: the pyarrow Table; a saved dataset: the datasets.Dataset


def read_table(path: str | os.PathLike[str]) -> DataTable:
    """Read a data file for copying and showing its rows (see :class:`DataTable`)."""
    path = Path(path)
    fmt = data_format(path)
    if fmt == "hf":
        from .integrations.hf_datasets import read_dataset

        frame, dataset = read_dataset(path)
        return DataTable(path, fmt, frame, arrow=dataset)
    _check_readable(path)
    with _read_errors(path, fmt):
        if fmt == "parquet":
            import pyarrow.parquet as pq

            arrow = pq.read_table(path)
            _check_names(list(arrow.column_names), path)
            frame = pd.read_parquet(path, dtype_backend="numpy_nullable")
            table = DataTable(path, fmt, frame, arrow=arrow)
        elif fmt == "jsonl":
            table = _read_jsonl_table(path)
        else:
            table = _read_delimited_table(path, fmt)
    if len(table.frame) == 0:
        raise InputError(f"{path}: the file has no rows")
    return table


def _check_delimited(path: Path, fmt: str) -> None:
    """Python's strict csv reader over the file: a header naming a column twice, or quoting that
    pandas would silently mend by shifting cells, is an error naming the line."""
    delimiter = "\t" if fmt == "tsv" else ","
    with _open_text(path, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        try:
            for fields in reader:
                if fields and not (len(fields) == 1 and not fields[0].strip()):
                    fields[0] = fields[0].lstrip("\ufeff")
                    _check_names(fields, path)
                    break
            for _ in reader:
                pass
        except csv.Error as err:
            raise InputError(f"{path}: malformed {fmt.upper()} (line {reader.line_num}: {err}).") from err


def _scan_delimited(path: Path, fmt: str) -> tuple[str | None, list[str], list[str], str]:
    """Split a CSV/TSV file into raw records with Python's strict csv reader: (header record,
    column names, data records, blank lines before the header). Malformed quoting is an
    InputError naming the line (pandas would silently shift the cells)."""
    delimiter = "\t" if fmt == "tsv" else ","
    with _open_text(path, newline="") as fh:
        text = fh.read()
    lines = _LINE.findall(text)
    position = 0

    def feed() -> Iterable[str]:
        nonlocal position
        while position < len(lines):
            position += 1
            yield lines[position - 1]

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    header: str | None = None
    names: list[str] = []
    preamble = ""
    records: list[str] = []
    start = 0
    try:
        for fields in reader:
            raw = "".join(lines[start:position])
            start = position
            blank = len(fields) <= 1 and "".join(fields).strip() == "" and not raw.lstrip().startswith('"')
            if header is None:
                if blank:
                    preamble += raw
                    continue
                header, names = raw, list(fields)
                names[0] = names[0].lstrip("\ufeff")
                _check_names(names, path)
                continue
            if blank:
                if records:
                    records[-1] += raw
                else:
                    header += raw
                continue
            if len(fields) > len(names):
                raise InputError(f"{path} row {len(records)}: {len(fields)} fields but the header has "
                                 f"{len(names)} (line {reader.line_num}).")
            records.append(raw)
    except csv.Error as err:
        raise InputError(f"{path}: malformed {fmt.upper()} (line {reader.line_num}: {err}).") from err
    return header, names, records, preamble


def _read_delimited_table(path: Path, fmt: str) -> DataTable:
    delimiter = "\t" if fmt == "tsv" else ","
    header, names, records, preamble = _scan_delimited(path, fmt)
    if header is None:
        raise InputError(f"{path}: the file is empty")
    # the values come from the same parser as read_data's (so row numbers agree), as text
    frame = pd.read_csv(path, sep=delimiter, encoding="utf-8", dtype=str, keep_default_na=False,
                        na_values=[""])
    if len(frame) != len(records) or len(frame.columns) != len(names):
        records = None  # the two parsers disagree: copy through pandas, values still as text
    return DataTable(path, fmt, frame, header=header, records=records, preamble=preamble)


def _read_jsonl_table(path: Path) -> DataTable:
    with _open_text(path, newline="") as fh:
        text = fh.read()
    records: list[str] = []
    objects: list[dict[str, Any]] = []
    preamble = ""
    for lineno, line in enumerate(_LINE.findall(text), start=1):
        if not line.strip():
            if records:
                records[-1] += line
            else:
                preamble += line
            continue
        obj = _jsonl_object(line, path, lineno)
        records.append(line)
        objects.append(obj)
    names: list[str] = []
    seen: set[str] = set()
    for obj in objects:
        for key in obj:
            if key not in seen:
                seen.add(key)
                names.append(key)
    columns = {k: pd.Series([o.get(k) for o in objects], dtype=object) for k in names}
    frame = pd.DataFrame(columns, columns=names)
    return DataTable(path, "jsonl", frame, records=records, preamble=preamble)


def _csv_field_spans(record: str, delimiter: str) -> list[tuple[int, int]]:
    """Start and end of every field of one raw CSV record (quotes included, terminator not)."""
    end = len(record)
    for term in ("\r\n", "\n", "\r"):
        if record.endswith(term):
            end -= len(term)
            break
    spans = []
    start = 0
    while True:
        if start < end and record[start] == '"':
            j = start + 1
            while j < end:
                if record[j] == '"':
                    if j + 1 < end and record[j + 1] == '"':
                        j += 2
                        continue
                    break
                j += 1
            k = record.find(delimiter, j + 1, end)
        else:
            k = record.find(delimiter, start, end)
        k = end if k < 0 else k
        spans.append((start, k))
        if k >= end:
            return spans
        start = k + 1


def _csv_cell(value: Any, delimiter: str) -> str:
    text = "" if value is None else str(value)
    if any(c in text for c in (delimiter, '"', "\r", "\n")) or text != text.strip(" "):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_value_span(record: str, key: str) -> tuple[int, int] | None:
    """Start and end of the value of top-level ``key`` in a one-line JSON object."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    i = ws.match(record, 0).end()
    if record[i:i + 1] != "{":
        return None
    i = ws.match(record, i + 1).end()
    while i < len(record) and record[i] != "}":
        name, i = json.decoder.scanstring(record, i + 1)  # type: ignore[attr-defined]
        i = ws.match(record, i).end()
        if record[i:i + 1] != ":":
            return None
        i = ws.match(record, i + 1).end()
        _, end = decoder.raw_decode(record, i)
        if name == key:
            return i, end
        i = ws.match(record, end).end()
        if record[i:i + 1] == ",":
            i = ws.match(record, i + 1).end()
    return None


def write_rows(table: DataTable, rows: Iterable[int], out: str | os.PathLike[str], *,
               changes: Mapping[int, Mapping[str, Any]] | None = None) -> None:
    """Write ``rows`` of ``table`` (in the order given) to ``out``, with ``changes[row][column]``
    set; everything else is written as it was read (see :class:`DataTable`).

    In the file's own format (compression may differ), unchanged records are copied byte for
    byte; CSV/TSV cells in ``changes`` are text, JSONL values JSON values, Parquet values of the
    column's type. Another format (``out``'s extension) is written from ``frame``.
    """
    out = Path(out)
    rows = [int(r) for r in rows]
    changes = changes or {}
    fmt = copy_format(out, table.fmt)
    if fmt == "hf" == table.fmt:
        from .integrations import hf_datasets

        hf_datasets.check_output(out, table.path)
        hf_datasets.write_rows(table.path, rows, out, changes)
        return
    if fmt != table.fmt or (table.records is None and table.arrow is None):
        frame = table.frame.iloc[rows].copy()
        wanted = set(rows)
        for r, cells in changes.items():
            if r in wanted:
                for column, value in cells.items():
                    frame.iloc[rows.index(r), frame.columns.get_loc(column)] = value
        write_data(frame, out)
        return
    if fmt == "parquet":
        _write_parquet_rows(table, rows, out, changes)
        return
    parts: list[str] = [table.preamble]
    if table.header is not None:
        parts.append(table.header)
    assert table.records is not None
    delimiter = "\t" if fmt == "tsv" else ","
    last = len(table.records) - 1
    for i, r in enumerate(rows):
        record = table.records[r]
        if r in changes:
            record = _splice(table, r, record, changes[r], delimiter)
        if i < len(rows) - 1 and r == last and not record.endswith(("\n", "\r")):
            record += _terminator(table)  # the file's last record, no longer last
        parts.append(record)
    text = "".join(parts)
    compression = _PANDAS_COMPRESSION.get(out.suffix.lower())

    def write(tmp: Path) -> None:
        data = text.encode("utf-8")
        if compression == "gzip":
            import gzip

            data = gzip.compress(data)
        elif compression == "bz2":
            import bz2

            data = bz2.compress(data)
        elif compression == "xz":
            import lzma

            data = lzma.compress(data)
        elif compression is not None:
            raise InputError(f"{out}: cannot write {compression} compression; use .gz or .bz2.")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, write)


def _terminator(table: DataTable) -> str:
    for record in [table.header or "", *(table.records or [])]:
        for term in ("\r\n", "\n", "\r"):
            if record.endswith(term):
                return term
    return "\n"


def _splice(table: DataTable, row: int, record: str, cells: Mapping[str, Any], delimiter: str) -> str:
    if table.fmt == "jsonl":
        for column, value in cells.items():
            span = _json_value_span(record, column)
            new = json.dumps(value, ensure_ascii=False)
            if span is None:  # the key is missing in this row: re-encode the object
                obj = json.loads(record)
                obj[column] = value
                body = json.dumps(obj, ensure_ascii=False)
                record = body + record[len(record.rstrip("\r\n")):]
            else:
                record = record[:span[0]] + new + record[span[1]:]
        return record
    columns = list(table.frame.columns)
    for column, value in cells.items():
        j = columns.index(column)
        spans = _csv_field_spans(record, delimiter)
        cell = _csv_cell(value, delimiter)
        if j < len(spans):
            a, b = spans[j]
            record = record[:a] + cell + record[b:]
        else:  # a short row: pad it with empty cells up to the column
            body = record.rstrip("\r\n")
            record = body + delimiter * (j - len(spans) + 1) + cell + record[len(body):]
    return record


def _write_parquet_rows(table: DataTable, rows: list[int], out: Path,
                        changes: Mapping[int, Mapping[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = table.arrow.take(pa.array(rows, type=pa.int64()))
    by_column: dict[str, dict[int, Any]] = {}
    position = {r: i for i, r in enumerate(rows)}
    for r, cells in changes.items():
        if r in position:
            for column, value in cells.items():
                by_column.setdefault(column, {})[position[r]] = value
    for column, values in by_column.items():
        j = arrow.column_names.index(column)
        field = arrow.schema.field(j)
        current = arrow.column(j).to_pylist()
        for i, value in values.items():
            current[i] = value
        try:
            arrow = arrow.set_column(j, field, pa.array(current, type=field.type))
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise InputError(f"{out}: cannot store the new values of column {column!r} as "
                             f"{field.type} ({_one_line(err)}).") from err
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: pq.write_table(arrow, tmp))


# ------------------------------------------------------------------------- label column
#: A label column with more distinct values than this share of the rows is refused (a
#: continuous target or an id column, not classes) unless the caller allows it.
MAX_CLASS_SHARE = 0.5


def check_label_column(frame: pd.DataFrame, column: str, *, path: str | os.PathLike[str],
                       allow_many_classes: bool = False) -> None:
    """Refuse labels that cannot be classes: lists or objects (JSON), non-finite numbers, and
    more distinct values than :data:`MAX_CLASS_SHARE` of the rows (``allow_many_classes``
    overrides the last). Empty labels and a single class are left to the caller's checks."""
    if column not in frame.columns:
        return
    col = frame[column]
    values = col.to_numpy(dtype=object)
    for row, v in enumerate(values):
        if isinstance(v, (list, dict, tuple, np.ndarray)):
            kind = "an object" if isinstance(v, dict) else "a list"
            raise InputError(f"{path} row {row}: label in column {column!r} is {kind} "
                             f"({_short(v)}); a label must be one class name or number.")
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        numbers = col.astype("float64").to_numpy()
        bad = np.isinf(numbers)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{path} row {row}: label {numbers[row]} in column {column!r} is not "
                             "finite; labels must be class names or finite numbers.")
    else:
        for row, v in enumerate(values):
            if isinstance(v, float) and np.isinf(v):
                raise InputError(f"{path} row {row}: label {v} in column {column!r} is not finite; "
                                 "labels must be class names or finite numbers.")
    n = len(values)
    distinct = col.dropna().astype(str).nunique() if n else 0
    if not allow_many_classes and distinct > 2 and distinct > MAX_CLASS_SHARE * n:
        raise InputError(f"{path}: column {column!r} has {distinct} different labels in {n} rows "
                         f"(more than {MAX_CLASS_SHARE:.0%} of the rows): it looks like a "
                         "continuous target or an id, not classes. Choose the right "
                         "--label-column, or give --allow-many-classes if these are classes.")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, np.ndarray) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
