"""Epoch shards: one Parquet file per committed epoch (and per rank), written and read here.

Columns (docs/contract.md §6): ``id`` (int64 or string), ``label`` (int32), ``gold_prob``,
``margin``, ``loss`` (float32), ``pred``, ``runner_up`` (int32) and, when K is small enough, the
full logits. Schema 2 stores them as K flat float32 columns ``logit_0`` … ``logit_{K-1}``
(decoded ~3x faster than a nested column, and still plain columns for pandas, polars, DuckDB
or Spark); schema 1 stored one ``logits`` column (fixed-size list of K float32) and is still
read. Either way a reader returns them under the key ``logits`` as an (n, K) float32 array.

Rows are sorted by id and cut into row groups of :data:`ROW_GROUP_ROWS` rows, so that a reader
can fetch the same row range from every epoch without reading whole shards
(:class:`ShardReader`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._validation import fmt_id
from .._version import __version__
from ..errors import InputError, SchemaError
from ..runmeta import SCHEMA_VERSION
from .files import atomic_write

SHARD_DIR = "epochs"
#: Full logits are stored while K is at most this (N*E*K floats); beyond, derived columns only.
DEFAULT_MAX_LOGIT_CLASSES = 64
REQUIRED_COLUMNS = ("id", "label", "gold_prob", "pred", "runner_up", "margin", "loss")
#: Rows per Parquet row group. Fixed so that row ranges line up across epochs: the streaming
#: engine reads one row group of every epoch at a time (2**17 rows x K=10 logits ~ 5 MB).
ROW_GROUP_ROWS = 1 << 17
#: Dictionary encoding gains nothing on unique ids and float columns and costs 2x write time.
_WRITE_OPTIONS: dict[str, Any] = {"use_dictionary": False}
#: zstd, except for the logit columns: their float32 noise barely compresses (zstd saves ~8%
#: over snappy) and snappy decodes them ~3x faster, the largest cost of reading a run.
_COMPRESSION, _LOGIT_COMPRESSION = "zstd", "snappy"
#: The key under which readers return the full logits, and schema 1's column of them.
LOGITS = "logits"
_LOGIT_PREFIX = "logit_"


def _write_options(schema: pa.Schema) -> dict[str, Any]:
    codecs = {name: _LOGIT_COMPRESSION if name.startswith(_LOGIT_PREFIX) else _COMPRESSION
              for name in schema.names}
    return {**_WRITE_OPTIONS, "compression": codecs}


def shard_name(epoch: int, rank: int | None = None) -> str:
    suffix = "" if rank is None else f"-rank-{rank:05d}"
    return f"{SHARD_DIR}/epoch-{epoch:05d}{suffix}.parquet"


def logit_columns(n_classes: int) -> list[str]:
    """Schema 2's logit columns: ``logit_0`` … ``logit_{K-1}``."""
    return [f"{_LOGIT_PREFIX}{k}" for k in range(n_classes)]


# ------------------------------------------------------------------------ writing
def _id_array(ids: np.ndarray) -> pa.Array:
    return pa.array(ids.astype(str) if ids.dtype.kind == "U" else ids.astype(np.int64))


def _shard_table(epoch: int, ids: np.ndarray, labels: np.ndarray, derived: dict[str, np.ndarray],
                 logits: np.ndarray | None) -> pa.Table:
    columns: dict[str, pa.Array] = {
        "id": _id_array(ids),
        "label": pa.array(labels.astype(np.int32)),
        "gold_prob": pa.array(derived["gold_prob"].astype(np.float32)),
        "pred": pa.array(derived["pred"].astype(np.int32)),
        "runner_up": pa.array(derived["runner_up"].astype(np.int32)),
        "margin": pa.array(derived["margin"].astype(np.float32)),
        "loss": pa.array(derived["loss"].astype(np.float32)),
    }
    if logits is not None:
        # one contiguous row per class, handed to Arrow without a further copy
        by_class = np.ascontiguousarray(np.asarray(logits, dtype=np.float32).T)
        for name, values in zip(logit_columns(len(by_class)), by_class):
            columns[name] = pa.array(values)
    return pa.table(columns).replace_schema_metadata({
        "datacarto_schema_version": str(SCHEMA_VERSION),
        "datacarto_version": __version__,
        "epoch": str(epoch),
    })


def write_shard(path: Path, *, epoch: int, ids: np.ndarray, labels: np.ndarray,
                derived: dict[str, np.ndarray], logits: np.ndarray | None) -> None:
    """Write one epoch's rows (already sorted by id) to ``path`` atomically."""
    table = _shard_table(epoch, ids, labels, derived, logits)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS,
                                                  **_write_options(table.schema)))


ShardChunk = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], "np.ndarray | None"]


def write_shard_chunks(path: Path, *, epoch: int, chunks: Iterable[ShardChunk]) -> int:
    """Write one epoch given as consecutive ``(ids, labels, derived, logits)`` chunks, atomically.

    The chunks must already be in id order; each becomes its own row group(s), so give chunks of
    :data:`ROW_GROUP_ROWS` rows (the last may be shorter) to get the same layout as
    :func:`write_shard`. Only one chunk is in memory at a time. Returns the number of rows.
    """
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        writer: pq.ParquetWriter | None = None
        try:
            for ids, labels, derived, logits in chunks:
                table = _shard_table(epoch, ids, labels, derived, logits)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, **_write_options(table.schema))
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                rows += table.num_rows
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise InputError(f"{path}: no rows to write for epoch {epoch}.")

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
    return rows


# ------------------------------------------------------------------------ reading
def read_shard(path: Path, *, columns: list[str] | None = None, n_classes: int | None = None,
               id_type: str | None = None) -> dict[str, np.ndarray]:
    """Read one shard into numpy arrays, validating schema and values; errors name the file and row."""
    reader = ShardReader(path, n_classes=n_classes, id_type=id_type)
    try:
        return reader.read_rows(0, reader.num_rows, columns)
    finally:
        reader.close()


def _stored_logits(path: Path, schema: pa.Schema, version: int) -> tuple[str, ...]:
    """The columns that hold a shard's full logits (none when it has none), checked."""
    if version == 1:
        if LOGITS not in schema.names:
            return ()
        kind = schema.field(LOGITS).type
        if not pa.types.is_fixed_size_list(kind) or not pa.types.is_floating(kind.value_type):
            raise SchemaError(f"{path}: column 'logits' must be a fixed-size list of floats in "
                              f"schema 1; it is {kind}.")
        return (LOGITS,)
    found = [name for name in schema.names if name.startswith(_LOGIT_PREFIX)]
    if found != logit_columns(len(found)):
        raise SchemaError(f"{path}: logit columns must be logit_0 .. logit_{{K-1}} in order; "
                          f"found {', '.join(found)}.")
    not_float = [name for name in found if not pa.types.is_floating(schema.field(name).type)]
    if not_float:
        raise SchemaError(f"{path}: logit column {not_float[0]} is "
                          f"{schema.field(not_float[0]).type}, not float32.")
    return tuple(found)


class ShardReader:
    """One shard opened for reading row ranges; its schema is checked once, on opening.

    ``read_rows(start, stop, columns)`` reads only the row groups that overlap the range and
    checks the values it returns (labels in range, finite probabilities); errors name the file
    and the row number in the file. Columns are named as a reader returns them (``logits`` for
    the full logits of either schema version, :attr:`columns`).
    """

    def __init__(self, path: Path, *, n_classes: int | None = None, id_type: str | None = None) -> None:
        self.path = Path(path)
        self.n_classes = n_classes
        self.id_type = id_type
        if not self.path.is_file():
            raise SchemaError(f"{self.path}: epoch shard listed in run.json is missing")
        try:
            # memory-mapped: the decoder reads the pages in place instead of copying them first
            self._file = pq.ParquetFile(self.path, memory_map=True)
            schema = self._file.schema_arrow
            counts = [self._file.metadata.row_group(i).num_rows
                      for i in range(self._file.metadata.num_row_groups)]
        except (pa.ArrowException, OSError) as err:
            raise SchemaError(f"{self.path}: not a readable Parquet file ({err})") from err
        meta = schema.metadata or {}
        version = meta.get(b"datacarto_schema_version", b"0").decode(errors="replace")
        if not version.isdigit() or int(version) > SCHEMA_VERSION or int(version) < 1:
            raise SchemaError(f"{self.path}: schema version {version!r} is not one this datacarto "
                              f"(schema {SCHEMA_VERSION}) reads.")
        self.schema_version = int(version)
        missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
        if missing:
            raise SchemaError(f"{self.path}: expected columns {', '.join(REQUIRED_COLUMNS)}; "
                              f"missing {', '.join(missing)}.")
        #: The Parquet columns that hold the full logits: ``("logits",)`` in schema 1,
        #: ``logit_0`` … in schema 2, empty when the shard stores none.
        self.logit_columns = _stored_logits(self.path, schema, self.schema_version)
        #: The columns :meth:`read_rows` returns by default (``logits`` stands for the logit columns).
        self.columns: list[str] = [n for n in schema.names if n not in self.logit_columns]
        if self.logit_columns:
            self.columns.append(LOGITS)
        self._starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self.num_rows = int(self._starts[-1])
        self._cache: tuple[tuple[tuple[int, ...], tuple[str, ...]], pa.Table] | None = None

    @property
    def has_logits(self) -> bool:
        return bool(self.logit_columns)

    @property
    def row_group_rows(self) -> int:
        """Rows in the first row group (the file's row-group size)."""
        return int(self._starts[1]) if len(self._starts) > 1 else 0

    def close(self) -> None:
        self._cache = None
        self._file.close()

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_rows(self, start: int, stop: int, columns: list[str] | None = None, *,
                  row_ids: np.ndarray | None = None, use_threads: bool = True,
                  logits_into: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` of the file as numpy arrays (``columns``: default all).

        ``row_ids`` (the ids of those rows, known from elsewhere) name the example in error
        messages when the id column is not read. ``use_threads=False`` decodes the columns one
        after the other (for callers that already read several ranges in parallel).
        ``logits_into`` (K, stop - start), any strides: when ``logits`` is read, its values are
        written there (e.g. into one epoch of a (K, n, E) array) and ``logits`` is its
        transpose, so that a caller stacking epochs copies them once.
        """
        wanted = list(columns) if columns is not None else list(self.columns)
        if LOGITS in wanted and not self.logit_columns:
            raise SchemaError(f"{self.path}: this run stored no full logits (K too large or disabled).")
        stored = [c for name in wanted
                  for c in (self.logit_columns if name == LOGITS else (name,))]
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        last = int(np.searchsorted(self._starts, stop, side="left"))
        groups = list(range(max(first, 0), min(last, len(self._starts) - 1)))
        key = (tuple(groups), tuple(stored))
        try:
            if stop <= start:
                table = self._file.schema_arrow.empty_table().select(stored)
            elif self._cache is not None and self._cache[0] == key:
                table = self._cache[1]
            elif len(groups) == len(self._starts) - 1:
                table = self._file.read(columns=stored, use_threads=use_threads)
            else:
                table = self._file.read_row_groups(groups, columns=stored, use_threads=use_threads)
            # keep the decoded groups when the next range is likely to start inside them
            ends_inside = bool(groups) and stop < int(self._starts[groups[-1] + 1])
            self._cache = (key, table) if ends_inside else None
            offset = start - int(self._starts[groups[0]]) if groups else 0
            if offset or table.num_rows != stop - start:
                table = table.slice(offset, max(stop - start, 0))
        except (pa.ArrowException, OSError) as err:
            raise SchemaError(f"{self.path}: cannot read columns {wanted} ({err})") from err
        out = {name: (self._logits(table, logits_into) if name == LOGITS
                      else _column_to_numpy(table, name))
               for name in wanted}
        self._check_values(out, start, row_ids)
        return out

    def _logits(self, table: pa.Table, into: np.ndarray | None = None) -> np.ndarray:
        """The full logits of ``table`` as (n, K) float32, from either schema's columns.

        Without ``into``, schema 1 gives a C-ordered array and schema 2 the transpose of a
        (K, n) one (one contiguous row per decoded column).
        """
        if self.logit_columns == (LOGITS,):
            col = table.column(LOGITS).combine_chunks()
            self._check_width(col.type.list_size)
            # flatten() honours the slice offset (.values would not)
            flat = col.flatten().to_numpy(zero_copy_only=False)
            rows = flat.astype(np.float32, copy=False).reshape(-1, col.type.list_size)
            if into is None:
                return rows
            into[...] = rows.T
            return into.T
        self._check_width(len(self.logit_columns))
        if into is None:
            into = np.empty((len(self.logit_columns), table.num_rows), dtype=np.float32)
        for row, name in zip(into, self.logit_columns):
            at = 0
            for chunk in table.column(name).chunks:
                row[at:at + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
                at += len(chunk)
        return into.T

    def _check_width(self, width: int) -> None:
        if self.n_classes is not None and width != self.n_classes:
            raise SchemaError(f"{self.path}: logits have {width} values per row but the run has "
                              f"{self.n_classes} classes.")

    def _check_values(self, out: dict[str, np.ndarray], row0: int,
                      row_ids: np.ndarray | None = None) -> None:
        path = self.path
        named = out if "id" in out or row_ids is None else {**out, "id": row_ids}
        if "id" in out and self.id_type is not None:
            kind = "str" if out["id"].dtype.kind == "U" else "int"
            if kind != self.id_type:
                raise SchemaError(f"{path}: ids are {kind} but run.json says {self.id_type}.")
        if "label" in out and self.n_classes is not None:
            bad = (out["label"] < 0) | (out["label"] >= self.n_classes)
            if bad.any():
                i = int(np.argmax(bad))
                raise SchemaError(f"{path} row {row0 + i}{_row_id(named, i)}: label {out['label'][i]} is "
                                  f"outside 0..{self.n_classes - 1}.")
        for name in ("gold_prob", "margin", "loss"):
            if name in out and not np.all(np.isfinite(out[name])):
                i = int(np.argmax(~np.isfinite(out[name])))
                raise SchemaError(f"{path} row {row0 + i}{_row_id(named, i)}: {name} is not finite.")


def _column_to_numpy(table: pa.Table, name: str) -> np.ndarray:
    arr = table.column(name).to_numpy(zero_copy_only=False)
    if name == "id":
        return arr.astype(str) if arr.dtype.kind == "O" else arr.astype(np.int64, copy=False)
    return arr


def _row_id(cols: dict[str, np.ndarray], i: int) -> str:
    return f" (id={fmt_id(cols['id'][i])})" if "id" in cols else ""
