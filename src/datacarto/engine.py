"""Every metric of a run, computed from its shards in bounded memory, locally or on Dask.

``compute_run_metrics(run, ...)`` returns the same DataFrame as
``compute_metrics(run.dynamics(), ...)`` (identical ints, bools, strings and floats, except the
entropy, equal to ~1e-15) without ever holding the (N, E, K) logits or the (N, E) per-epoch
arrays of the whole run.

How: every shard is sorted by id and every epoch holds the same ids, so rows ``a:b`` of one
epoch are the same examples as rows ``a:b`` of every other epoch. The engine reads one such row
range (a *chunk*, :data:`CHUNK_ROWS` = one Parquet row group) of every epoch in lockstep, so it
has the complete (n, E[, K]) history of those n examples, and computes their per-example metrics
with the very functions :func:`~datacarto.metrics.compute_metrics` uses (row-wise reductions
give bit-identical results on any row range); one softmax pass serves both the entropy and the
detector's averaged probabilities. What needs all examples at once — the map's
regions (a quantile of variability) and the label-error thresholds (per-class means) — is then
computed from the (N,) results, as in the in-memory path.

Label errors (:mod:`datacarto.label_errors`) follow the detector step by step with its own
building blocks: the epoch window is chosen from the per-epoch training accuracy (counted
while the shards are checked), the window-averaged probabilities (N, K) are computed per chunk,
and the noise model, scores and flags are fitted on them as in ``detect_label_errors``.

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
    model is fitted on (for ``method="confident_learning"`` they stay on the workers).

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
#: Rows per softmax slice inside a chunk (8192 x E=10 x K=10 float64 = 6.5 MB per temporary).
_SOFTMAX_ROWS = 8192


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
    label_errors: _LabelErrorSpec | None = None

    @property
    def n_chunks(self) -> int:
        return len(self.bounds) - 1


@dataclass(frozen=True)
class _LabelErrorSpec:
    """What the label-error detector needs per chunk: its method and epoch window."""

    method: str
    threshold: float | None
    keep: np.ndarray | None = None  # (E,) bool: the epochs the score averages over


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
#: detect_label_errors options the streaming engine implements ("regions" only shapes the
#: detector's "assessment", which the metrics frame does not show).
_LABEL_ERROR_OPTIONS = {"method", "window", "heldout_accuracy", "threshold", "regions"}


def _check_label_error_options(options: dict[str, Any] | None) -> bool:
    """Validate like detect_label_errors; False when the streaming engine cannot follow."""
    from . import label_errors as le

    opts = dict(options or {})
    if set(opts) - _LABEL_ERROR_OPTIONS:
        return False
    check_option(opts.get("method", le.DEFAULT_METHOD), le.LABEL_ERROR_METHODS, name="method",
                 where="detect_label_errors")
    le._check_threshold(opts.get("threshold"))
    return True


def _label_error_spec(plan: _Plan, options: dict[str, Any] | None) -> _LabelErrorSpec:
    """The detector's method and epoch window (as ``label_errors._window`` picks it)."""
    from . import label_errors as le
    from .dynamics import TrainingDynamics

    opts = dict(options or {})
    method = opts.get("method", le.DEFAULT_METHOD)
    threshold = le._check_threshold(opts.get("threshold"))
    if method == "confident_learning":
        return _LabelErrorSpec(method, threshold)
    window = opts.get("window", "auto")
    held = opts.get("heldout_accuracy")
    epochs = plan.epoch_numbers
    if isinstance(window, str) and window == "auto":
        # the training accuracy the detector reads its memorisation knee from, counted exactly
        acc = plan.correct_counts / plan.n
        if held is None:
            held = le._heldout_from_meta(plan.meta or {}, epochs)
        choice = le.choose_window(acc, held, epochs=epochs, n_examples=plan.n)
    else:
        # an explicit window (or None) needs only the epoch numbers: an empty stand-in suffices
        e = len(epochs)
        empty = TrainingDynamics(
            ids=np.zeros(0, np.int64), labels=np.zeros(0, np.int64),
            gold_prob=np.zeros((0, e), np.float32), pred=np.zeros((0, e), np.int32),
            runner_up=np.zeros((0, e), np.int32), margin=np.zeros((0, e), np.float32),
            loss=np.zeros((0, e), np.float32), logits=None, epochs=epochs,
            classes=plan.classes, meta=dict(plan.meta or {}))
        choice = le._window(empty, window, held)
    keep = (epochs >= choice.first) & (epochs <= choice.last)
    return _LabelErrorSpec(method, threshold, keep)


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
    """Per-example metrics of chunk ``c`` (and the label-error detector's per-example inputs)."""
    from .dynamics import TrainingDynamics
    from .label_errors import _vote_counts, probs_from_stored
    from .metrics import (_aum, _confidence, _correctness, _first_learned_epoch,
                          _forgetting_events, _variability)

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
    # the same dtypes and (n, E[, K]) C-order layout as TrainingDynamics, so that every
    # row-wise reduction below is bit-identical to compute_metrics on the whole run
    gold = np.stack([e["gold_prob"] for e in per_epoch], axis=1).astype(np.float32, copy=False)
    pred = np.stack([e["pred"] for e in per_epoch], axis=1).astype(np.int32, copy=False)
    margin = np.stack([e["margin"] for e in per_epoch], axis=1).astype(np.float32, copy=False)
    loss = np.stack([e["loss"] for e in per_epoch], axis=1).astype(np.float32, copy=False)
    p = gold.astype(np.float64)
    correct = pred == labels[:, None]
    conf = _confidence(p)
    out: dict[str, Any] = {
        "chunk": c,
        "label": labels,
        "confidence": conf,
        "variability": _variability(p, include_ci=plan.include_ci),
        "correctness": _correctness(correct),
        "forgetting_events": _forgetting_events(correct),
        "never_learned": ~correct.any(axis=1),
        "first_learned_epoch": _first_learned_epoch(correct, plan.epoch_numbers.astype(float)),
        "aum": _aum(margin.astype(np.float64)),
        "mean_loss": loss.astype(np.float64).mean(axis=1),
    }
    rows = np.arange(len(labels))
    spec = plan.label_errors
    assert spec is not None
    # row-wise, so slicing changes no value; small slices keep the float64 temporaries in cache
    slices = [slice(s, s + _SOFTMAX_ROWS) for s in range(0, len(labels), _SOFTMAX_ROWS)]
    logits = np.stack([e["logits"] for e in per_epoch], axis=1) if plan.logits else None
    runner_up = None if plan.logits else np.stack(
        [e["runner_up"] for e in per_epoch], axis=1).astype(np.int32, copy=False)
    avg = None
    if logits is not None:
        # one softmax pass gives the entropy and the averaged probabilities of the detector
        keep = spec.keep if spec.method != "confident_learning" else None
        parts = [_softmax_stats(logits[sl], keep) for sl in slices]
        out["entropy"] = np.concatenate([h for h, _ in parts])
        avg = np.concatenate([q for _, q in parts])
    if spec.method != "confident_learning":
        assert spec.keep is not None
        window = spec.keep.all()
        if avg is not None:
            out["probs"] = avg
        else:
            assert runner_up is not None
            k = spec.keep
            out["probs"] = probs_from_stored(TrainingDynamics(
                ids=first["id"], labels=labels, gold_prob=gold if window else gold[:, k],
                pred=pred if window else pred[:, k],
                runner_up=runner_up if window else runner_up[:, k],
                margin=margin if window else margin[:, k], loss=loss if window else loss[:, k],
                logits=None, epochs=plan.epoch_numbers[k], classes=plan.classes,
                meta=plan.meta or {}))
    elif avg is not None:  # version 0.1's detector, on every epoch
        masked = avg.copy()
        masked[rows, labels] = -np.inf
        out["suggested_label"] = masked.argmax(axis=1)
        out["gold_avg"] = avg[rows, labels]
        out["avg_probs"] = avg  # needed again once the per-class thresholds are known
    else:
        assert runner_up is not None
        votes = _vote_counts(runner_up, plan.n_classes)
        suggested = votes.argmax(axis=1)
        pred_votes = _vote_counts(pred, plan.n_classes)
        out["suggested_label"] = suggested
        out["is_label_error"] = (pred_votes[rows, suggested] * 2 > len(plan.epochs)) & (conf < 0.5)
    return out


def _softmax_stats(logits: np.ndarray, keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean predictive entropy (n,) and epoch-averaged probabilities (n, K) of logits (n, E, K).

    The probabilities repeat :func:`datacarto.label_errors.epoch_averaged_probs` operation for
    operation (same dtype, layout and reductions), so they are bit-identical to it, over the
    epochs in ``keep`` (all when None): the detector's flags depend on exact comparisons. The
    entropy shares the softmax instead of recomputing it as :func:`datacarto.metrics.entropy`
    does; it agrees with it to ~1e-15. ``tests/test_engine.py`` checks both.
    """
    b = logits.astype(np.float64)
    m = b.max(axis=2, keepdims=True)
    e = np.exp(b - m)
    s = e.sum(axis=2, keepdims=True)
    q = e / s
    entropy = -(q * ((b - m) - np.log(s))).sum(axis=2).mean(axis=1)
    if keep is not None and not keep.all():
        q = q[:, keep]
    return entropy, q.mean(axis=1)


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


def _flags(stats: dict[str, Any], thresholds: np.ndarray) -> dict[str, Any]:
    """Confident-learning flag of one chunk, given the per-class thresholds of the whole run."""
    avg, labels = stats["avg_probs"], stats["label"]
    above = avg >= thresholds[None, :]
    best_above = np.where(above, avg, -np.inf).argmax(axis=1)
    flagged = above.any(axis=1) & (best_above != labels)
    # the suggestion for a flagged example is the class that crossed its threshold
    suggested = np.where(flagged, best_above, stats["suggested_label"])
    return {"chunk": stats["chunk"], "is_label_error": flagged, "suggested_label": suggested}


def _thresholds(gold_avg: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    # avg[labels == c, c] holds the same values, in the same order, as gold_avg[labels == c]
    return np.array([gold_avg[labels == c].mean() if (labels == c).any() else 1.0
                     for c in range(n_classes)])


# ---------------------------------------------------------------------------------- results
_FLOAT_OUT = ("confidence", "variability", "correctness", "first_learned_epoch", "aum",
              "entropy", "mean_loss", "gold_avg")


class _Results:
    """Per-example outputs of all chunks, placed as chunks finish (in any order)."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        n = plan.n
        self.arrays: dict[str, np.ndarray] = {name: np.empty(n) for name in _FLOAT_OUT}
        self.arrays["label"] = np.empty(n, dtype=np.int64)
        self.arrays["forgetting_events"] = np.empty(n, dtype=np.int64)
        self.arrays["never_learned"] = np.empty(n, dtype=bool)
        self.arrays["suggested_label"] = np.empty(n, dtype=np.int64)
        self.arrays["is_label_error"] = np.zeros(n, dtype=bool)
        spec = plan.label_errors
        legacy = spec is not None and spec.method == "confident_learning"
        #: (N, K): the legacy detector's all-epoch averages, or the window-averaged probabilities
        self.probs = np.empty((n, plan.n_classes)) if plan.logits or not legacy else None
        if not plan.logits:
            del self.arrays["entropy"]
        if not (legacy and plan.logits):
            del self.arrays["gold_avg"]

    def place(self, stats: dict[str, Any]) -> None:
        c = int(stats["chunk"])
        a, b = int(self.plan.bounds[c]), int(self.plan.bounds[c + 1])
        for name, arr in self.arrays.items():
            if name in stats:
                arr[a:b] = stats[name]
        for name in ("avg_probs", "probs"):
            if self.probs is not None and name in stats:
                self.probs[a:b] = stats[name]


def _names(names: np.ndarray, codes: np.ndarray) -> Any:
    """``names[codes]`` as the column pandas makes of it, without creating N Python strings."""
    import pandas as pd
    import pyarrow as pa

    inferred = pd.Series(names[:1]).dtype  # what pandas makes of an object array of str
    if isinstance(inferred, pd.StringDtype) and inferred.storage == "pyarrow":
        column = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                                pa.array(list(names), pa.large_string()))
        return pd.array(column.cast(pa.large_string()), dtype=inferred)
    return names[codes]


def _frame(plan: _Plan, ids: np.ndarray, classes: tuple[str, ...], res: _Results,
           regions: dict[str, Any] | None) -> pd.DataFrame:
    """The DataFrame of compute_metrics, column for column."""
    import pandas as pd

    from .regions import assign_regions

    r = res.arrays
    labels = r["label"]
    names = np.asarray(classes, dtype=object)
    conf, var = r["confidence"], r["variability"]
    frame = pd.DataFrame(copy=False, data={
        "id": ids,
        "label": labels,
        "label_name": _names(names, labels),
        "confidence": conf,
        "variability": var,
        "correctness": r["correctness"],
        "forgetting_events": r["forgetting_events"],
        "never_learned": r["never_learned"],
        "first_learned_epoch": pd.array(r["first_learned_epoch"], dtype="Int64"),
        "threshold_closeness": conf * (1.0 - conf),
        "aum": r["aum"],
        "entropy": r["entropy"] if plan.logits else np.nan,
        "mean_loss": r["mean_loss"],
    })
    frame["region"] = assign_regions(conf, var, **(regions or {}))
    frame["label_error_score"] = r["label_error_score"] if "label_error_score" in r else 1.0 - conf
    frame["suggested_label"] = r["suggested_label"]
    frame["suggested_label_name"] = _names(names, r["suggested_label"])
    frame["is_label_error"] = r["is_label_error"]
    frame.attrs["epochs"] = plan.epoch_numbers.tolist()
    frame.attrs["classes"] = list(classes)
    return frame


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
    spec = plan.label_errors
    assert spec is not None
    if spec.method == "confident_learning" and plan.logits:
        assert res.probs is not None
        labels = res.arrays["label"]
        thresholds = _thresholds(res.arrays["gold_avg"], labels, plan.n_classes)
        for c in range(plan.n_chunks):
            a, b = int(plan.bounds[c]), int(plan.bounds[c + 1])
            res.place(_flags({"chunk": c, "avg_probs": res.probs[a:b], "label": labels[a:b],
                              "suggested_label": res.arrays["suggested_label"][a:b]}, thresholds))
        res.probs = None
    return res


def _noise_posterior(plan: _Plan, res: _Results) -> None:
    """Steps 3-6 of the default detector on the gathered window-averaged probabilities."""
    from . import label_errors as le

    spec = plan.label_errors
    assert spec is not None and res.probs is not None
    probs, labels = res.probs, res.arrays["label"]
    model = le.NoiseModel.fit(probs, labels, plan.n_classes)
    score = np.empty(plan.n)
    for c in range(plan.n_chunks):  # row-wise: chunks bound the (n, K) temporaries
        a, b = int(plan.bounds[c]), int(plan.bounds[c + 1])
        score[a:b], res.arrays["suggested_label"][a:b] = model.score(probs[a:b], labels[a:b])
        if spec.method == "confidence":
            score[a:b] = 1.0 - probs[a:b][np.arange(b - a), labels[a:b]]
    res.probs = None
    res.arrays["label_error_score"] = score
    res.arrays["is_label_error"] = (le._top_n(score, model.n_errors) if spec.threshold is None
                                    else score >= spec.threshold)


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
    """Runs on a dask worker: the stats of consecutive chunks (avg_probs stay on the worker)."""
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


def _dask_light(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if k != "avg_probs"} for s in stats]


def _dask_flags(stats: list[dict[str, Any]], thresholds: np.ndarray) -> list[dict[str, Any]]:
    return [_flags(s, thresholds) for s in stats]


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
    assert plan.label_errors is not None
    # only version 0.1's detector needs the chunks' (n, K) averages again, after the thresholds
    keep_on_workers = plan.label_errors.method == "confident_learning" and plan.logits
    full: list[Any] = []
    try:
        full = [client.submit(_dask_task, plan, g, pure=False) for g in groups]
        fetch = [client.submit(_dask_light, f, pure=False) for f in full] if keep_on_workers else full
        for fut in fetch:  # in order: each result is placed and released before the next
            for stats in fut.result():
                res.place(stats)
            fut.release()
        if keep_on_workers:
            thresholds = _thresholds(res.arrays["gold_avg"], res.arrays["label"], plan.n_classes)
            flags = [client.submit(_dask_flags, f, thresholds, pure=False) for f in full]
            for fut in flags:
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
    plan = replace(plan, label_errors=_label_error_spec(plan, label_errors))
    if len(plan.epochs) == 1:
        warnings.warn("only 1 epoch recorded: variability is 0 for every example", UserWarning,
                      stacklevel=3)
    unit_chunks = max(1, math.ceil(_row_group_rows(plan) / chunk_rows))
    if engine == "local":
        n_workers = workers or max(1, min(4, os.cpu_count() or 1))
        res = _run_local(plan, n_workers, unit_chunks)
    else:
        res = _run_dask(plan, scheduler, connect_timeout, unit_chunks)
    assert plan.label_errors is not None
    if plan.label_errors.method != "confident_learning":
        _noise_posterior(plan, res)
    return _frame(plan, ids, run.classes, res, regions)


def _row_group_rows(plan: _Plan) -> int:
    with store.ShardReader(Path(plan.epochs[0].paths[0])) as reader:
        return max(1, reader.row_group_rows)


def _in_memory(run: Run, epochs: Any, include_ci: bool, regions: dict[str, Any] | None,
               label_errors: dict[str, Any] | None) -> pd.DataFrame:
    from .metrics import compute_metrics

    return compute_metrics(run.dynamics(epochs=epochs), include_ci=include_ci, regions=regions,
                           label_errors=label_errors)
