"""Every metric of a run, computed from its shards in bounded memory, locally or on Dask.

``compute_run_metrics(run, ...)`` returns the same DataFrame as
``compute_metrics(run.dynamics(), ...)`` (identical ints, bools, strings and floats) without
ever holding the (N, E, K) logits or the (N, E) per-epoch arrays of the whole run.

How: :class:`datacarto.store.RunReader` checks every shard and cuts the run into chunks of
rows (one Parquet row group each), and :class:`datacarto.store.ChunkReader` reads one chunk
of every epoch in lockstep: the complete (n, E[, K]) history of those n examples. This module
only schedules the chunks; what is computed is :class:`datacarto.metrics.MetricsState`, the
same object :func:`~datacarto.metrics.compute_metrics` uses with the whole run as one chunk:
:func:`~datacarto.metrics.chunk_stats` per chunk (row-wise, so bit-identical on any row
range), then :meth:`~datacarto.metrics.MetricsState.compute` once on the gathered (N,) and
(N, K) results (regions, the label-error noise model and flags).

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

A run whose shard rows are not sorted by id (which no datacarto writer produces) cannot be
streamed: it is computed by the in-memory path on the local engine, and is an error on Dask.
Options are checked before anything is read (:mod:`datacarto.options`); an unknown option is
an error, never a reason to change paths.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import store
from ._validation import check_option
from .errors import InputError, SchemaError
from .metrics import ChunkPlan, MetricsState, chunk_stats
from .options import LabelErrorOptions, MetricsOptions, RegionOptions

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .run import Run

__all__ = ["CHUNK_ROWS", "ENGINES", "compute_run_metrics"]

ENGINES = ("local", "dask")
#: Examples per chunk: one row group of a datacarto shard.
CHUNK_ROWS = store.ROW_GROUP_ROWS
#: Seconds to wait for a dask scheduler before giving up.
DASK_CONNECT_TIMEOUT = 5.0


# ---------------------------------------------------------------------------------- local
def _run_local(plan: store.RunPlan, state: MetricsState, workers: int, unit_chunks: int) -> None:
    local = threading.local()
    opened: list[store.ChunkReader] = []
    lock = threading.Lock()

    def reader() -> store.ChunkReader:
        if not hasattr(local, "reader"):
            local.reader = store.ChunkReader(plan)
            with lock:
                opened.append(local.reader)
        return local.reader

    def unit(first: int) -> None:
        # consecutive chunks on one thread, so a shard with larger row groups is decoded once
        for c in range(first, min(first + unit_chunks, plan.n_chunks)):
            state.update(reader().dynamics(c), int(plan.bounds[c]))

    try:
        _bounded_map(unit, range(0, plan.n_chunks, unit_chunks), lambda _: None, workers)
    finally:
        for r in opened:
            r.close()


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



def _dask_task(plan: store.RunPlan, chunk_plan: ChunkPlan, chunks: list[int]
               ) -> list[tuple[int, dict[str, Any]]]:
    """Runs on a dask worker: ``(first row, chunk_stats)`` of consecutive chunks."""
    for ep in plan.epochs:
        for path in ep.paths:
            if not Path(path).is_file():
                raise SchemaError(f"{path}: not found on dask worker {_worker_address()}; the run "
                                  "directory must be on a file system every worker reads at the "
                                  "same path (e.g. NFS).")
    with store.ChunkReader(plan) as reader:
        return [(int(plan.bounds[c]), chunk_stats(chunk_plan, reader.dynamics(c))) for c in chunks]


def _run_dask(plan: store.RunPlan, state: MetricsState, scheduler: Any, timeout: float,
              task_chunks: int) -> None:
    client, release = _connect(scheduler, timeout)
    groups = [list(range(i, min(i + task_chunks, plan.n_chunks)))
              for i in range(0, plan.n_chunks, task_chunks)]
    full: list[Any] = []
    try:
        full = [client.submit(_dask_task, plan, state.plan, g, pure=False) for g in groups]
        for fut in full:  # in order: each result is added and released before the next
            for start, stats in fut.result():
                state.add(stats, start)
            fut.release()
    finally:
        for f in full:
            f.cancel()
        release()


# ---------------------------------------------------------------------------------- public
def compute_run_metrics(run: Run, *, epochs: str | tuple[int | None, int | None] | None = None,
                        include_ci: bool = False,
                        regions: RegionOptions | dict[str, Any] | None = None,
                        label_errors: LabelErrorOptions | dict[str, Any] | None = None,
                        engine: str = "local", scheduler: Any = None, workers: int | None = None,
                        chunk_rows: int = CHUNK_ROWS,
                        connect_timeout: float = DASK_CONNECT_TIMEOUT) -> pd.DataFrame:
    """Every per-example metric of ``run``, streamed from its shards (see the module docstring).

    Parameters
    ----------
    run : Run
        An opened run (:func:`datacarto.load`).
    epochs, include_ci, regions, label_errors
        As for :meth:`Run.metrics` / :func:`~datacarto.metrics.compute_metrics`
        (:class:`~datacarto.options.MetricsOptions`' fields, as dataclasses or dicts).
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
    options = MetricsOptions.from_args(epochs=epochs, include_ci=include_ci, regions=regions,
                                       label_errors=label_errors)
    engine = check_option(engine, ENGINES, name="engine", where="Run.metrics")
    if engine == "local" and scheduler is not None:
        raise InputError(f"Run.metrics: scheduler={scheduler!r} is only used with engine='dask'; "
                         "pass engine='dask' (CLI: --engine dask) or leave the scheduler out.")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InputError(f"Run.metrics: chunk_rows must be a positive integer; got {chunk_rows!r}.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise InputError(f"Run.metrics: workers must be a positive integer; got {workers!r}.")
    reader = store.RunReader(run.path, run.meta)
    try:
        plan = reader.plan(epochs=options.epochs, chunk_rows=chunk_rows)
    except store.NotStreamable as why:
        if engine == "dask":
            raise SchemaError(f"{why}; engine='dask' needs shards sorted by id (as every datacarto "
                              "writer makes them). Use engine='local'.") from None
        return _in_memory(run, options)
    state = MetricsState(options, n_examples=plan.n, epochs=plan.epoch_numbers,
                         classes=plan.classes, logits=plan.logits,
                         train_accuracy=plan.train_accuracy, meta=run.meta)
    unit_chunks = max(1, math.ceil(_row_group_rows(plan) / chunk_rows))
    if engine == "local":
        _run_local(plan, state, workers or max(1, min(4, os.cpu_count() or 1)), unit_chunks)
    else:
        _run_dask(plan, state, scheduler, connect_timeout, unit_chunks)
    return state.compute()


def _row_group_rows(plan: store.RunPlan) -> int:
    with store.ShardReader(Path(plan.epochs[0].paths[0])) as reader:
        return max(1, reader.row_group_rows)


def _in_memory(run: Run, options: MetricsOptions) -> pd.DataFrame:
    from .metrics import compute_metrics

    return compute_metrics(run.dynamics(epochs=options.epochs), include_ci=options.include_ci,
                           regions=options.regions, label_errors=options.label_errors)
