"""Every metric of a run, computed from its shards in bounded memory, locally or on Dask.

``compute_run_metrics(run, ...)`` returns the same DataFrame as
``compute_metrics(run.dynamics(), ...)`` (identical ints, bools, strings and floats, except the
entropy, equal to ~1e-15) without ever holding the (N, E, K) logits or the (N, E) per-epoch
arrays of the whole run.

How: every shard is sorted by id and every epoch holds the same ids, so rows ``a:b`` of one
epoch are the same examples as rows ``a:b`` of every other epoch. The engine reads one such row
range (a *chunk*, :data:`CHUNK_ROWS` = one Parquet row group) of every epoch in lockstep, so it
has the complete (n, E[, K]) history of those n examples as a
:class:`~datacarto.dynamics.TrainingDynamics`, and computes their per-example metrics with the
very functions :func:`~datacarto.metrics.compute_metrics` calls
(:func:`datacarto.metrics._row_metrics` and :func:`datacarto.label_errors.chunk_probs`:
row-wise reductions give bit-identical results on any row range); one softmax pass serves both
the entropy and the detector's averaged probabilities. What needs all examples at once — the
map's regions (a quantile of variability) and the label-error noise model, thresholds and flag
count (:func:`datacarto.label_errors.finish`) — is then computed on the client from the gathered
(N,) and (N, K) results, and the frame is assembled by the same function as in memory
(:func:`datacarto.metrics._assemble_frame`).

Label errors (:mod:`datacarto.label_errors`) run the detector's own stages:
:func:`~datacarto.label_errors.prepare` chooses the epoch window from the per-epoch training
accuracy (counted while the shards are checked), :func:`~datacarto.label_errors.chunk_probs`
runs per chunk and :func:`~datacarto.label_errors.finish` once, as ``detect_label_errors`` does.

Memory: O(N) for the results (about 120 bytes per example for the DataFrame), plus the
(N, K) float64 averaged probabilities of the label-error detector, plus a few chunks in flight
(about 60 MB per chunk at E = K = 10). Time is one pass over the shards (plus a read of the
id, label and pred columns to check them).

Engines
-------
``"local"``
    Chunks run on a pool of threads in this process (numpy and Arrow release the GIL).
``"dask"``
    Chunks run as tasks on a ``dask.distributed`` cluster, which reads the same Parquet shards:
    the run directory must be on a file system every worker can read (same path). The (N,)
    results come back to the client, and so do the (N, K) averaged probabilities the noise
    model is fitted on.

Runs that cannot be streamed (a shard whose rows are not sorted by id, which no datacarto
writer produces, or label-error options the streaming detector does not implement) are computed
by the in-memory path on the local engine, and are an error on Dask.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import label_errors as le
from . import store
from ._validation import check_option, fmt_id
from .dynamics import parse_epoch_window
from .errors import InputError, SchemaError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .run import Run

__all__ = ["CHUNK_ROWS", "ENGINES", "compute_run_metrics"]

ENGINES = ("local", "dask")
#: Examples per chunk: one row group of a datacarto shard.
CHUNK_ROWS = store.ROW_GROUP_ROWS
#: Seconds to wait for a dask scheduler before giving up.
DASK_CONNECT_TIMEOUT = 5.0
_COLUMNS = ("id", "label", "gold_prob", "pred", "margin", "loss")


# ---------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class _EpochPlan:
    """Where each chunk's rows are in one epoch's shards.

    ``cuts`` is None for one shard sorted by id without repeats (chunk c = rows
    ``bounds[c]:bounds[c+1]`` of the file); otherwise an (n_parts, n_chunks + 1) array: chunk
    c is rows ``cuts[p, c]:cuts[p, c+1]`` of every part p, merged by id with repeats dropped
    (DDP ranks that padded their share with repeated examples).
    """

    epoch: int
    paths: tuple[str, ...]
    cuts: np.ndarray | None


@dataclass(frozen=True)
class _Plan:
    """Everything a chunk task needs; small and picklable (it travels to dask workers)."""

    n: int
    bounds: np.ndarray  # (n_chunks + 1,) example offsets of the chunks
    epochs: tuple[_EpochPlan, ...]
    epoch_numbers: np.ndarray  # (E,) int64
    n_classes: int
    id_type: str
    logits: bool
    include_ci: bool
    correct_counts: np.ndarray  # (E,) examples whose argmax is their label, per epoch
    classes: tuple[str, ...] = ()
    meta: dict[str, Any] | None = None
    detector: le.DetectionPlan | None = None

    @property
    def n_chunks(self) -> int:
        return len(self.bounds) - 1


class _NotStreamable(Exception):
    """The run is valid but cannot be read in lockstep (rows not sorted by id)."""


def _select_epochs(run: Run, window: str | tuple[int | None, int | None] | None
                   ) -> list[tuple[int, list[Path]]]:
    if not run.epochs:
        raise SchemaError(f"{run.path / store.RUN_FILE}: the run has no committed epochs yet.")
    listed = list(store.iter_epoch_shards(run.path, run.meta))
    if window is None:
        return listed
    lo, hi = parse_epoch_window(window)
    kept = [(e, p) for e, p in listed if (lo is None or e >= lo) and (hi is None or e <= hi)]
    if not kept:
        raise InputError(f"epochs window {window!r} selects none of the recorded epochs "
                         f"{[e for e, _ in listed]}.")
    return kept


def _plan(run: Run, *, epochs: str | tuple[int | None, int | None] | None, include_ci: bool,
          chunk_rows: int) -> tuple[_Plan, np.ndarray]:
    """Validate every shard (schema, ids) and cut the run into chunks; returns (plan, ids).

    Every check that can fail before any metric is computed happens here, so a bad run fails
    fast and produces nothing.
    """
    meta = run.meta
    n_classes = int(meta["num_classes"])
    id_type = str(meta["id_type"])
    want_logits = bool(meta.get("logits_stored"))
    listed = list(store.iter_epoch_shards(run.path, meta)) if run.epochs else []
    selected = _select_epochs(run, epochs)

    # schema of every shard of the run, also outside the window: a run is one schema version
    first_version: tuple[int, Path] | None = None
    for _, paths in listed:
        for path in paths:
            with store.ShardReader(path, n_classes=n_classes, id_type=id_type) as reader:
                if first_version is None:
                    first_version = (reader.schema_version, path)
                elif reader.schema_version != first_version[0]:
                    raise SchemaError(
                        f"{path}: schema version {reader.schema_version} differs from "
                        f"{first_version[1].name}'s {first_version[0]}; all shards of a run must "
                        "share one schema version. Re-record the run, or re-import it with "
                        "`datacarto import`.")
                if want_logits and "logits" not in reader.names:
                    raise SchemaError(f"{path}: this run stored no full logits (K too large or "
                                      "disabled).")

    def keys(paths: list[Path]) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        ids_, labels_, correct_ = [], [], []
        for path in paths:
            with store.ShardReader(path, n_classes=n_classes, id_type=id_type) as reader:
                cols = reader.read_rows(0, reader.num_rows, ["id", "label", "pred"])
            ids_.append(cols["id"])
            labels_.append(cols["label"])
            correct_.append(cols["pred"] == cols["label"])
        return ids_, labels_, correct_

    pool = ThreadPoolExecutor(1)  # reads the next epoch's keys while this one is checked
    try:
        plans = _plan_epochs(selected, keys, pool, chunk_rows)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    ref_ids, bounds, epoch_plans, correct_counts = plans
    assert ref_ids is not None and bounds is not None
    plan = _Plan(n=len(ref_ids), bounds=bounds, epochs=tuple(epoch_plans),
                 epoch_numbers=np.array([p.epoch for p in epoch_plans], dtype=np.int64),
                 n_classes=n_classes, id_type=id_type, logits=want_logits, include_ci=include_ci,
                 correct_counts=np.array(correct_counts, dtype=np.int64),
                 classes=tuple(run.classes), meta=dict(meta))
    return plan, ref_ids


def _plan_epochs(selected: list[tuple[int, list[Path]]], keys: Callable[[list[Path]], Any],
                 pool: ThreadPoolExecutor, chunk_rows: int
                 ) -> tuple[np.ndarray, np.ndarray, list[_EpochPlan], list[int]]:
    """Check every selected epoch's ids and labels against the first; cut the chunks."""
    ref_ids: np.ndarray | None = None
    ref_labels: np.ndarray | None = None
    bounds: np.ndarray | None = None
    epoch_plans: list[_EpochPlan] = []
    correct_counts: list[int] = []
    ahead = pool.submit(keys, selected[0][1])
    for i, (epoch, paths) in enumerate(selected):
        part_ids, part_labels, part_correct = ahead.result()
        if i + 1 < len(selected):
            ahead = pool.submit(keys, selected[i + 1][1])
        if len(part_ids) == 1:
            ids, labels = part_ids[0], part_labels[0]
            correct_counts.append(int(part_correct[0].sum()))
            if not _strictly_increasing(ids):
                order = np.argsort(ids, kind="stable")
                sorted_ids = ids[order]
                repeated = sorted_ids[1:] == sorted_ids[:-1]
                if repeated.any():
                    dup = sorted_ids[1:][repeated][0]
                    raise SchemaError(f"{paths[0]}: id {fmt_id(dup)} appears more than once in "
                                      f"epoch {epoch}.")
                raise _NotStreamable(f"{paths[0]}: rows are not sorted by id")
            unique = ids
        else:
            for path, ids in zip(paths, part_ids):
                if len(ids) > 1 and not np.all(ids[1:] >= ids[:-1]):
                    raise _NotStreamable(f"{path}: rows are not sorted by id")
            all_ids = np.concatenate(part_ids)
            order = np.argsort(all_ids, kind="stable")  # the first copy of a repeat is kept
            sorted_ids = all_ids[order]
            first_copy = np.ones(len(order), dtype=bool)
            first_copy[1:] = sorted_ids[1:] != sorted_ids[:-1]
            unique = sorted_ids[first_copy]
            labels = np.concatenate(part_labels)[order][first_copy]
            correct_counts.append(int(np.concatenate(part_correct)[order][first_copy].sum()))
            del all_ids, order, sorted_ids, first_copy
        if ref_ids is None:
            ref_ids, ref_labels = unique, labels
            bounds = np.unique(np.r_[np.arange(0, len(unique), chunk_rows), len(unique)])
        elif len(unique) != len(ref_ids) or not np.array_equal(unique, ref_ids):
            missing = np.setdiff1d(ref_ids, unique)
            extra = np.setdiff1d(unique, ref_ids)
            first = missing[0] if len(missing) else extra[0]
            raise SchemaError(f"{paths[0]}: epoch {epoch} ids disagree with the first epoch "
                              f"({len(missing)} missing, {len(extra)} extra; first: "
                              f"id={fmt_id(first)}).")
        else:
            assert ref_labels is not None
            changed = labels != ref_labels
            if changed.any():
                i = int(np.argmax(changed))
                raise SchemaError(f"{paths[0]} row {i} (id={fmt_id(ref_ids[i])}): label {labels[i]} "
                                  f"differs from the first epoch's {ref_labels[i]}.")
        assert bounds is not None
        cuts = None
        if len(part_ids) > 1:
            starts = unique[bounds[:-1]]
            cuts = np.stack([np.r_[np.searchsorted(ids, starts, side="left"), len(ids)]
                             for ids in part_ids]).astype(np.int64)
            cuts[:, 0] = 0
        epoch_plans.append(_EpochPlan(epoch, tuple(str(p) for p in paths), cuts))
    assert ref_ids is not None and bounds is not None
    return ref_ids, bounds, epoch_plans, correct_counts


# ---------------------------------------------------------------------------------- label errors
def _check_label_error_options(options: dict[str, Any] | None) -> bool:
    """Validate like detect_label_errors; False when the streaming engine cannot follow."""
    opts = dict(options or {})
    if set(opts) - set(le.OPTIONS):
        return False
    le.check_options(**opts)
    return True


def _detection_plan(plan: _Plan, options: dict[str, Any] | None) -> le.DetectionPlan:
    """The detector's first stage, with the training accuracy counted while checking shards."""
    opts = dict(options or {})
    method, _ = le.check_options(**opts)
    window = opts.get("window", "auto")
    auto = method != "confident_learning" and isinstance(window, str) and window == "auto"
    return le.prepare(plan.n, plan.epoch_numbers, plan.correct_counts / plan.n if auto else None,
                      plan.meta, n_classes=plan.n_classes, logits=plan.logits, **opts)


def _strictly_increasing(ids: np.ndarray) -> bool:
    return len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1]))


# ---------------------------------------------------------------------------------- one chunk
class _Readers:
    """Open ShardReaders by path (one set per thread: Parquet readers are not shared)."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self._open: dict[str, store.ShardReader] = {}

    def get(self, path: str) -> store.ShardReader:
        reader = self._open.get(path)
        if reader is None:
            reader = store.ShardReader(Path(path), n_classes=self.plan.n_classes,
                                       id_type=self.plan.id_type)
            self._open[path] = reader
        return reader

    def close(self) -> None:
        for reader in self._open.values():
            reader.close()
        self._open.clear()


def _read_chunk(plan: _Plan, ep: _EpochPlan, c: int, columns: list[str], readers: _Readers,
                row_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
    a, b = int(plan.bounds[c]), int(plan.bounds[c + 1])
    # chunks already run in parallel: decoding their columns in parallel too oversubscribes
    if ep.cuts is None:
        return readers.get(ep.paths[0]).read_rows(a, b, columns, row_ids=row_ids,
                                                  use_threads=False)
    pieces = [readers.get(path).read_rows(int(ep.cuts[p, c]), int(ep.cuts[p, c + 1]), columns,
                                          use_threads=False)
              for p, path in enumerate(ep.paths)]
    cols = {k: np.concatenate([piece[k] for piece in pieces]) for k in columns}
    order = np.argsort(cols["id"], kind="stable")  # stable: the first part's copy of a repeat wins
    ids = cols["id"][order]
    keep = np.ones(len(ids), dtype=bool)
    keep[1:] = ids[1:] != ids[:-1]
    return {k: v[order][keep] for k, v in cols.items()}


def _chunk_stats(plan: _Plan, c: int, readers: _Readers) -> dict[str, Any]:
    """Per-example metrics of chunk ``c`` and the label-error detector's per-example inputs."""
    from .dynamics import TrainingDynamics
    from .metrics import _row_metrics

    columns = list(_COLUMNS) + (["logits"] if plan.logits else ["runner_up"])
    # the plan compared every epoch's ids and labels already: after the first epoch, a single
    # sorted shard is read without them
    values = [name for name in columns if name not in ("id", "label")]
    first = _read_chunk(plan, plan.epochs[0], c, columns, readers)
    per_epoch = [first] + [_read_chunk(plan, ep, c, columns if ep.cuts is not None else values,
                                       readers, row_ids=first["id"]) for ep in plan.epochs[1:]]
    for ep, cols in zip(plan.epochs[1:], per_epoch[1:]):
        _check_chunk_aligned(plan, ep, c, first, cols)
    labels = first["label"].astype(np.int64)
    n, n_ep = len(labels), len(per_epoch)

    def stack(name: str, dtype: Any) -> np.ndarray:
        return np.stack([e[name] for e in per_epoch], axis=1).astype(dtype, copy=False)

    # the same dtypes and (n, E[, K]) C-order layout as TrainingDynamics, so that every
    # row-wise reduction is bit-identical to compute_metrics on the whole run
    dyn = TrainingDynamics(
        ids=first["id"], labels=labels, gold_prob=stack("gold_prob", np.float32),
        pred=stack("pred", np.int32),
        # with logits no stage reads the runner-up (not read from the shards): a free stand-in
        runner_up=(np.broadcast_to(np.int32(0), (n, n_ep)) if plan.logits
                   else stack("runner_up", np.int32)),
        margin=stack("margin", np.float32), loss=stack("loss", np.float32),
        logits=np.stack([e["logits"] for e in per_epoch], axis=1) if plan.logits else None,
        epochs=plan.epoch_numbers, classes=plan.classes, meta=plan.meta or {})
    assert plan.detector is not None
    out: dict[str, Any] = {"chunk": c, "label": labels}
    out.update(_row_metrics(dyn, include_ci=plan.include_ci, entropy=False))
    # entropy=True: the entropy comes from the detector's softmax pass (one pass, not two)
    out.update(le.chunk_probs(plan.detector, dyn, entropy=True))
    return out


def _check_chunk_aligned(plan: _Plan, ep: _EpochPlan, c: int, first: dict[str, np.ndarray],
                         cols: dict[str, np.ndarray]) -> None:
    a = int(plan.bounds[c])
    if len(cols["gold_prob"]) != len(first["gold_prob"]) or (
            "id" in cols and not np.array_equal(cols["id"], first["id"])):
        # the plan compared every id already; this guards against a shard changed since
        raise SchemaError(f"{ep.paths[0]}: epoch {ep.epoch} ids disagree with the first epoch "
                          f"at rows {a}..{int(plan.bounds[c + 1]) - 1} (was the shard modified "
                          "while metrics were computed?).")
    changed = cols["label"] != first["label"] if "label" in cols else np.zeros(0, dtype=bool)
    if changed.any():
        i = int(np.argmax(changed))
        raise SchemaError(f"{ep.paths[0]} row {a + i} (id={fmt_id(first['id'][i])}): label "
                          f"{cols['label'][i]} differs from the first epoch's {first['label'][i]}.")


# ---------------------------------------------------------------------------------- results
class _Results:
    """Per-example outputs of all chunks, placed as chunks finish (in any order).

    ``arrays[name]`` is (N, ...) for every per-row output of :func:`_chunk_stats`, allocated
    when the first chunk brings it.
    """

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.arrays: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def place(self, stats: dict[str, Any]) -> None:
        c = int(stats["chunk"])
        a, b = int(self.plan.bounds[c]), int(self.plan.bounds[c + 1])
        for name, value in stats.items():
            if name == "chunk":
                continue
            arr = self.arrays.get(name)
            if arr is None:
                with self._lock:
                    arr = self.arrays.get(name)
                    if arr is None:
                        arr = np.empty((self.plan.n,) + value.shape[1:], dtype=value.dtype)
                        self.arrays[name] = arr
            arr[a:b] = value  # disjoint row ranges: chunks on several threads never collide


def _frame(plan: _Plan, ids: np.ndarray, classes: tuple[str, ...], res: _Results,
           regions: dict[str, Any] | None) -> pd.DataFrame:
    """The label-error detector's last stage, then compute_metrics' frame assembly."""
    from .metrics import _assemble_frame
    from .regions import assign_regions

    r = res.arrays
    assert plan.detector is not None
    conf, var = r["confidence"], r["variability"]
    stats = {k: r.pop(k) for k in ("probs", "suggested_label", "vote_majority") if k in r}
    flags = le.finish(plan.detector, stats, r["label"], conf, var, ids=ids)
    del stats
    region = assign_regions(conf, var, **(regions or {}))
    return _assemble_frame(ids, r["label"], classes, r, region, flags, plan.epoch_numbers,
                           flags["info"])


# ---------------------------------------------------------------------------------- local
def _run_local(plan: _Plan, workers: int, unit_chunks: int) -> _Results:
    res = _Results(plan)
    local = threading.local()
    opened: list[_Readers] = []
    lock = threading.Lock()

    def readers() -> _Readers:
        if not hasattr(local, "readers"):
            local.readers = _Readers(plan)
            with lock:
                opened.append(local.readers)
        return local.readers

    def unit(first: int) -> None:
        # consecutive chunks on one thread, so a shard with larger row groups is decoded once;
        # each chunk's results go straight to their own rows (disjoint slices: thread-safe)
        for c in range(first, min(first + unit_chunks, plan.n_chunks)):
            res.place(_chunk_stats(plan, c, readers()))

    try:
        _bounded_map(unit, range(0, plan.n_chunks, unit_chunks), lambda _: None, workers)
    finally:
        for r in opened:
            r.close()
    return res


def _bounded_map(fn: Callable[[int], Any], items: range, sink: Callable[[Any], None],
                 workers: int) -> None:
    """``sink(fn(i))`` for every item, ``workers`` at a time, at most 2 x workers results held."""
    if workers <= 1:
        for i in items:
            sink(fn(i))
        return
    with ThreadPoolExecutor(workers) as pool:
        inflight: deque[Future[Any]] = deque()
        try:
            for i in items:
                inflight.append(pool.submit(fn, i))
                if len(inflight) >= 2 * workers:
                    sink(inflight.popleft().result())
            while inflight:
                sink(inflight.popleft().result())
        finally:
            for f in inflight:
                f.cancel()


# ---------------------------------------------------------------------------------- dask
def _dask_task(plan: _Plan, chunks: list[int]) -> list[dict[str, Any]]:
    """Runs on a dask worker: the stats of consecutive chunks."""
    for ep in plan.epochs:
        for path in ep.paths:
            if not Path(path).is_file():
                raise SchemaError(f"{path}: not found on dask worker {_worker_address()}; the run "
                                  "directory must be on a file system every worker reads at the "
                                  "same path (e.g. NFS).")
    readers = _Readers(plan)
    try:
        return [_chunk_stats(plan, c, readers) for c in chunks]
    finally:
        readers.close()


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "?"


def _connect(scheduler: Any, timeout: float) -> tuple[Any, Callable[[], None]]:
    """A dask Client and a function that releases what was created here."""
    from ._deps import require

    distributed = require("distributed", extra="dask", feature="engine='dask'")
    if isinstance(scheduler, distributed.Client):
        return scheduler, lambda: None
    if scheduler is None:
        try:
            return distributed.get_client(), lambda: None
        except ValueError:
            pass  # no client in this process: start a local cluster for this call
        cluster = distributed.LocalCluster(processes=True, threads_per_worker=1,
                                           dashboard_address=":0")
        client = distributed.Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()
        return client, close
    address = str(scheduler)
    try:
        client = distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        raise InputError(
            f"dask scheduler {address}: cannot be reached within {timeout:g} s ({type(err).__name__}: "
            f"{err}). Check the address (tcp://HOST:8786), that `dask scheduler` runs there and "
            "that this machine can reach it, or leave the scheduler out to use a local "
            "cluster.") from None
    try:
        # a scheduler without workers would take the tasks and never run them
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as err:
        client.close()
        raise InputError(
            f"dask scheduler {address}: no worker connected within {timeout:g} s "
            f"({type(err).__name__}). Start workers with `dask worker {address}`.") from None
    return client, client.close


def _run_dask(plan: _Plan, scheduler: Any, timeout: float, task_chunks: int) -> _Results:
    client, release = _connect(scheduler, timeout)
    res = _Results(plan)
    groups = [list(range(i, min(i + task_chunks, plan.n_chunks)))
              for i in range(0, plan.n_chunks, task_chunks)]
    full: list[Any] = []
    try:
        full = [client.submit(_dask_task, plan, g, pure=False) for g in groups]
        for fut in full:  # in order: each result is placed and released before the next
            for stats in fut.result():
                res.place(stats)
            fut.release()
    finally:
        for f in full:
            f.cancel()
        release()
    return res


# ---------------------------------------------------------------------------------- public
def compute_run_metrics(run: Run, *, epochs: str | tuple[int | None, int | None] | None = None,
                        include_ci: bool = False, regions: dict[str, Any] | None = None,
                        label_errors: dict[str, Any] | None = None, engine: str = "local",
                        scheduler: Any = None, workers: int | None = None,
                        chunk_rows: int = CHUNK_ROWS,
                        connect_timeout: float = DASK_CONNECT_TIMEOUT) -> pd.DataFrame:
    """Every per-example metric of ``run``, streamed from its shards (see the module docstring).

    Parameters
    ----------
    run : Run
        An opened run (:func:`datacarto.load`).
    epochs, include_ci, regions, label_errors
        As for :meth:`Run.metrics` / :func:`~datacarto.metrics.compute_metrics`.
    engine : {"local", "dask"}
        Where the chunks are computed.
    scheduler : str, distributed.Client or None
        ``engine="dask"`` only: a scheduler address such as ``"tcp://10.0.0.5:8786"``, a
        ``Client``, or None for the client already active in this process (else a temporary
        ``LocalCluster`` with one worker process per core).
    workers : int, optional
        ``engine="local"``: threads (default: the number of cores, at most 4).
    chunk_rows : int
        Examples per chunk (default: one row group, 2**17).
    connect_timeout : float
        Seconds to wait for the dask scheduler.

    Returns
    -------
    pandas.DataFrame
        Equal to ``compute_metrics(run.dynamics(epochs=epochs), ...)``.
    """
    import os

    engine = check_option(engine, ENGINES, name="engine", where="Run.metrics")
    if engine == "local" and scheduler is not None:
        raise InputError(f"Run.metrics: scheduler={scheduler!r} is only used with engine='dask'; "
                         "pass engine='dask' (CLI: --engine dask) or leave the scheduler out.")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InputError(f"Run.metrics: chunk_rows must be a positive integer; got {chunk_rows!r}.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise InputError(f"Run.metrics: workers must be a positive integer; got {workers!r}.")
    if not _check_label_error_options(label_errors):
        if engine == "dask":
            raise InputError(f"Run.metrics: label_errors={label_errors!r} is not supported by "
                             "engine='dask'; use engine='local'.")
        return _in_memory(run, epochs, include_ci, regions, label_errors)
    try:
        plan, ids = _plan(run, epochs=epochs, include_ci=include_ci, chunk_rows=chunk_rows)
    except _NotStreamable as why:
        if engine == "dask":
            raise SchemaError(f"{why}; engine='dask' needs shards sorted by id (as every datacarto "
                              "writer makes them). Use engine='local'.") from None
        return _in_memory(run, epochs, include_ci, regions, label_errors)
    plan = replace(plan, detector=_detection_plan(plan, label_errors))
    if len(plan.epochs) == 1:
        warnings.warn("only 1 epoch recorded: variability is 0 for every example", UserWarning,
                      stacklevel=3)
    unit_chunks = max(1, math.ceil(_row_group_rows(plan) / chunk_rows))
    if engine == "local":
        n_workers = workers or max(1, min(4, os.cpu_count() or 1))
        res = _run_local(plan, n_workers, unit_chunks)
    else:
        res = _run_dask(plan, scheduler, connect_timeout, unit_chunks)
    return _frame(plan, ids, run.classes, res, regions)


def _row_group_rows(plan: _Plan) -> int:
    with store.ShardReader(Path(plan.epochs[0].paths[0])) as reader:
        return max(1, reader.row_group_rows)


def _in_memory(run: Run, epochs: Any, include_ci: bool, regions: dict[str, Any] | None,
               label_errors: dict[str, Any] | None) -> pd.DataFrame:
    from .metrics import compute_metrics

    return compute_metrics(run.dynamics(epochs=epochs), include_ci=include_ci, regions=regions,
                           label_errors=label_errors)
