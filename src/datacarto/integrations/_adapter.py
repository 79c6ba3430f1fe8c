"""Framework-free core shared by every integration: validate, buffer per rank, gather, commit.

An adapter (a callback, a loop helper, a ``record_*`` function) converts its framework's batch
to ``(ids, outputs, labels)`` and hands it to :class:`AdapterRecorder`, which

- checks what :class:`~datacarto.Recorder` cannot know: that the batch carried ids at all, that
  the outputs are per-class scores and not probabilities passed as logits;
- prefixes every error with the adapter's name, so the user knows which line to change;
- under data parallelism (a ``dist`` object with ``rank``, ``world_size``, ``gather`` and
  ``broadcast``), buffers rows on every rank and gathers them to rank 0, the only writer;
- commits only whole epochs: an epoch that saw fewer distinct ids than the training set is an
  error (``drop_last``, a step limit) or, when training stopped on purpose, is dropped.

Arrays: ids (n,), outputs (n, K), labels (n,). No framework is imported here.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import store
from .._validation import check_ids, check_labels, fmt_id, to_numpy
from ..dynamics import TrainingDynamics
from ..errors import DatacartoError, InputError, StateError
from ..probability import looks_like_probs
from ..recorder import Recorder
from ..recording_config import RecordingConfig


class Dist(Protocol):
    """What an adapter needs from a distributed backend (torch.distributed in practice)."""

    rank: int
    world_size: int

    def gather(self, obj: Any) -> list[Any] | None: ...  # list on rank 0, None elsewhere

    def broadcast(self, obj: Any) -> Any: ...  # rank 0's obj on every rank


class SingleProcess:
    """The trivial :class:`Dist`: one process, rank 0."""

    rank = 0
    world_size = 1

    def gather(self, obj: Any) -> list[Any]:
        return [obj]

    def broadcast(self, obj: Any) -> Any:
        return obj


def binary_to_logits(scores: np.ndarray) -> np.ndarray:
    """A binary model's single log-odds column z (n,) as the logits ``[-z/2, z/2]`` (n, 2).

    ``softmax([-z/2, z/2]) = [1 - sigmoid(z), sigmoid(z)]`` and the margin of class 1 is ``z``.
    """
    z = np.asarray(scores, dtype=np.float64).reshape(-1)
    return np.stack([-z / 2.0, z / 2.0], axis=1)


def encode_labels(y: Any, classes: Any, *, where: str) -> np.ndarray:
    """Map labels as the estimator saw them to indices into its ``classes_`` (sorted, unique)."""
    cls = np.asarray(classes)
    arr = np.asarray(to_numpy(y))
    if arr.ndim != 1:
        raise InputError(f"{where}: y must be 1-D; got shape {arr.shape}.")
    try:
        pos = np.searchsorted(cls, arr)
    except TypeError as err:
        raise InputError(f"{where}: y holds {arr.dtype} values but the model's classes_ are "
                         f"{cls.dtype}; pass the labels the model was fitted on.") from err
    pos_c = np.clip(pos, 0, len(cls) - 1)
    bad = cls[pos_c] != arr
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{where}: y[{i}] = {fmt_id(arr[i])} is not one of the model's classes "
                         f"{cls.tolist()}. Pass the labels the model was fitted on.")
    return pos_c.astype(np.int64)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _cat(parts: list[Any]) -> Any:
    """Concatenate per-batch ids or labels: tensors with torch.cat, the rest as numpy."""
    if all(_is_torch(p) for p in parts):
        import torch

        return torch.cat([p.reshape(-1) for p in parts])
    if all(isinstance(p, list) for p in parts):
        return [v for p in parts for v in p]
    return np.concatenate([np.asarray(to_numpy(p)).reshape(-1) for p in parts])


_RECORDER_WHERE = re.compile(r"^Recorder\.update \(epoch \d+, batch \d+\): ")


def _reword(err: Exception) -> str:
    """The Recorder's message without its own "Recorder.update (epoch, batch)" prefix."""
    return _RECORDER_WHERE.sub("", str(err))


def row_ids(ids: Any, n: int, where: str) -> np.ndarray:
    """The ids of n rows of X: the row numbers by default, else unique user ids, one per row."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = check_ids(list(ids) if not isinstance(ids, np.ndarray) else ids, where=where)
    if len(arr) != n:
        raise InputError(f"{where}: ids has {len(arr)} entries but X has {n} rows; give one id "
                         "per row.")
    if len(np.unique(arr)) != n:
        raise InputError(f"{where}: ids must be unique.")
    return arr


def drop_pending(rec: Recorder) -> None:
    """Forget a recorder's rows since its last committed epoch (a partial epoch)."""
    rec.discard_epoch()


def n_pending(rec: Recorder) -> int:
    """Rows a recorder holds for its unfinished epoch (in memory and spilled)."""
    return rec.pending_rows


def committed_epochs(path: str | Path | None) -> int:
    """Number of epochs committed in the run at ``path`` (0 for none or no run yet)."""
    if path is None or not (Path(path) / store.RUN_FILE).exists():
        return 0
    return len(store.read_run_json(path).epochs)


def truncate_run(path: str | Path, keep: int) -> int:
    """Forget every committed epoch after ``keep`` (a resume from an earlier checkpoint).

    ``run.json`` is rewritten first (atomically), then the orphaned shards are removed, so a
    crash in between leaves a valid run. Returns the number of epochs dropped.
    """
    path = Path(path)
    if not (path / store.RUN_FILE).exists():
        return 0
    meta = store.read_run_json(path)
    drop = [e for e in meta.epochs if e > keep]
    if not drop:
        return 0
    names = [n for e in drop for n in meta.shards.get(str(e), ())]
    store.write_run_json(path, meta.truncated(keep))
    for name in names:
        (path / name).unlink(missing_ok=True)
    return len(drop)


class AdapterRecorder:
    """A :class:`~datacarto.Recorder` behind the checks and rank logic every adapter shares.

    Parameters
    ----------
    adapter : str
        Shown at the start of every error, e.g. ``"DataMapCallback (Lightning)"``.
    path : str, Path or None
        The run directory; only rank 0 writes it.
    config : RecordingConfig
        The recording's settings, built by the adapter from its own keywords. Its
        ``on_duplicate`` defaults to ``"first"`` when more than one rank records
        (DistributedSampler repeats examples to even out the ranks).
    dist : callable returning a :class:`Dist`, optional
        Called at first use, so a process group created after the adapter is still seen.
    expected_n : int, optional
        Size of the training set; an epoch with fewer distinct ids is not committed.
    ids_hint, incomplete_hint : str
        The adapter-specific fix appended to "no ids" and "incomplete epoch" errors.
    """

    def __init__(self, adapter: str, path: str | Path | None, config: RecordingConfig, *,
                 dist: Callable[[], Dist] | None = None, expected_n: int | None = None,
                 ids_hint: str = "", incomplete_hint: str = "", flush_every: int = 32) -> None:
        self.adapter = adapter
        self.path = None if path is None else Path(path)
        self.config = config
        self.expected_n = expected_n
        self.ids_hint = ids_hint
        self.incomplete_hint = incomplete_hint
        self._dist_factory = dist
        self._dist: Dist | None = None
        self._rec: Recorder | None = None
        self._batches = 0  # batches added since the last commit
        self.flush_every = flush_every
        self._held: list[tuple[int, Any, Any, Any]] = []  # (batch, ids, outputs, labels)

    # ----------------------------------------------------------------- set-up
    @property
    def dist(self) -> Dist:
        if self._dist is None:
            self._dist = self._dist_factory() if self._dist_factory is not None else SingleProcess()
        return self._dist

    @property
    def is_writer(self) -> bool:
        """True on the one process that writes the run (world rank 0)."""
        return self.dist.rank == 0

    @property
    def recorder(self) -> Recorder:
        """The underlying Recorder (the writer on rank 0, an in-memory buffer elsewhere)."""
        if self._rec is None:
            d = self.dist
            config = self.config.replace(on_duplicate=self.config.duplicate_policy(d.world_size),
                                         where=self.adapter)
            self._rec = Recorder(self.path if d.rank == 0 else None, config=config)
        return self._rec

    @property
    def epoch(self) -> int:
        """1-based number of the epoch being recorded now (as rank 0 sees it)."""
        mine = self.recorder.epoch if self.is_writer else 0
        return int(self.dist.broadcast(mine)) if self.dist.world_size > 1 else mine

    def _where(self, batch: int | None = None) -> str:
        epoch = self.recorder.epoch if self.is_writer else "?"
        return f"{self.adapter} (epoch {epoch}, batch {self._batches if batch is None else batch})"

    # ------------------------------------------------------------------- rows
    def add(self, ids: Any, outputs: Any, labels: Any) -> None:
        """Take one batch; errors name the adapter, the epoch and the batch.

        The first batch of every epoch is checked at once. Later batches of framework tensors
        are held (detached) and handed to the Recorder ``flush_every`` at a time: one
        device-to-host copy and one round of checks per group instead of per step. A group
        that fails is re-checked batch by batch, so the error still names its batch.
        """
        self._batches += 1
        if ids is None:
            raise InputError(f"{self._where()}: the batch carries no example ids. "
                             f"{self.ids_hint}".rstrip())
        if labels is None:
            raise InputError(f"{self._where()}: the batch carries no labels. Make the labels part "
                             "of each batch (or of the step's outputs) so that every row has its "
                             "gold class.")
        if outputs is None:
            raise InputError(f"{self._where()}: the model returned no logits. Return the logits "
                             "of the training forward pass (see docs/integrations.md).")
        shape = tuple(getattr(outputs, "shape", ()))
        if self._batches > 1 and self.flush_every > 1 and len(shape) == 2 and shape[1] >= 2 \
                and _is_torch(outputs):
            self._held.append((self._batches, ids, outputs.detach().clone(), labels))
            if len(self._held) >= self.flush_every:
                self.flush()
            return
        self.flush()
        self._check_and_update(self._batches, ids, outputs, labels)

    def _check_and_update(self, batch: int, ids: Any, outputs: Any, labels: Any) -> None:
        out = to_numpy(outputs)
        if out.ndim != 2 or out.shape[1] < 2:
            raise InputError(f"{self._where(batch)}: expected logits of shape (batch, n_classes) "
                             f"with n_classes >= 2; got shape {out.shape}. Pass the model's "
                             "per-class scores, not predicted classes or a loss (a binary model "
                             "with one output z: pass [-z/2, z/2]).")
        if self.config.inputs == "logits" and batch == 1 and looks_like_probs(out):
            raise InputError(f"{self._where(batch)}: the outputs look like probabilities (each "
                             "row is in [0, 1] and sums to 1), not logits. Pass the logits (drop "
                             "the final softmax), or declare probabilities with inputs='probs'.")
        try:
            self.recorder.update(ids, out, labels)
        except InputError as err:
            raise InputError(f"{self._where(batch)}: {_reword(err)}") from err

    def flush(self) -> None:
        """Hand the held batches to the Recorder (one concatenated update)."""
        held, self._held = self._held, []
        if not held:
            return
        try:
            import torch  # only ever reached with torch tensors held

            outs = torch.cat([h[2] for h in held])
            ids = _cat([h[1] for h in held])
            labels = _cat([h[3] for h in held])
        except (RuntimeError, TypeError, ValueError):
            ids = None
        if ids is not None:
            try:
                self.recorder.update(ids, to_numpy(outs), labels)
                return
            except InputError:
                pass  # find the batch below; nothing was added
        scratch = Recorder(None, config=RecordingConfig(num_classes=self.recorder.num_classes,
                                                        inputs=self.config.inputs))
        for batch, b_ids, b_out, b_labels in held:
            out = to_numpy(b_out)
            try:
                scratch.update(b_ids, out, b_labels)
            except InputError as err:
                raise InputError(f"{self._where(batch)}: {_reword(err)}") from err
        for batch, b_ids, b_out, b_labels in held:  # pragma: no cover - each batch passed alone
            self._check_and_update(batch, b_ids, b_out, b_labels)

    # ----------------------------------------------------------------- epochs
    def commit(self) -> int:
        """Gather every rank's rows, commit them as the next epoch on rank 0; return its number.

        A collective under data parallelism: every rank must call it.
        """
        self.flush()
        d = self.dist
        rec = self.recorder
        self._batches = 0
        states = d.gather(None if d.rank == 0 else rec.state_dict()) if d.world_size > 1 else []
        if d.rank != 0:
            drop_pending(rec)
        outcome: tuple[str, Any]
        if d.rank == 0:
            try:
                for state in (states or [])[1:]:
                    self._merge_state(state)
                self._check_complete()
                outcome = ("ok", rec.end_epoch())
            except DatacartoError as err:
                drop_pending(rec)
                if d.world_size == 1:
                    if str(err).startswith(self.adapter):
                        raise
                    raise type(err)(f"{self.adapter}: {err}") from err
                outcome = ("error", (type(err).__name__, str(err)))
                d.broadcast(outcome)
                raise
        else:
            outcome = ("", None)
        if d.world_size > 1:
            outcome = d.broadcast(outcome)
        if outcome[0] == "error":
            name, msg = outcome[1]
            raise (StateError if name == "StateError" else InputError)(f"rank 0: {msg}")
        return int(outcome[1])

    def _merge_state(self, state: dict[str, Any]) -> None:
        if state is None or not len(state["ids"]):
            return
        other = Recorder(None, num_classes=int(state["num_classes"]))
        other.load_state_dict({**state, "epoch": 0})
        self.recorder.merge(other)

    def _check_complete(self) -> None:
        if self.expected_n is None:
            return
        ids = self.recorder.pending_ids()
        seen = len(np.unique(ids)) if len(ids) else 0
        if seen != self.expected_n:
            raise InputError(
                f"{self.adapter}: epoch {self.recorder.epoch} saw {seen} distinct example ids but "
                f"the training set has {self.expected_n}; every example must be recorded once per "
                f"epoch. {self.incomplete_hint}".rstrip())

    def discard(self, reason: str | None = None) -> None:
        """Drop this rank's rows of a partial epoch (training stopped mid-epoch), warning why."""
        rec = self.recorder
        n = n_pending(rec) + sum(len(h[2]) for h in self._held)
        self._held = []
        drop_pending(rec)
        self._batches = 0
        if reason and n and self.is_writer:
            warnings.warn(f"{self.adapter}: {reason}", UserWarning, stacklevel=3)

    # ----------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any] | None:
        """Committed epoch count and every rank's pending rows, on rank 0 (None elsewhere).

        A collective under data parallelism. Plain numpy arrays and ints: no pickle needed.
        """
        self.flush()
        d = self.dist
        own = self.recorder.state_dict()
        states = d.gather(None if d.rank == 0 else own) if d.world_size > 1 else [own]
        if d.rank != 0:
            return None
        parts = [own] + [s for s in (states or [])[1:] if s is not None and len(s["ids"])]
        parts = [p for p in parts if len(p["ids"])]
        k = next((p["num_classes"] for p in parts), self.recorder.num_classes)
        return {
            "epoch": int(own["epoch"]),
            "num_classes": k,
            "ids": np.concatenate([p["ids"] for p in parts]) if parts else np.zeros(0, np.int64),
            "outputs": (np.concatenate([p["outputs"] for p in parts]) if parts
                        else np.zeros((0, k or 0), np.float32)),
            "labels": np.concatenate([p["labels"] for p in parts]) if parts else np.zeros(0, np.int64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: forget epochs committed after ``state`` was taken, then restore its pending rows.

        Only rank 0 holds the rows afterwards; other ranks start the epoch empty.
        """
        keep = int(state["epoch"])
        if self.is_writer:
            self.truncate(keep)
            if len(state["ids"]):
                self.recorder.load_state_dict({**state, "ids": check_ids(state["ids"]),
                                               "labels": check_labels(state["labels"],
                                                                      n_classes=None)})
        self._batches = 0

    def truncate(self, keep: int) -> None:
        """Rank 0: drop committed epochs after ``keep`` from the run on disk and reopen it."""
        if self.path is None or not self.is_writer:
            return
        if truncate_run(self.path, keep):
            self.recorder.reset()  # reopen lazily from the truncated run.json

    def committed(self) -> int:
        """Number of committed epochs (rank 0's view, broadcast)."""
        return self.epoch - 1

    def close(self) -> None:
        self._held = []
        if self._rec is not None:
            self._rec.close()

    def to_dynamics(self) -> TrainingDynamics:
        """All committed epochs (rank 0 only)."""
        if not self.is_writer:
            raise StateError(f"{self.adapter}: only rank 0 holds the run; call to_dynamics() there.")
        return self.recorder.to_dynamics()


def record_checkpoints(adapter: str, path: str | Path | None,
                       checkpoints: Iterable[tuple[int, Any]], *, ids: np.ndarray,
                       labels: np.ndarray, config: RecordingConfig) -> TrainingDynamics:
    """Record one "epoch" per ``(checkpoint, outputs)`` pair (boosting stages, iterations).

    ``outputs`` are the scores of the model truncated at that checkpoint on every training row.
    """
    rec = AdapterRecorder(adapter, path, config, expected_n=len(ids))
    n = 0
    for _, outputs in checkpoints:
        rec.add(ids, outputs, labels)
        rec.commit()
        n += 1
    if n == 0:
        raise InputError(f"{adapter}: no checkpoints to record; the model has no fitted stages "
                         "in the requested range.")
    rec.close()
    return rec.to_dynamics()
