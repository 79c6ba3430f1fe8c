"""Keras 3: a callback that records training dynamics, from an epoch-end pass or the train step.

Eval mode (the default, any backend)::

    from datacarto.integrations.keras import DataMapCallback

    cb = DataMapCallback("runs/mine", x_train, y_train, ids=ids)      # ids optional: 0..N-1
    model.fit(x_train, y_train, batch_size=32, epochs=5, callbacks=[cb])

At each epoch end the callback runs ``model.predict`` on the training set (unshuffled,
inference mode). A model that ends in softmax/sigmoid outputs probabilities: say so with
``inputs="probs"``.

Pass mode (torch backend, or any backend with ``run_eagerly=True``) records the outputs of
the training step itself. Keras callbacks see no outputs, so the callback supplies the
training data, with each batch's row positions in the sample-weight slot, and wraps the
model's ``train_step`` (to take the positions out before Keras sees them) and
``compute_metrics`` (which receives ``y_pred``) for the duration of ``fit``::

    cb = DataMapCallback("runs/mine", x_train, y_train, capture="pass")
    model.fit(cb.train_data(batch_size=32), epochs=5, callbacks=[cb])

The batch order is a permutation seeded by ``(seed, epoch)``, so ``fit(initial_epoch=k)``
replays it. Per-example sample weights cannot be combined with pass mode.

Resume: ``fit(initial_epoch=k)`` (or ``BackupAndRestore``) continues the run after its k-th
epoch; run epochs recorded after k are dropped first. Keras restarts an interrupted epoch
from its beginning, so no partial epoch is ever kept. Keras has no data-parallel ``fit`` on
the torch backend; this adapter records a single process.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import require
from ..errors import InputError, MissingDependencyError

try:
    keras = require("keras", extra="keras", feature="DataMapCallback for Keras")
except MissingDependencyError:
    raise
except ImportError as err:  # e.g. the default TensorFlow backend is not installed
    raise MissingDependencyError(
        f"DataMapCallback for Keras: importing keras failed ({err}). Keras 3 needs a backend: "
        "set KERAS_BACKEND=torch (pip install 'datacarto[keras]' installs torch) or jax before "
        "importing keras.") from err

from .._validation import check_ids, to_numpy  # noqa: E402
from ..recording_config import RecordingConfig  # noqa: E402
from ._adapter import AdapterRecorder, binary_to_logits  # noqa: E402

__all__ = ["DataMapCallback"]

ADAPTER = "DataMapCallback (Keras)"


def _take(x: Any, idx: np.ndarray) -> Any:
    if isinstance(x, dict):
        return {k: _take(v, idx) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_take(v, idx) for v in x)
    return np.asarray(x)[idx]


def _n_rows(x: Any) -> int:
    if isinstance(x, dict):
        return _n_rows(next(iter(x.values())))
    if isinstance(x, (list, tuple)):
        return _n_rows(x[0])
    return len(x)


class _RowsWithPositions(keras.utils.PyDataset):
    """Batches ``(x, y, positions)`` in an order seeded by ``(seed, epoch)``."""

    def __init__(self, x: Any, y: np.ndarray, batch_size: int, seed: int) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.n = len(y)
        self.epoch = 0
        self._order: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def order(self) -> np.ndarray:
        if self._order is None or self._order[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            self._order = (self.epoch, rng.permutation(self.n))
        return self._order[1]

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray, np.ndarray]:
        pos = self.order()[index * self.batch_size:(index + 1) * self.batch_size]
        return _take(self.x, pos), self.y[pos], pos.astype(np.int64)


class DataMapCallback(keras.callbacks.Callback):
    """Record per-example training dynamics from ``model.fit``.

    Parameters
    ----------
    path : str, Path or None
        Run directory (``None``: in memory, see :meth:`to_dynamics`).
    x : array or dict / list of arrays
        The training inputs, as given to ``fit``.
    y : array (n,) of class indices, or (n, K) one-hot
        The training labels.
    ids : sequence of int or str, optional
        Stable example ids; default the row positions 0..n-1.
    capture : {"eval", "pass"}
        See the module docstring. Default ``"eval"``.
    batch_size : int
        Batch size of the eval-mode ``predict``.
    inputs : {"logits", "probs"}
        ``"probs"`` when the model ends in softmax (or a single sigmoid unit).
    classes, seed, meta
        As for :class:`~datacarto.Recorder`; ``seed`` also seeds pass mode's batch order. The
        recording settings are collected in :attr:`config`, a
        :class:`~datacarto.recording_config.RecordingConfig`.
    """

    def __init__(self, path: str | Path | None, x: Any, y: Any, *, ids: Any = None,
                 capture: str = "eval", batch_size: int = 256, inputs: str = "logits",
                 classes: list[str] | None = None, seed: int = 0,
                 meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = RecordingConfig(  # validated now: a typo fails before fit
            capture=capture, inputs=inputs, classes=classes, seed=seed, meta=meta or {},
            where=ADAPTER).with_meta(integration="keras")
        self.path = path
        self.x = x
        self.labels = self._labels(y)
        n = _n_rows(x)
        if len(self.labels) != n:
            raise InputError(f"{ADAPTER}: x has {n} rows but y has {len(self.labels)}; give one "
                             "label per training row.")
        self.ids = np.arange(n) if ids is None else check_ids(
            list(ids) if not isinstance(ids, np.ndarray) else ids, where=ADAPTER)
        if len(self.ids) != n:
            raise InputError(f"{ADAPTER}: ids has {len(self.ids)} entries but x has {n} rows; give "
                             "one id per training row.")
        self.batch_size = batch_size
        self._rec: AdapterRecorder | None = None
        self._data: _RowsWithPositions | None = None
        self._first_epoch: int | None = None
        self._positions: Any = None
        self._in_step = False

    @staticmethod
    def _labels(y: Any) -> np.ndarray:
        arr = np.asarray(to_numpy(y))
        if arr.ndim == 2 and arr.shape[1] > 1:
            return arr.argmax(axis=1)  # one-hot / categorical targets
        return arr.reshape(-1) if arr.ndim == 2 else arr

    def train_data(self, batch_size: int = 32) -> keras.utils.PyDataset:
        """The training set for ``fit`` in pass mode: batches carry their row positions."""
        self._data = _RowsWithPositions(self.x, self.labels, batch_size, self.config.seed or 0)
        return self._data

    # ----------------------------------------------------------------- fit
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._rec = AdapterRecorder(
            ADAPTER, self.path, self.config, expected_n=len(self.ids),
            ids_hint="In pass mode train on callback.train_data(): "
                     "model.fit(cb.train_data(batch_size=32), callbacks=[cb]).")
        self._first_epoch = None
        if self.config.capture == "pass":
            self._wrap(self.model)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._unwrap(self.model)
        if self._rec is not None:
            self._rec.close()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        rec = self._rec
        assert rec is not None
        if self._first_epoch is None:
            self._first_epoch = epoch
            if epoch > 0:  # fit(initial_epoch=epoch): the run continues after that epoch
                rec.truncate(epoch)
        if self._data is not None:
            self._data.epoch = epoch
        rec.discard()  # an epoch restarted by Keras begins empty

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        rec = self._rec
        assert rec is not None
        if self.config.capture == "eval":
            out = self.model.predict(self.x, batch_size=self.batch_size, verbose=0)
            rec.add(self.ids, self._scores(out), self.labels)
        rec.commit()

    # ---------------------------------------------------------- pass mode
    def _scores(self, out: Any) -> Any:
        arr = to_numpy(out)
        if arr.ndim == 2 and arr.shape[1] == 1:  # one sigmoid / logit unit
            if self.config.inputs == "probs":
                return np.concatenate([1.0 - arr, arr], axis=1)
            return binary_to_logits(arr[:, 0])
        return arr

    def _wrap(self, model: Any) -> None:
        train_step = type(model).train_step.__get__(model)
        compute_metrics = type(model).compute_metrics.__get__(model)

        def step(data: Any) -> Any:
            if not (isinstance(data, (tuple, list)) and len(data) == 3 and _int_positions(data[2])):
                rec = self._rec
                assert rec is not None
                rec.add(None, None, None)  # raises: no ids
            x, y, pos = data
            self._positions = pos
            self._in_step = True
            try:
                return train_step((x, y))
            finally:
                self._in_step = False
                self._positions = None

        def metrics(x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
            if self._in_step and self._rec is not None:
                pos = to_numpy(self._positions).astype(np.int64)
                self._rec.add(self.ids[pos], self._scores(y_pred), self._labels(y))
            return compute_metrics(x, y, y_pred, sample_weight=sample_weight)

        model.train_step = step
        model.compute_metrics = metrics

    @staticmethod
    def _unwrap(model: Any) -> None:
        for name in ("train_step", "compute_metrics"):
            if name in vars(model):
                delattr(model, name)

    def to_dynamics(self) -> Any:
        """The recorded run as :class:`~datacarto.TrainingDynamics` (after ``fit``)."""
        assert self._rec is not None
        return self._rec.to_dynamics()


def _int_positions(x: Any) -> bool:
    arr = to_numpy(x)
    return arr.ndim == 1 and arr.dtype.kind in "iu"
