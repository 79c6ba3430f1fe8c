"""Recorder: the framework-agnostic core that every integration feeds (docs/contract.md §3).

Call ``update(ids, outputs, labels)`` for each batch, ``end_epoch()`` after each epoch and
``close()`` at the end (or use it as a context manager). Outputs are logits (n, K) by default,
or probabilities when constructed with ``inputs="probs"``. Numpy arrays, lists and torch /
TensorFlow / JAX tensors are accepted; no framework is imported here.

Each epoch is de-duplicated by id (distributed samplers pad ranks with repeated examples),
checked against the ids of earlier epochs, sorted by id and, when the recorder has a path,
committed atomically as one Parquet shard before ``run.json`` lists it.

Memory stays bounded during an epoch: with a path, once ``max_pending_rows`` rows are pending
they are sorted by id and spilled to a part file under ``RUN/epochs/.pending/`` (memory-mapped
again at ``end_epoch``), and the shard is written one row group at a time. What stays in memory
at ``end_epoch`` is O(N) ids, labels and row order, never O(N x K) outputs.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

from . import store
from ._validation import fmt_id, check_float_array, check_ids, check_labels, to_numpy
from .dynamics import TrainingDynamics, derive_from_logits
from .errors import InputError, StateError
from .probability import log_probs, looks_like_probs, non_probability_rows
from .recording_config import (CAPTURE_MODES, DEFAULT_MAX_PENDING_ROWS,  # noqa: F401 (re-exported)
                               DUPLICATE_POLICIES, INPUT_KINDS, RecordingConfig)

#: Duplicate rows in one epoch count as "identical" within this absolute tolerance.
_DUPLICATE_ATOL = 1e-6
#: Where pending rows are spilled, under the run directory; one sub-folder per Recorder.
PENDING_DIR = f"{store.SHARD_DIR}/.pending"
#: derive_from_logits runs on slices of this many rows: its float64 temporaries then stay in cache.
_DERIVE_ROWS = 1 << 15
_DERIVE_THREADS = max(1, min(2, os.cpu_count() or 1))


class Recorder:
    """Streaming accumulator of per-example training dynamics.

    Parameters
    ----------
    path : str, Path or None
        Run directory to write (created if missing; an existing run is continued, its epoch
        numbering carried on). ``None`` keeps everything in memory.
    classes : list of str, optional
        Class names; defines K. Or give ``num_classes`` (names become "0".."K-1"). When neither
        is given, K is taken from the first batch.
    capture : {"pass", "eval"}
        Stored in metadata: logits from the training forward pass, or from an extra
        inference pass at epoch end.
    inputs : {"logits", "probs"}
        What ``update`` receives. Probabilities are stored as log-probabilities, which give the
        same softmax, argmax and margin as logits; every row must be a probability vector
        (:func:`datacarto.probability.non_probability_rows`). With ``"logits"``, a first batch
        of an epoch that looks like probabilities (:func:`datacarto.probability.looks_like_probs`)
        gets a ``UserWarning``, not an error: the Recorder cannot know what the model returns
        (a model may emit non-negative scores), so it keeps the rows and says how to declare
        probabilities. The adapters, which know their framework hands over logits, raise on
        the same rule.
    on_duplicate : {"error", "first"}
        An id seen twice in an epoch with identical values is always kept once; with different
        values (e.g. a padded duplicate seen twice with dropout on) "error" raises and "first"
        keeps the first occurrence.
    max_logit_classes : int
        Store full logits when K is at most this.
    planned_epochs : int, optional
        How many epochs the training will run. Recorded in ``run.json`` so that a run stopped
        early (killed at epoch 2 of 30) says so: every command then notes "incomplete: 2 of 30
        epochs".
    max_pending_rows : int
        With a path, rows of the current epoch kept in memory before they are spilled to a
        temporary part file under ``RUN/epochs/.pending/`` (merged at ``end_epoch``, removed
        after). Bounds recording memory for very large epochs; ignored without a path.
    config : RecordingConfig, optional
        All the settings above as one object (what the adapters pass); the individual
        keywords must then be left at their defaults.

    Invalid settings raise :class:`~datacarto.errors.InputError` here, in the constructor.

    ``update(ids, outputs, labels)`` takes ids (n,) int or str, outputs (n, K) and labels (n,)
    int in 0..K-1. ``to_dynamics()`` returns a :class:`TrainingDynamics` of all committed
    epochs.

    Examples
    --------
    >>> import numpy as np
    >>> rec = Recorder(None, num_classes=2)
    >>> rec.update([10, 11], np.array([[2.0, 0.0], [0.0, 1.0]]), [0, 0])
    >>> rec.end_epoch()
    1
    >>> rec.to_dynamics().pred[:, 0].tolist()
    [0, 1]
    """

    def __init__(self, path: str | Path | None = None, *, classes: list[str] | None = None,
                 num_classes: int | None = None, capture: Literal["pass", "eval"] = "pass",
                 inputs: Literal["logits", "probs"] = "logits", seed: int | None = None,
                 data_fingerprint: str | None = None,
                 on_duplicate: Literal["error", "first"] = "error",
                 max_logit_classes: int = store.DEFAULT_MAX_LOGIT_CLASSES,
                 meta: dict[str, Any] | None = None,
                 max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS,
                 planned_epochs: int | None = None,
                 config: RecordingConfig | None = None) -> None:
        given = RecordingConfig(
            classes=classes, num_classes=num_classes, capture=capture, inputs=inputs, seed=seed,
            data_fingerprint=data_fingerprint, on_duplicate=on_duplicate,
            max_logit_classes=max_logit_classes, meta=meta or {},
            max_pending_rows=max_pending_rows, planned_epochs=planned_epochs, where="Recorder")
        if config is not None and not isinstance(config, RecordingConfig):
            raise InputError(f"Recorder: config must be a RecordingConfig; got "
                             f"{type(config).__name__}.")
        if config is not None and given != RecordingConfig(on_duplicate="error"):
            raise InputError("Recorder: pass the settings either as config= or as keywords, "
                             "not both.")
        self.config = given if config is None else config
        self.path = None if path is None else Path(path)
        # K and the class names are learned (first batch, or the run on disk): state, not config
        self.classes = None if self.config.classes is None else list(self.config.classes)
        self.num_classes = self.config.num_classes
        self._spill_dir: Path | None = None
        self._reset_state()

    # settings, read from the config
    capture = property(lambda self: self.config.capture)
    inputs = property(lambda self: self.config.inputs)
    seed = property(lambda self: self.config.seed)
    data_fingerprint = property(lambda self: self.config.data_fingerprint)
    on_duplicate = property(lambda self: self.config.duplicate_policy())
    max_logit_classes = property(lambda self: self.config.max_logit_classes)
    max_pending_rows = property(lambda self: self.config.max_pending_rows)
    planned_epochs = property(lambda self: self.config.planned_epochs)
    meta = property(lambda self: dict(self.config.meta))

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        self._opened = False
        self._closed = False
        self._run_meta: store.RunMeta | None = None
        self._epoch = 0  # last committed epoch number
        self._batch = 0
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_rows = 0  # rows in self._pending (in memory)
        self._pending_kind: str | None = None  # "int"/"str": the id kind of this epoch's rows
        self._spilled: list[Path] = []  # part files of this epoch, oldest first
        self._known_ids: np.ndarray | None = None
        self._known_labels: np.ndarray | None = None
        self._memory: list[dict[str, Any]] = []  # committed epochs when path is None

    def reset(self) -> None:
        """Forget everything not yet written; an on-disk run is left as committed."""
        self._drop_pending()
        self._reset_state()

    @property
    def epoch(self) -> int:
        """Number of the epoch being recorded now (1-based)."""
        self._open()
        return self._epoch + 1

    @property
    def pending_rows(self) -> int:
        """Rows given to ``update`` since the last ``end_epoch`` (in memory and spilled)."""
        return self._n_pending()

    def pending_ids(self) -> np.ndarray:
        """Ids of the rows since the last ``end_epoch``, repeats included (O(rows) ids only).

        Cheaper than ``state_dict()["ids"]``, which also reads the spilled outputs back.
        """
        parts = self._parts()
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.asarray(part[0]) for part in parts])

    def discard_epoch(self) -> None:
        """Forget the rows since the last ``end_epoch`` (and their spill files); keep the run."""
        self._drop_pending()
        self._batch = 0

    def _where(self) -> str:
        return f"Recorder.update (epoch {self._epoch + 1}, batch {self._batch})"

    def _open(self) -> None:
        if self._opened:
            return
        if self.path is not None and (self.path / store.RUN_FILE).exists():
            self._resume_from_disk()
        if self.path is not None:
            _remove_stale_spills(self.path / PENDING_DIR)
            _remove_stale_temporaries(self.path)
        self._opened = True

    def _resume_from_disk(self) -> None:
        assert self.path is not None
        meta = store.read_run_json(self.path)
        if self.classes is not None and list(meta.classes) != self.classes:
            raise InputError(f"{self.path}: run has classes {list(meta.classes)} but the Recorder was "
                             f"given {self.classes}.")
        if self.num_classes is not None and meta.num_classes != self.num_classes:
            raise InputError(f"{self.path}: run has {meta.num_classes} classes but the Recorder "
                             f"was given num_classes={self.num_classes}.")
        self.classes = list(meta.classes)
        self.num_classes = len(self.classes)
        self._run_meta = meta
        if meta.epochs:
            last = meta.epochs[-1]
            paths = [self.path / n for n in meta.shards[str(last)]]
            cols = store.RunReader(self.path, meta).read_epoch(last, paths, ["id", "label"])
            self._known_ids, self._known_labels = cols["id"], cols["label"].astype(np.int64)
            self._epoch = last

    # ----------------------------------------------------------------- update
    def update(self, ids: Any, outputs: Any, labels: Any) -> None:
        """Add one batch: ids (n,), outputs (n, K) logits or probs, labels (n,) in 0..K-1."""
        if self._closed:
            raise StateError("Recorder.update() was called after close().")
        self._open()
        self._batch += 1
        where = self._where()
        ids_arr = check_ids(ids, where=where)
        out = to_numpy(outputs)
        if out.ndim == 1 and self.num_classes is None:
            raise InputError(f"{where}: outputs must be 2-D (n, K); got shape {out.shape}. "
                             "Pass the model's logits, not predicted classes.")
        out = check_float_array(out, name="outputs", ndim=2, where=where)
        if self.num_classes is None:
            if out.shape[1] < 2:
                raise InputError(f"{where}: outputs have {out.shape[1]} column; a classifier needs "
                                 "K >= 2 logits per row (for a binary sigmoid, pass [-z/2, z/2]).")
            self.num_classes = int(out.shape[1])
        if out.shape[1] != self.num_classes:
            raise InputError(f"{where}: outputs have {out.shape[1]} columns but the run has "
                             f"{self.num_classes} classes.")
        lab = check_labels(labels, n_classes=self.num_classes, where=where, ids=ids_arr)
        if not (len(ids_arr) == out.shape[0] == len(lab)):
            raise InputError(f"{where}: ids has {len(ids_arr)} entries, outputs has {out.shape[0]} "
                             f"rows and labels has {len(lab)}; they must match.")
        if self.inputs == "probs":
            bad = non_probability_rows(out)
            if bad.any():
                i = int(np.argmax(bad))
                raise InputError(f"{where}: outputs row {i} (id={fmt_id(ids_arr[i])}) is not a probability "
                                 "vector (values in [0, 1] summing to 1).")
            out = log_probs(out)
        elif self._batch == 1 and looks_like_probs(out):
            warnings.warn(f"{where}: every output row is non-negative and sums to 1; these look like "
                          "probabilities. Construct the Recorder with inputs='probs' if so.",
                          UserWarning, stacklevel=2)
        if self._pending_kind is not None and self._pending_kind != _id_kind(ids_arr):
            raise InputError(f"{where}: ids are {_id_kind(ids_arr)} but earlier batches had "
                             f"{self._pending_kind} ids.")
        with np.errstate(over="ignore"):
            out32 = out.astype(np.float32)
        overflow = ~np.isfinite(out32)
        if overflow.any():  # finite in float64 but beyond float32's range: would be stored as inf
            i, j = (int(k) for k in np.argwhere(overflow)[0])
            raise InputError(f"{where}: outputs[{i}, {j}] = {out[i, j]:.6g} (id={fmt_id(ids_arr[i])}) is "
                             "too large to store as float32 (|x| <= 3.4e38); logits must be finite "
                             "after the cast. The model has probably diverged.")
        self._add_pending(ids_arr, out32, lab)

    # ------------------------------------------------------- pending rows
    def _add_pending(self, ids: np.ndarray, outputs: np.ndarray, labels: np.ndarray) -> None:
        if len(ids) == 0:
            return
        self._pending.append((ids, outputs, labels))
        self._pending_rows += len(ids)
        if self._pending_kind is None:
            self._pending_kind = _id_kind(ids)
        if self.path is not None and self._pending_rows >= self.max_pending_rows:
            self._spill()

    def _spill(self) -> None:
        """Sort the in-memory rows by id and write them to a part file (three .npy arrays)."""
        assert self.path is not None
        ids, outputs, labels = (np.concatenate([p[i] for p in self._pending]) for i in range(3))
        order = np.argsort(ids, kind="stable")  # stable: "first" duplicate stays first
        if self._spill_dir is None:
            host = socket.gethostname().replace("-", "_")
            self._spill_dir = self.path / PENDING_DIR / f"{host}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        base = self._spill_dir / f"part-{len(self._spilled) + 1:05d}"
        for suffix, arr in (("ids", ids), ("outputs", outputs), ("labels", labels)):
            np.save(f"{base}.{suffix}.npy", arr[order], allow_pickle=False)
        self._spilled.append(base)
        self._pending = []
        self._pending_rows = 0

    def _parts(self, *, mmap: bool = True) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Every pending row of this epoch as (ids, outputs, labels) parts, in arrival order."""
        mode = "r" if mmap else None
        parts = [tuple(np.load(f"{base}.{suffix}.npy", mmap_mode=mode, allow_pickle=False)
                       for suffix in ("ids", "outputs", "labels")) for base in self._spilled]
        if len(self._pending) == 1:
            parts.append(self._pending[0])
        elif self._pending:
            parts.append(tuple(np.concatenate([b[i] for b in self._pending]) for i in range(3)))
        return parts  # type: ignore[return-value]

    def _n_pending(self) -> int:
        return self._pending_rows + sum(
            int(np.load(f"{base}.ids.npy", mmap_mode="r").shape[0]) for base in self._spilled)

    def _drop_pending(self) -> None:
        self._pending = []
        self._pending_rows = 0
        self._pending_kind = None
        self._spilled = []
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
            _remove_if_empty(self._spill_dir.parent)
            self._spill_dir = None

    # -------------------------------------------------------------- end_epoch
    def end_epoch(self) -> int:
        """Commit the batches seen since the last call as the next epoch; return its number."""
        if self._closed:
            raise StateError("Recorder.end_epoch() was called after close().")
        self._open()
        epoch = self._epoch + 1
        if not self._pending and not self._spilled:
            raise StateError(f"Recorder.end_epoch(): epoch {epoch} has no rows. HINT: call update() "
                             "for each batch, then end_epoch().")
        parts = self._parts()
        ids, labels, order = self._collect(epoch, parts)
        keep_logits = self.num_classes <= self.max_logit_classes
        if self.path is not None:
            self._commit(epoch, ids, labels, order, parts, keep_logits)
        else:
            logits = _gather(parts, order)
            self._memory.append({"epoch": epoch, "id": ids, "label": labels,
                                 "logits": logits if keep_logits else None,
                                 **_derive(logits, labels)})
        del parts  # release the memory maps before their files are removed
        self._known_ids, self._known_labels = ids, labels
        self._epoch = epoch
        self._drop_pending()
        self._batch = 0
        return epoch

    def _collect(self, epoch: int, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted unique ids, their labels and, for each, its row in the concatenated parts."""
        ids = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else np.asarray(parts[0][0])
        labels = np.concatenate([p[2] for p in parts]) if len(parts) > 1 else np.asarray(parts[0][2])
        order, first_copy = store.sort_unique_ids(ids)
        ids, labels = ids[order], labels[order]
        dup = ~first_copy
        if dup.any():
            first = np.flatnonzero(~dup)
            group = np.cumsum(~dup) - 1  # index into `first` for every row
            ref = first[group]
            if (labels != labels[ref]).any():
                i = int(np.argmax(labels != labels[ref]))
                raise InputError(f"Recorder.end_epoch (epoch {epoch}): id {fmt_id(ids[i])} was seen with "
                                 f"labels {labels[ref[i]]} and {labels[i]}.")
            if self.on_duplicate == "error":
                # only the repeated rows and their first occurrences are read back
                rows = np.flatnonzero(dup)
                differs = ~np.all(np.isclose(_gather(parts, order[rows]), _gather(parts, order[ref[rows]]),
                                             atol=_DUPLICATE_ATOL, rtol=0), axis=1)
                if differs.any():
                    i = int(rows[np.argmax(differs)])
                    raise InputError(
                        f"Recorder.end_epoch (epoch {epoch}): id {fmt_id(ids[i])} was seen twice with "
                        "different outputs. Each example must be seen once per epoch; if a sampler "
                        "repeats examples on purpose, construct the Recorder with on_duplicate='first'.")
            ids, labels, order = ids[~dup], labels[~dup], order[~dup]
        if self._known_ids is not None:
            self._check_same_examples(epoch, ids, labels)
        return ids, labels, order

    def _check_same_examples(self, epoch: int, ids: np.ndarray, labels: np.ndarray) -> None:
        known = self._known_ids
        assert known is not None and self._known_labels is not None
        if known.dtype.kind != ids.dtype.kind:
            raise InputError(f"Recorder.end_epoch (epoch {epoch}): ids are {_id_kind(ids)} but earlier "
                             f"epochs had {_id_kind(known)} ids.")
        if not np.array_equal(known, ids):
            missing = np.setdiff1d(known, ids)
            extra = np.setdiff1d(ids, known)
            parts = []
            if len(missing):
                parts.append(f"misses {len(missing)} of {len(known)} ids (first: {_preview(missing)})")
            if len(extra):
                parts.append(f"has {len(extra)} ids not seen in earlier epochs (first: {_preview(extra)})")
            raise InputError(f"epoch {epoch} {' and '.join(parts)}; every example must be seen once "
                             "per epoch.")
        changed = labels != self._known_labels
        if changed.any():
            i = int(np.argmax(changed))
            raise InputError(f"epoch {epoch}: id {fmt_id(ids[i])} has label {labels[i]} but had "
                             f"{self._known_labels[i]} in earlier epochs; labels must not change "
                             "during a run.")

    def _commit(self, epoch: int, ids: np.ndarray, labels: np.ndarray, order: np.ndarray,
                parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], keep_logits: bool) -> None:
        assert self.path is not None
        if self._run_meta is None:
            self._run_meta = store.RunMeta(
                classes=tuple(self.classes or [str(k) for k in range(self.num_classes or 0)]),
                capture=self.capture, inputs=self.inputs, seed=self.seed,
                data_fingerprint=self.data_fingerprint, id_type=_id_kind(ids),
                logits_stored=keep_logits).with_extra(**self.meta)
        name = store.shard_name(epoch)
        if not self._spilled:
            # the epoch fits in max_pending_rows: one table, written in one call
            logits = _gather(parts, order)
            store.write_shard(self.path / name, epoch=epoch, ids=ids, labels=labels,
                              derived=_derive(logits, labels),
                              logits=logits if keep_logits else None)
        else:
            store.write_shard_chunks(self.path / name, epoch=epoch,
                                     chunks=_shard_chunks(ids, labels, order, parts, keep_logits))
        # the shard is in this datacarto's schema: a resumed older run now needs it to be read
        meta = replace(self._run_meta, schema_version=store.SCHEMA_VERSION).with_epoch(
            epoch, [name], planned_epochs=self.planned_epochs)
        store.write_run_json(self.path, meta)
        self._run_meta = meta

    # ------------------------------------------------------------ results/IO
    def to_dynamics(self) -> TrainingDynamics:
        """All committed epochs as a :class:`TrainingDynamics`."""
        if self.path is not None:
            if self._epoch == 0 and not (self.path / store.RUN_FILE).exists():
                raise StateError("Recorder.to_dynamics() was called before any epoch was committed. "
                                 "HINT: call update() for each batch, then end_epoch().")
            return store.RunReader(self.path, store.read_run_json(self.path)).dynamics()
        if not self._memory:
            raise StateError("Recorder.to_dynamics() was called before any epoch was committed. "
                             "HINT: call update() for each batch, then end_epoch().")
        return TrainingDynamics.from_epochs(
            self._memory, epoch_numbers=[e["epoch"] for e in self._memory],
            classes=self.classes or [str(k) for k in range(self.num_classes or 0)],
            meta={"capture": self.capture, "inputs": self.inputs, "seed": self.seed, **self.meta})

    def state_dict(self) -> dict[str, Any]:
        """Pending (uncommitted) rows and settings as plain numpy arrays: no pickle needed.

        Rows spilled to disk are read back, so the state holds the whole unfinished epoch.
        """
        pending = self._parts(mmap=False)
        return {
            "epoch": self._epoch,
            "num_classes": self.num_classes,
            "ids": np.concatenate([p[0] for p in pending]) if pending else np.zeros(0, np.int64),
            "outputs": np.concatenate([p[1] for p in pending]) if pending else np.zeros((0, 0), np.float32),
            "labels": np.concatenate([p[2] for p in pending]) if pending else np.zeros(0, np.int64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore pending rows saved by :meth:`state_dict` (e.g. a checkpoint taken mid-epoch)."""
        self._open()
        if int(state["epoch"]) != self._epoch:
            raise StateError(f"Recorder.load_state_dict: state is from after epoch {state['epoch']} "
                             f"but this run has committed {self._epoch} epochs.")
        if len(state["ids"]):
            if self.num_classes is None:
                self.num_classes = int(state["num_classes"])
            self._drop_pending()
            self._add_pending(check_ids(state["ids"]), np.asarray(state["outputs"], np.float32),
                              np.asarray(state["labels"], np.int64))

    def merge(self, other: Recorder) -> None:
        """Add another recorder's pending rows (e.g. another DDP rank's) to this epoch."""
        if other.num_classes is not None and self.num_classes is not None and \
                other.num_classes != self.num_classes:
            raise InputError(f"Recorder.merge: other has {other.num_classes} classes, this one "
                             f"{self.num_classes}.")
        self._open()
        if self.num_classes is None:
            self.num_classes = other.num_classes
        for ids, outputs, labels in other._parts(mmap=False):
            self._add_pending(ids, outputs, labels)

    def close(self) -> None:
        """Finish recording. Rows after the last ``end_epoch()`` are discarded, with a warning."""
        if self._pending or self._spilled:
            warnings.warn(f"Recorder.close(): discarding {self._n_pending()} rows "
                          f"of unfinished epoch {self._epoch + 1} (call end_epoch() to keep them).",
                          UserWarning, stacklevel=2)
        self._drop_pending()
        self._closed = True

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._drop_pending()  # a crash mid-epoch leaves the store at the last committed epoch
        self.close()


def _id_kind(ids: np.ndarray) -> str:
    return "str" if ids.dtype.kind == "U" else "int"


def _gather(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], rows: np.ndarray) -> np.ndarray:
    """Outputs (float32) of the given rows of the concatenated parts, in the order given."""
    if len(parts) == 1:
        return np.asarray(parts[0][1][rows], dtype=np.float32)
    offsets = np.cumsum([0] + [len(p[0]) for p in parts])
    which = np.searchsorted(offsets, rows, side="right") - 1
    out = np.empty((len(rows), parts[0][1].shape[1]), dtype=np.float32)
    for k in np.unique(which):
        mask = which == k
        # parts are sorted by id, so these rows are read (nearly) sequentially from the part file
        out[mask] = parts[k][1][rows[mask] - offsets[k]]
    return out


def _derive(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`derive_from_logits` on cache-sized slices, two at a time (same values, ~4x faster)."""
    n = len(labels)
    if n <= _DERIVE_ROWS:
        return derive_from_logits(logits, labels)
    starts = range(0, n, _DERIVE_ROWS)
    with ThreadPoolExecutor(_DERIVE_THREADS) as pool:  # numpy releases the GIL in these loops
        done = list(pool.map(lambda s: derive_from_logits(logits[s:s + _DERIVE_ROWS],
                                                          labels[s:s + _DERIVE_ROWS]), starts))
    return {key: np.concatenate([d[key] for d in done]) for key in done[0]}


def _shard_chunks(ids: np.ndarray, labels: np.ndarray, order: np.ndarray,
                  parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                  keep_logits: bool) -> Iterator[store.ShardChunk]:
    """The epoch's rows in id order, one row group at a time (bounded memory).

    The next row group is gathered and derived in a background thread while the caller
    compresses and writes the current one.
    """
    def make(start: int) -> store.ShardChunk:
        stop = start + store.ROW_GROUP_ROWS
        logits = _gather(parts, order[start:stop])
        lab = labels[start:stop]
        return ids[start:stop], lab, _derive(logits, lab), logits if keep_logits else None

    starts = list(range(0, len(ids), store.ROW_GROUP_ROWS))
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(make, starts[0])
        for nxt in [*starts[1:], None]:
            chunk = ahead.result()
            if nxt is not None:
                ahead = pool.submit(make, nxt)
            yield chunk


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (another recorder's spill) or already gone


_TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)$")


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Remove ``.NAME.tmp-PID`` files (half-written by :func:`store.atomic_write`) in the run and
    its ``epochs/`` whose process is gone: a run killed mid-write leaves them behind."""
    if os.name != "posix":
        return
    for folder in (run_dir, run_dir / store.SHARD_DIR):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            m = _TEMPORARY.match(entry.name)
            if not m or not entry.is_file() or int(m.group(1)) == os.getpid():
                continue
            try:
                os.kill(int(m.group(1)), 0)  # signal 0: existence check only
            except ProcessLookupError:
                entry.unlink(missing_ok=True)
            except (PermissionError, OverflowError, ValueError):
                continue


def _remove_stale_spills(root: Path) -> None:
    """Remove spill folders left by crashed recorders of this host (their process is gone)."""
    if os.name != "posix" or not root.is_dir():
        return
    host = socket.gethostname().replace("-", "_")
    for folder in root.iterdir():
        owner, _, rest = folder.name.partition("-")
        pid = rest.partition("-")[0]
        if owner != host or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: existence check only
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # alive (or not ours to judge)
    _remove_if_empty(root)


def _preview(values: np.ndarray, n: int = 3) -> str:
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:n])
    return shown + (", …" if len(values) > n else "")

