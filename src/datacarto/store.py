"""The on-disk run: ``run.json`` plus one Parquet shard per epoch (and per rank).

Layout (docs/contract.md §6)::

    RUN/run.json                              metadata, committed epochs, schema version
    RUN/epochs/epoch-00001.parquet            one shard per committed epoch
    RUN/epochs/epoch-00001-rank-00001.parquet one per rank when ranks write their own

Shard columns: ``id`` (int64 or string), ``label`` (int32), ``gold_prob``, ``margin``,
``loss`` (float32), ``pred``, ``runner_up`` (int32) and, when K is small enough,
``logits`` (fixed-size list of K float32). Rows are sorted by id and cut into row groups of
:data:`ROW_GROUP_ROWS` rows, so that a reader can fetch the same row range from every epoch
without reading whole shards (:class:`ShardReader`, used by :mod:`datacarto.engine`). Every file
is written to a temporary name and renamed, so a crash leaves the last committed epoch intact;
``run.json`` lists the committed epochs and is rewritten only after a shard is in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._version import __version__
from ._validation import fmt_id
from .errors import InputError, SchemaError
from .runmeta import FORMAT_NAME, SCHEMA_VERSION, RunMeta

RUN_FILE = "run.json"
SHARD_DIR = "epochs"
#: Full logits are stored while K is at most this (N*E*K floats); beyond, derived columns only.
DEFAULT_MAX_LOGIT_CLASSES = 64
REQUIRED_COLUMNS = ("id", "label", "gold_prob", "pred", "runner_up", "margin", "loss")
#: Rows per Parquet row group. Fixed so that row ranges line up across epochs: the streaming
#: engine reads one row group of every epoch at a time (2**17 rows x K=10 logits ~ 5 MB).
ROW_GROUP_ROWS = 1 << 17
#: Dictionary encoding gains nothing on unique ids and float columns and costs 2x write time.
_WRITE_OPTIONS: dict[str, Any] = {"compression": "zstd", "use_dictionary": False}


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then rename tmp onto ``path``; on any failure remove tmp, keep the old file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if not err.filename:  # e.g. ENOSPC from a write: say which file could not be written
            raise OSError(err.errno, f"cannot write this file: {err.strerror or err}",
                          str(path)) from err
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write text atomically and durably (fsync before the rename)."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(path, write)


def fingerprint_file(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file's bytes, recorded in run.json to tie a run to its data."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def shard_name(epoch: int, rank: int | None = None) -> str:
    suffix = "" if rank is None else f"-rank-{rank:05d}"
    return f"{SHARD_DIR}/epoch-{epoch:05d}{suffix}.parquet"


def write_run_json(run_dir: str | os.PathLike[str], meta: RunMeta) -> None:
    """Write ``RUN/run.json`` atomically (the directory is created if needed)."""
    if not isinstance(meta, RunMeta):
        raise TypeError(f"write_run_json takes a RunMeta, not {type(meta).__name__}")
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / RUN_FILE,
                      json.dumps(meta.to_json(), indent=2, sort_keys=True) + "\n")


def read_run_json(run_dir: str | os.PathLike[str]) -> RunMeta:
    """Read and validate ``RUN/run.json``; every problem is a SchemaError naming the file."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not run_dir.exists():
        raise InputError(f"{run_dir}: no such run directory")
    if not run_dir.is_dir() or not path.is_file():
        raise SchemaError(f"{run_dir}: not a datacarto run (no {RUN_FILE}). Create one with "
                          "`datacarto run`, a Recorder, or `datacarto import allenai`.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SchemaError(f"{path}: not valid JSON ({err})") from err
    return RunMeta.from_json(doc, path)


def update_run_extra(run_dir: str | os.PathLike[str], **updates: Any) -> RunMeta:
    """Set keys of ``run.json``'s ``extra`` (e.g. ``curve=...``) and rewrite it; returns the new meta."""
    meta = read_run_json(run_dir).with_extra(**updates)
    write_run_json(run_dir, meta)
    return meta


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
        flat = pa.array(np.ascontiguousarray(logits, dtype=np.float32).reshape(-1))
        columns["logits"] = pa.FixedSizeListArray.from_arrays(flat, logits.shape[1])
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
                                                  **_WRITE_OPTIONS))


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
                    writer = pq.ParquetWriter(tmp, table.schema, **_WRITE_OPTIONS)
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


def read_shard(path: Path, *, columns: list[str] | None = None, n_classes: int | None = None,
               id_type: str | None = None) -> dict[str, np.ndarray]:
    """Read one shard into numpy arrays, validating schema and values; errors name the file and row."""
    reader = ShardReader(path, n_classes=n_classes, id_type=id_type)
    try:
        return reader.read_rows(0, reader.num_rows, columns)
    finally:
        reader.close()


class ShardReader:
    """One shard opened for reading row ranges; its schema is checked once, on opening.

    ``read_rows(start, stop, columns)`` reads only the row groups that overlap the range and
    checks the values it returns (labels in range, finite probabilities); errors name the file
    and the row number in the file.
    """

    def __init__(self, path: Path, *, n_classes: int | None = None, id_type: str | None = None) -> None:
        self.path = Path(path)
        self.n_classes = n_classes
        self.id_type = id_type
        if not self.path.is_file():
            raise SchemaError(f"{self.path}: epoch shard listed in run.json is missing")
        try:
            self._file = pq.ParquetFile(self.path)
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
        self.names: list[str] = list(schema.names)
        self._starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self.num_rows = int(self._starts[-1])
        self._cache: tuple[tuple[tuple[int, ...], tuple[str, ...]], pa.Table] | None = None

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
                  row_ids: np.ndarray | None = None, use_threads: bool = True) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` of the file as numpy arrays (``columns``: default all).

        ``row_ids`` (the ids of those rows, known from elsewhere) name the example in error
        messages when the id column is not read. ``use_threads=False`` decodes the columns one
        after the other (for callers that already read several ranges in parallel).
        """
        wanted = list(columns) if columns is not None else list(self.names)
        if "logits" in wanted and "logits" not in self.names:
            raise SchemaError(f"{self.path}: this run stored no full logits (K too large or disabled).")
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        last = int(np.searchsorted(self._starts, stop, side="left"))
        groups = list(range(max(first, 0), min(last, len(self._starts) - 1)))
        key = (tuple(groups), tuple(wanted))
        try:
            if stop <= start:
                table = self._file.schema_arrow.empty_table().select(wanted)
            elif self._cache is not None and self._cache[0] == key:
                table = self._cache[1]
            elif len(groups) == len(self._starts) - 1:
                table = self._file.read(columns=wanted, use_threads=use_threads)
            else:
                table = self._file.read_row_groups(groups, columns=wanted, use_threads=use_threads)
            # keep the decoded groups when the next range is likely to start inside them
            ends_inside = bool(groups) and stop < int(self._starts[groups[-1] + 1])
            self._cache = (key, table) if ends_inside else None
            offset = start - int(self._starts[groups[0]]) if groups else 0
            if offset or table.num_rows != stop - start:
                table = table.slice(offset, max(stop - start, 0))
        except (pa.ArrowException, OSError) as err:
            raise SchemaError(f"{self.path}: cannot read columns {wanted} ({err})") from err
        out = _table_to_numpy(table, wanted)
        self._check_values(out, start, row_ids)
        return out

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
        if "logits" in out and self.n_classes is not None and out["logits"].shape[1] != self.n_classes:
            raise SchemaError(f"{path}: logits have {out['logits'].shape[1]} values per row but the "
                              f"run has {self.n_classes} classes.")
        for name in ("gold_prob", "margin", "loss"):
            if name in out and not np.all(np.isfinite(out[name])):
                i = int(np.argmax(~np.isfinite(out[name])))
                raise SchemaError(f"{path} row {row0 + i}{_row_id(named, i)}: {name} is not finite.")


def _table_to_numpy(table: pa.Table, wanted: list[str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in wanted:
        col = table.column(name)
        if name == "logits":
            flat = col.combine_chunks()
            width = flat.type.list_size
            # flatten() honours the slice offset (.values would not)
            out[name] = flat.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
        elif name == "id":
            arr = col.to_numpy(zero_copy_only=False)
            out[name] = arr.astype(str) if arr.dtype.kind == "O" else arr.astype(np.int64, copy=False)
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out


def _row_id(cols: dict[str, np.ndarray], i: int) -> str:
    return f" (id={fmt_id(cols['id'][i])})" if "id" in cols else ""


def iter_epoch_shards(run_dir: Path, meta: dict[str, Any]) -> Iterator[tuple[int, list[Path]]]:
    """Yield ``(epoch, [shard paths])`` for each committed epoch, in epoch order."""
    for epoch in sorted(int(e) for e in meta["epochs"]):
        names = meta["shards"].get(str(epoch))
        if not names:
            raise SchemaError(f"{run_dir / RUN_FILE}: epoch {epoch} is committed but lists no shards.")
        yield epoch, [run_dir / n for n in names]


def read_epoch(run_dir: Path, meta: dict[str, Any], epoch: int, paths: list[Path],
               columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read all shards of one epoch, de-duplicate ids (rank padding) and sort rows by id."""
    parts = [read_shard(p, columns=columns, n_classes=meta["num_classes"], id_type=meta["id_type"])
             for p in paths]
    cols = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ids = cols["id"]
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = sorted_ids[1:] != sorted_ids[:-1]
    if len(parts) == 1 and keep.all() and np.array_equal(order, np.arange(len(order))):
        return cols
    if not keep.all() and len(parts) == 1:
        dup = sorted_ids[int(np.argmin(keep))]
        raise SchemaError(f"{paths[0]}: id {fmt_id(dup)} appears more than once in epoch {epoch}.")
    return {k: v[order][keep] for k, v in cols.items()}


# ------------------------------------------------------------------------ held-out logits
#: File of a ``datacarto run`` directory with the side models' held-out logits per epoch.
HELDOUT_FILE = "heldout.parquet"


@dataclass(frozen=True)
class HeldOut:
    """Held-out logits of every example: ``logits[e, i]`` (E_h, N, K) float32 is the logit
    vector that a model which did *not* train on example ``ids[i]`` gave it after epoch
    ``epochs[e]``; ``folds`` (N,) says which fold each example belongs to
    (the side model that predicted it). Rows are in
    ascending id order, as in a run's shards."""

    ids: np.ndarray
    epochs: np.ndarray
    folds: np.ndarray
    logits: np.ndarray


def write_heldout(path: str | os.PathLike[str], ids: np.ndarray, folds: np.ndarray,
                  logits: np.ndarray) -> None:
    """Write :class:`HeldOut` data (rows in any order; stored sorted by id) atomically.

    Columns: id, epoch (1-based), fold (0/1), logits (fixed-size list of K float32).
    """
    n_epochs, n, k = logits.shape
    order = np.argsort(ids, kind="stable")
    id_col = np.asarray(ids)[order]
    table = pa.table({
        "id": pa.array(np.tile(id_col.astype(str) if id_col.dtype.kind in "UO"
                               else id_col.astype(np.int64), n_epochs)),
        "epoch": pa.array(np.repeat(np.arange(1, n_epochs + 1, dtype=np.int32), n)),
        "fold": pa.array(np.tile(np.asarray(folds)[order].astype(np.int8), n_epochs)),
        "logits": pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(logits[:, order], dtype=np.float32).reshape(-1)), k),
    })
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def read_heldout(run_dir: str | os.PathLike[str]) -> HeldOut | None:
    """The run's :class:`HeldOut` logits, or None when it has no ``heldout.parquet``."""
    path = Path(run_dir) / HELDOUT_FILE
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
        epoch = table.column("epoch").to_numpy()
        ids = table.column("id").to_numpy(zero_copy_only=False)
        folds = table.column("fold").to_numpy()
        col = table.column("logits").combine_chunks()
        k = col.type.list_size
        flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    except (OSError, KeyError, ValueError, AttributeError, pa.ArrowException) as err:
        raise SchemaError(f"{path}: not a readable held-out logits file ({err}).") from None
    epochs, sizes = np.unique(epoch, return_counts=True)
    n = int(sizes[0]) if len(sizes) else 0
    if (sizes != n).any() or not np.array_equal(epoch, np.repeat(epochs, n)):
        raise SchemaError(f"{path}: every epoch must list the same examples, in order (epoch "
                          f"{int(epochs[0])} has {n} rows, epoch {int(epochs[-1])} has "
                          f"{int(sizes[-1])}).")
    return HeldOut(ids=ids[:n], epochs=epochs.astype(np.int64), folds=folds[:n],
                   logits=flat.reshape(len(epochs), n, k))
