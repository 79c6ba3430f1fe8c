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
from concurrent.futures import ThreadPoolExecutor
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


def iter_epoch_shards(run_dir: Path, meta: RunMeta) -> Iterator[tuple[int, list[Path]]]:
    """Yield ``(epoch, [shard paths])`` for each committed epoch, in epoch order."""
    for epoch in meta.epochs:
        names = meta.shards.get(str(epoch))
        if not names:
            raise SchemaError(f"{run_dir / RUN_FILE}: epoch {epoch} is committed but lists no shards.")
        yield epoch, [run_dir / n for n in names]


def read_epoch(run_dir: Path, meta: RunMeta, epoch: int, paths: list[Path],
               columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read all shards of one epoch, de-duplicate ids (rank padding) and sort rows by id."""
    parts = [read_shard(p, columns=columns, n_classes=meta.num_classes, id_type=meta.id_type)
             for p in paths]
    if len(parts) == 1:
        check_unique_ids(parts[0]["id"], paths[0], epoch)
    return merge_by_id(parts)


# ------------------------------------------------------------------------ reading a run
def _strictly_increasing(ids: np.ndarray) -> bool:
    return len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1]))


def sort_unique_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, first)``: ``ids[order]`` ascending (stable sort, so the earliest copy of a
    repeated id comes first) and ``first[i]`` False where ``ids[order][i]`` repeats the id before."""
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return order, first


def merge_by_id(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The rows of one epoch's parts (rank shards) as one table sorted by id, each id once.

    A repeated id (ranks pad their share with repeats) keeps its first copy, in part order.
    """
    cols = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts])
                                             for k in parts[0]}
    if _strictly_increasing(cols["id"]):
        return cols
    order, first = sort_unique_ids(cols["id"])
    return {k: v[order][first] for k, v in cols.items()}


def check_unique_ids(ids: np.ndarray, path: Path | str, epoch: int) -> None:
    """SchemaError when one shard lists an id twice."""
    if _strictly_increasing(ids):
        return
    order, first = sort_unique_ids(ids)
    if not first.all():
        dup = ids[order][int(np.argmin(first))]
        raise SchemaError(f"{path}: id {fmt_id(dup)} appears more than once in epoch {epoch}.")


def check_same_examples(path: Path | str, epoch: int, ref_ids: np.ndarray,
                        ref_labels: np.ndarray | None, ids: np.ndarray | None,
                        labels: np.ndarray | None, *, n_rows: int | None = None,
                        row0: int = 0) -> None:
    """SchemaError unless an epoch holds the first epoch's examples, in order, with its labels.

    ``ids``/``labels`` are the epoch's rows ``row0:row0 + len`` (ascending id); either may be
    None when it was not read (then only the row count ``n_rows`` is compared).
    """
    if ids is not None and (len(ids) != len(ref_ids) or not np.array_equal(ids, ref_ids)):
        missing = np.setdiff1d(ref_ids, ids)
        extra = np.setdiff1d(ids, ref_ids)
        first = missing[0] if len(missing) else extra[0] if len(extra) else ids[0]
        raise SchemaError(f"{path}: epoch {epoch} ids disagree with the first epoch "
                          f"({len(missing)} missing, {len(extra)} extra; first: id={fmt_id(first)}).")
    if ids is None and n_rows is not None and n_rows != len(ref_ids):
        raise SchemaError(f"{path}: epoch {epoch} ids disagree with the first epoch ({n_rows} rows "
                          f"from row {row0} where the first epoch has {len(ref_ids)}; was the "
                          "shard modified while it was read?).")
    if labels is not None and ref_labels is not None:
        changed = labels != ref_labels
        if changed.any():
            i = int(np.argmax(changed))
            raise SchemaError(f"{path} row {row0 + i} (id={fmt_id(ref_ids[i])}): label "
                              f"{labels[i]} differs from the first epoch's {ref_labels[i]}.")


class NotStreamable(Exception):
    """The run is valid but cannot be read chunk by chunk (a shard's rows are not sorted by id)."""


#: The per-epoch columns a TrainingDynamics is built from (besides id and label).
VALUE_COLUMNS = ("gold_prob", "pred", "runner_up", "margin", "loss")


@dataclass(frozen=True)
class EpochShards:
    """Where each chunk's rows are in one epoch's shards.

    ``cuts`` is None for one shard sorted by id without repeats (chunk c = rows
    ``bounds[c]:bounds[c+1]`` of the file); otherwise an (n_parts, n_chunks + 1) array: chunk
    c is rows ``cuts[p, c]:cuts[p, c+1]`` of every part p, merged by id (:func:`merge_by_id`).
    """

    epoch: int
    paths: tuple[str, ...]
    cuts: np.ndarray | None


@dataclass(frozen=True)
class RunPlan:
    """A checked run cut into chunks of rows; small and picklable (it travels to dask workers).

    ``train_accuracy`` (E,): per selected epoch, the share of examples whose argmax is their
    label, counted while the shards were checked.
    """

    n: int
    bounds: np.ndarray  # (n_chunks + 1,) example offsets of the chunks
    epochs: tuple[EpochShards, ...]
    classes: tuple[str, ...]
    id_type: str
    logits: bool
    train_accuracy: np.ndarray

    @property
    def n_chunks(self) -> int:
        return len(self.bounds) - 1

    @property
    def epoch_numbers(self) -> np.ndarray:
        return np.array([ep.epoch for ep in self.epochs], dtype=np.int64)


class RunReader:
    """The one way a run's shards are read (whole epochs, or the same rows of every epoch).

    :meth:`dynamics` reads whole epochs into a :class:`~datacarto.dynamics.TrainingDynamics`;
    :meth:`plan` checks every shard and cuts the run into chunks of rows that
    :class:`ChunkReader` reads from every epoch in lockstep (possible because every shard is
    sorted by id and every epoch holds the same ids). Rank shards of one epoch are merged by
    :func:`merge_by_id`; every epoch is compared with the first by :func:`check_same_examples`.
    """

    def __init__(self, run_dir: str | os.PathLike[str], meta: RunMeta) -> None:
        self.run_dir = Path(run_dir)
        self.meta = meta
        self.classes = meta.classes
        self.id_type = meta.id_type
        self.logits_stored = meta.logits_stored
        self.shards = list(iter_epoch_shards(self.run_dir, meta))

    def select(self, window: str | tuple[int | None, int | None] | None = None
               ) -> list[tuple[int, list[Path]]]:
        """``(epoch, shard paths)`` of the committed epochs in an epoch window (all for None)."""
        from .dynamics import select_epochs

        if not self.shards:
            raise SchemaError(f"{self.run_dir / RUN_FILE}: the run has no committed epochs yet.")
        keep = select_epochs([e for e, _ in self.shards], window)
        return [s for s, k in zip(self.shards, keep) if k]

    def open(self, path: Path | str) -> ShardReader:
        return ShardReader(Path(path), n_classes=len(self.classes), id_type=self.id_type)

    def read_epoch(self, epoch: int, paths: list[Path],
                   columns: list[str] | None = None) -> dict[str, np.ndarray]:
        """One whole epoch, sorted by id, each id once (:func:`read_epoch`)."""
        return read_epoch(self.run_dir, self.meta, epoch, paths, columns=columns)

    def dynamics(self, *, epochs: str | tuple[int | None, int | None] | None = None,
                 logits: bool = True) -> Any:
        """Every epoch of the window, whole, as a :class:`~datacarto.dynamics.TrainingDynamics`."""
        from .dynamics import TrainingDynamics

        columns = ["id", "label", *VALUE_COLUMNS]
        if logits and self.logits_stored:
            columns.append("logits")
        selected = self.select(epochs)
        per_epoch: list[dict[str, np.ndarray]] = []
        for epoch, paths in selected:
            cols = self.read_epoch(epoch, paths, columns)
            if per_epoch:
                first = per_epoch[0]
                check_same_examples(paths[0], epoch, first["id"], first["label"], cols["id"],
                                    cols["label"])
            per_epoch.append(cols)
        return TrainingDynamics.from_epochs(per_epoch, epoch_numbers=[e for e, _ in selected],
                                            classes=self.classes, meta=self.meta.to_json())

    def plan(self, *, epochs: str | tuple[int | None, int | None] | None = None,
             chunk_rows: int = ROW_GROUP_ROWS) -> RunPlan:
        """Check every shard (schema, ids, labels) and cut the window's epochs into chunks.

        Every check that can fail before any chunk is read happens here, so a bad run fails
        fast. Raises :class:`NotStreamable` when a shard's rows are not sorted by id.
        """
        selected = self.select(epochs)
        self._check_schemas()
        pool = ThreadPoolExecutor(1)  # reads the next epoch's keys while this one is checked
        try:
            ahead = pool.submit(self._keys, selected[0][1])
            ref: dict[str, np.ndarray] | None = None
            bounds = np.zeros(1, dtype=np.int64)
            plans: list[EpochShards] = []
            correct: list[int] = []
            for i, (epoch, paths) in enumerate(selected):
                parts = ahead.result()
                if i + 1 < len(selected):
                    ahead = pool.submit(self._keys, selected[i + 1][1])
                for path, part in zip(paths, parts):
                    if len(parts) == 1:
                        check_unique_ids(part["id"], path, epoch)
                    ids = part["id"]
                    if len(ids) > 1 and not np.all(ids[1:] >= ids[:-1]):
                        raise NotStreamable(f"{path}: rows are not sorted by id")
                cols = merge_by_id(parts)
                if ref is None:
                    ref = cols
                    n = len(cols["id"])
                    bounds = np.unique(np.r_[np.arange(0, n, chunk_rows), n]).astype(np.int64)
                else:
                    check_same_examples(paths[0], epoch, ref["id"], ref["label"], cols["id"],
                                        cols["label"])
                correct.append(int(cols["correct"].sum()))
                cuts = None
                if len(parts) > 1:
                    starts = ref["id"][bounds[:-1]]
                    cuts = np.stack([np.r_[np.searchsorted(p["id"], starts, side="left"),
                                           len(p["id"])] for p in parts]).astype(np.int64)
                    cuts[:, 0] = 0
                plans.append(EpochShards(epoch, tuple(str(p) for p in paths), cuts))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        assert ref is not None
        n = len(ref["id"])
        return RunPlan(n=n, bounds=bounds, epochs=tuple(plans), classes=self.classes,
                       id_type=self.id_type, logits=self.logits_stored,
                       train_accuracy=np.array(correct, dtype=np.float64) / max(n, 1))

    def _check_schemas(self) -> None:
        """Every shard of the run, also outside the window: a run is one schema version."""
        first: tuple[int, Path] | None = None
        for _, paths in self.shards:
            for path in paths:
                with self.open(path) as reader:
                    if first is None:
                        first = (reader.schema_version, path)
                    elif reader.schema_version != first[0]:
                        raise SchemaError(
                            f"{path}: schema version {reader.schema_version} differs from "
                            f"{first[1].name}'s {first[0]}; all shards of a run must share one "
                            "schema version. Re-record the run, or re-import it with "
                            "`datacarto import`.")
                    if self.logits_stored and "logits" not in reader.names:
                        raise SchemaError(f"{path}: this run stored no full logits (K too large "
                                          "or disabled).")

    def _keys(self, paths: list[Path]) -> list[dict[str, np.ndarray]]:
        """Per shard: ids, labels and whether the argmax is the label."""
        parts = []
        for path in paths:
            with self.open(path) as reader:
                cols = reader.read_rows(0, reader.num_rows, ["id", "label", "pred"])
            parts.append({"id": cols["id"], "label": cols["label"],
                          "correct": cols["pred"] == cols["label"]})
        return parts


class ChunkReader:
    """Reads chunk ``c`` of a :class:`RunPlan` (rows ``bounds[c]:bounds[c+1]`` of every epoch).

    Keeps its shards open between chunks; one per thread (Parquet readers are not shared).
    """

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self._open: dict[str, ShardReader] = {}

    def _reader(self, path: str) -> ShardReader:
        reader = self._open.get(path)
        if reader is None:
            reader = ShardReader(Path(path), n_classes=len(self.plan.classes),
                                 id_type=self.plan.id_type)
            self._open[path] = reader
        return reader

    def _rows(self, ep: EpochShards, c: int, columns: list[str],
              row_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        a, b = int(self.plan.bounds[c]), int(self.plan.bounds[c + 1])
        # chunks already run in parallel: decoding their columns in parallel too oversubscribes
        if ep.cuts is None:
            return self._reader(ep.paths[0]).read_rows(a, b, columns, row_ids=row_ids,
                                                       use_threads=False)
        return merge_by_id([self._reader(path).read_rows(int(ep.cuts[p, c]),
                                                         int(ep.cuts[p, c + 1]), columns,
                                                         use_threads=False)
                            for p, path in enumerate(ep.paths)])

    def dynamics(self, c: int) -> Any:
        """Chunk ``c`` as a :class:`~datacarto.dynamics.TrainingDynamics` (all planned epochs)."""
        from .dynamics import TrainingDynamics

        plan = self.plan
        values = [*VALUE_COLUMNS, *(["logits"] if plan.logits else [])]
        first = self._rows(plan.epochs[0], c, ["id", "label", *values])
        per_epoch = [first]
        for ep in plan.epochs[1:]:
            # the plan compared every epoch's ids and labels already: a single sorted shard is
            # read without them; merged rank shards need their ids
            cols = self._rows(ep, c, values if ep.cuts is None else ["id", "label", *values],
                              row_ids=first["id"])
            check_same_examples(ep.paths[0], ep.epoch, first["id"], first["label"],
                                cols.get("id"), cols.get("label"), n_rows=len(cols["loss"]),
                                row0=int(plan.bounds[c]))
            per_epoch.append(cols)
        return TrainingDynamics.from_epochs(per_epoch, epoch_numbers=plan.epoch_numbers,
                                            classes=plan.classes)

    def close(self) -> None:
        for reader in self._open.values():
            reader.close()
        self._open.clear()

    def __enter__(self) -> ChunkReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


# ------------------------------------------------------------------------ other run files
#: Files a ``datacarto run`` directory holds beside run.json, the shards and the held-out logits.
EVIDENCE_FILE = "evidence.parquet"
SUMMARY_FILE = "summary.json"


def write_run_table(run_dir: str | os.PathLike[str], name: str, frame: Any) -> Path:
    """Write a pandas DataFrame to ``RUN/name`` (Parquet, no index) atomically; returns the path."""
    path = Path(run_dir) / name
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return path


def read_run_table(run_dir: str | os.PathLike[str], name: str) -> Any:
    """``RUN/name`` as a pandas DataFrame, or None when the run has no such file."""
    import pandas as pd

    path = Path(run_dir) / name
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise SchemaError(f"{path}: not a readable Parquet file ({err}).") from None


def write_run_doc(run_dir: str | os.PathLike[str], name: str, doc: dict[str, Any]) -> Path:
    """Write a JSON document to ``RUN/name`` atomically (indented, UTF-8); returns the path."""
    path = Path(run_dir) / name
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return path


def read_run_doc(run_dir: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """The JSON object in ``RUN/name``, or None when the run has no such file."""
    path = Path(run_dir) / name
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SchemaError(f"{path}: not valid JSON ({err}).") from None
    if not isinstance(doc, dict):
        raise SchemaError(f"{path}: expected a JSON object.")
    return doc
