"""scikit-learn: ``partial_fit`` epochs for incremental estimators, stages for boosting ensembles.

::

    from datacarto.integrations.sklearn import record_partial_fit, record_staged

    # any classifier with partial_fit (SGDClassifier, MLPClassifier, the naive Bayes family, ...)
    dyn = record_partial_fit(SGDClassifier(loss="log_loss"), X, y, epochs=10, path="runs/sgd")

    # a fitted boosting ensemble: every stage is a checkpoint ("epoch")
    gb = GradientBoostingClassifier(n_estimators=50).fit(X, y)
    dyn = record_staged(gb, X, y, every=5, path="runs/gb")

Both return the run as :class:`~datacarto.TrainingDynamics`.

Capture modes of ``record_partial_fit``: ``"eval"`` (default) scores the whole training set
after each epoch; ``"pass"`` scores each mini-batch right after the ``partial_fit`` call on it
(scikit-learn exposes no forward pass inside ``partial_fit``, so this is the closest
in-training view: one update later than a network's training logits). Scores are
``predict_proba`` when the estimator has it (stored as probabilities), else
``decision_function`` (stored as logits; a binary model's single column z becomes
``[-z/2, z/2]``).

For ``record_staged`` the two modes coincide: stage i's predictions on the training set are
what the ensemble's next stage is fitted to (with ``subsample < 1`` only part of them), and
there is no dropout. ``capture`` is recorded as given.

Resume: ``record_partial_fit(..., epochs=E, path=RUN)`` on a run that already has R epochs
trains epochs R+1..E, so re-running it with the estimator as saved after epoch R (pickle)
finishes the same run. Mini-batch order is seeded by ``(seed, epoch)``. ``record_staged``
appends its stages to an existing run: record stages in pieces with ``stages=``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import require

require("sklearn", extra="sklearn", feature="datacarto.integrations.sklearn")

from ..dynamics import TrainingDynamics  # noqa: E402
from ..errors import InputError  # noqa: E402
from ..recording_config import RecordingConfig  # noqa: E402
from ._adapter import (AdapterRecorder, binary_to_logits, committed_epochs,  # noqa: E402
                       encode_labels, record_checkpoints, row_ids)

__all__ = ["record_partial_fit", "record_staged"]


def _rows(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _n_rows(X: Any) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def scorer(estimator: Any, where: str) -> tuple[str, Callable[[Any], np.ndarray]]:
    """``("probs", predict_proba)`` when available, else ``("logits", decision_function)``."""
    if hasattr(estimator, "predict_proba"):
        return "probs", lambda X: np.asarray(estimator.predict_proba(X))
    if hasattr(estimator, "decision_function"):
        def logits(X: Any) -> np.ndarray:
            z = np.asarray(estimator.decision_function(X))
            return binary_to_logits(z) if z.ndim == 1 else z
        return "logits", logits
    raise InputError(f"{where}: {type(estimator).__name__} has neither predict_proba nor "
                     "decision_function; datacarto needs per-class scores of a classifier.")


def record_partial_fit(estimator: Any, X: Any, y: Any, *, epochs: int,
                       path: str | Path | None = None, ids: Any = None,
                       batch_size: int | None = None, capture: str = "eval",
                       classes: Any = None, shuffle: bool = True, seed: int = 0,
                       on_epoch: Callable[[int, Any], None] | None = None,
                       meta: dict[str, Any] | None = None) -> TrainingDynamics:
    """Train ``estimator`` with ``partial_fit`` for ``epochs`` epochs and record each one.

    Parameters
    ----------
    estimator : classifier with ``partial_fit``
    X : array-like (n, d), sparse matrix or DataFrame
    y : array-like (n,)
        Labels as the estimator takes them (any values; mapped to ``classes``' order).
    epochs : int
        Total epochs of the run; a run at ``path`` that already has R epochs gets R+1..epochs.
    path : str or Path, optional
        Run directory; ``None`` records in memory.
    ids : sequence, optional
        Stable example ids; default the row positions 0..n-1.
    batch_size : int, optional
        Rows per ``partial_fit`` call; default all rows (one call per epoch).
    capture : {"eval", "pass"}
        See the module docstring.
    classes : array-like, optional
        All classes (``partial_fit`` needs them on the first call); default ``np.unique(y)``.
    shuffle, seed
        Mini-batch order: a permutation seeded by ``(seed, epoch)``.
    on_epoch : callable, optional
        ``on_epoch(epoch, estimator)`` after each recorded epoch (logging, checkpoints).

    Returns
    -------
    TrainingDynamics
        Every epoch of the run.

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> X = np.array([[0.0], [0.2], [1.0], [1.2]]); y = np.array([0, 0, 1, 1])
    >>> dyn = record_partial_fit(SGDClassifier(loss="log_loss", random_state=0), X, y, epochs=3)
    >>> dyn.gold_prob.shape
    (4, 3)
    """
    where = "record_partial_fit"
    config = RecordingConfig(capture=capture, seed=seed, meta=meta or {}, where=where).with_meta(
        integration="sklearn", estimator=type(estimator).__name__)
    if not hasattr(estimator, "partial_fit"):
        raise InputError(f"{where}: {type(estimator).__name__} has no partial_fit. For a fitted "
                         "boosting ensemble use record_staged; otherwise record each fit with "
                         "a Recorder.")
    if not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"{where}: epochs must be a positive integer; got {epochs!r}.")
    n = _n_rows(X)
    y_arr = np.asarray(y)
    if len(y_arr) != n:
        raise InputError(f"{where}: X has {n} rows but y has {len(y_arr)}.")
    example_ids = row_ids(ids, n, where)
    all_classes = np.unique(y_arr) if classes is None else np.asarray(classes)
    labels = encode_labels(y_arr, np.sort(all_classes), where=where)
    bs = n if batch_size is None else int(batch_size)
    if bs < 1:
        raise InputError(f"{where}: batch_size must be a positive integer; got {batch_size!r}.")
    inputs, score = scorer(estimator, where)
    config = config.replace(inputs=inputs, classes=[str(c) for c in np.sort(all_classes)],
                            where=where)
    rec = AdapterRecorder(where, path, config, expected_n=n)
    for epoch in range(committed_epochs(path) + 1, epochs + 1):
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            estimator.partial_fit(_rows(X, idx), y_arr[idx], classes=all_classes)
            if config.capture == "pass":
                rec.add(example_ids[idx], score(_rows(X, idx)), labels[idx])
        if config.capture == "eval":
            rec.add(example_ids, score(X), labels)
        rec.commit()
        if on_epoch is not None:
            on_epoch(epoch, estimator)
    rec.close()
    return rec.to_dynamics()


def _thin(stages: Iterator[Any], every: int, keep: set[int] | None) -> Iterator[tuple[int, Any]]:
    """(stage, output) for stages divisible by ``every`` plus the last, or those in ``keep``."""
    last: tuple[int, Any] | None = None
    for i, out in enumerate(stages, start=1):
        if keep is not None:
            if i in keep:
                yield i, out
        elif i % every == 0:
            yield i, out
            last = None
        else:
            last = (i, out)
    if last is not None:
        yield last


def record_staged(estimator: Any, X: Any, y: Any, *, path: str | Path | None = None,
                  ids: Any = None, every: int = 1, stages: Iterable[int] | None = None,
                  capture: str = "eval", meta: dict[str, Any] | None = None) -> TrainingDynamics:
    """Record a fitted boosting ensemble's stages on its training set, one "epoch" per stage.

    Uses ``staged_predict_proba`` (stored as probabilities) or, without it,
    ``staged_decision_function`` (stored as logits): GradientBoostingClassifier,
    HistGradientBoostingClassifier, AdaBoostClassifier, ...

    Parameters
    ----------
    estimator : fitted classifier with ``staged_predict_proba`` or ``staged_decision_function``
    X, y : the training set the ensemble was fitted on
    path, ids, capture, meta
        As for :func:`record_partial_fit`.
    every : int
        Record stages every, 2*every, ... and the last one.
    stages : iterable of int, optional
        Exactly these 1-based stages instead (e.g. the rest of an interrupted recording).

    Examples
    --------
    >>> from sklearn.ensemble import GradientBoostingClassifier
    >>> X = np.array([[0.0], [0.2], [1.0], [1.2]]); y = np.array([0, 0, 1, 1])
    >>> gb = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y)
    >>> record_staged(gb, X, y, every=2).n_epochs  # stages 2, 4 and 5
    3
    """
    where = "record_staged"
    config = RecordingConfig(capture=capture, meta=meta or {}, where=where).with_meta(
        integration="sklearn", estimator=type(estimator).__name__, checkpoint_unit="stage")
    if not isinstance(every, int) or every < 1:
        raise InputError(f"{where}: every must be a positive integer; got {every!r}.")
    if not hasattr(estimator, "classes_"):
        raise InputError(f"{where}: {type(estimator).__name__} is not fitted (no classes_). "
                         "Fit it on X, y first.")
    if hasattr(estimator, "staged_predict_proba"):
        inputs, staged = "probs", estimator.staged_predict_proba(X)
    elif hasattr(estimator, "staged_decision_function"):
        inputs = "logits"
        staged = (binary_to_logits(z) if np.ndim(z) == 1 else z
                  for z in estimator.staged_decision_function(X))
    else:
        raise InputError(f"{where}: {type(estimator).__name__} has no staged_predict_proba or "
                         "staged_decision_function. Use record_partial_fit for incremental "
                         "estimators, or the xgboost / lightgbm adapters.")
    n = _n_rows(X)
    labels = encode_labels(np.asarray(y), estimator.classes_, where=where)
    if len(labels) != n:
        raise InputError(f"{where}: X has {n} rows but y has {len(labels)}.")
    keep = None if stages is None else {int(s) for s in stages}
    config = config.replace(inputs=inputs, classes=[str(c) for c in estimator.classes_],
                            where=where)
    return record_checkpoints(where, path, _thin(iter(staged), every, keep),
                              ids=row_ids(ids, n, where), labels=labels, config=config)
