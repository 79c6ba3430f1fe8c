"""Users' data files: CSV, TSV, JSONL and Parquet, read with clear errors and written atomically.

A file's format comes from its extension (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``,
``.parquet``/``.pq``), optionally compressed (``.gz``, ``.bz2``). Writing keeps the format of
the input, via a temporary file and a rename, so a failure never leaves half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

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


def data_format(path: str | os.PathLike[str]) -> Literal["csv", "tsv", "jsonl", "parquet"]:
    """The format of ``path`` from its extension, or an InputError listing the supported ones."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    fmt = _EXTENSIONS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise InputError(f"{path}: unsupported file type; use .csv, .tsv, .jsonl or .parquet "
                         "(optionally .gz/.bz2 compressed).")
    return fmt  # type: ignore[return-value]


def read_data(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a user's data file; malformed content raises InputError naming the file and row."""
    path = Path(path)
    fmt = data_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "jsonl":
            frame = _read_jsonl(path)
        else:
            frame = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", encoding="utf-8",
                                keep_default_na=False, na_values=[""], dtype_backend="numpy_nullable")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({_byte_position(path, err)}). Re-save the file "
                         "as UTF-8.") from err
    except pd.errors.ParserError as err:
        raise InputError(f"{path}: malformed {fmt.upper()} ({err})") from err
    except pd.errors.EmptyDataError as err:
        raise InputError(f"{path}: the file is empty") from err
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read as {fmt} ({err})") from err
    if len(frame) == 0:
        raise InputError(f"{path}: the file has no rows")
    return frame


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


def _open_text(path: Path):  # noqa: ANN202 - a text file object
    import bz2
    import gzip
    import lzma

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix.lower(), open)
    return opener(path, "rt", encoding="utf-8")


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path} line {lineno}: invalid JSON ({err.msg}); the line may be "
                                 "truncated.") from err
            if not isinstance(obj, dict):
                raise InputError(f"{path} line {lineno}: expected a JSON object, got "
                                 f"{type(obj).__name__}.")
            records.append(obj)
    return pd.DataFrame.from_records(records)


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
        ids = np.asarray([str(v) for v in values])
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][0]
        row = int(np.flatnonzero(ids == dup)[1])
        raise InputError(f"{path} row {row}: id {fmt_id(dup)} appears more than once in column {id_column!r}.")
    return ids
