"""Epoch loop of the built-in models: train, record every row's dynamics, measure memorisation.

Every row is trained on and recorded in every scheme; they differ in how the held-out
accuracy per epoch (the memorisation curve) is obtained.

``"side"`` (the default)
    One model trains on all rows and is recorded, as in Swayamdipta et al. (2020). Beside it,
    *side models* of the same kind train on the folds of a random split (stratified by label):
    with ``n_folds = k`` folds, side model f trains on every fold but f and, after every epoch,
    predicts fold f. Every row is also held out once, and the side models' training and
    held-out accuracies give the curve. ``datacarto run`` uses k = 2 (two halves) above
    :data:`SMALL_DATA_ROWS` rows and k = 4 below (a model of half a small data set is too weak
    to judge its labels). Cost: about 2x the gradient steps of the recorded model with k = 2
    (1x for it, 1/2 + 1/2 for the side models), 4x with k = 4, plus one inference pass over all
    rows per epoch. The held-out logits of every row (k-fold cross-fitted, as cleanlab would
    use) are kept in ``heldout.parquet``.
``"crossfit"``
    No model on all rows: the two half models themselves are recorded, each on the half it
    trains on, and evaluated on the other. 1x the gradient steps plus one inference pass; but
    each model learns from N/2 rows, which cost 0.02–0.05 average precision of label-error
    ranking on the demo data (docs/run.md). Meant for expensive models (``finetune``).
``"none"``
    Only the model on all rows; no held-out curve.

Accuracies at epoch e are fractions of rows whose logits predict the *given* label: for
training rows the recorded (or side models' own-half) logits of the training or eval pass per
``capture``; for held-out rows the other half model's inference logits. Memorisation starts at
the first epoch from which the halves' training accuracy stays more than
:data:`~datacarto.memorisation.MEMORISATION_GAP` ahead of their held-out accuracy until the end
(:func:`datacarto.memorisation.memorisation_epoch`, the one definition, on ``gap``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..memorisation import MEMORISATION_GAP, memorisation_epoch
from ..progress import Progress
from ..recorder import Recorder
from .models import EpochModel

HELDOUT_SCHEMES = ("side", "crossfit", "none")
__all__ = ["HELDOUT_SCHEMES", "MEMORISATION_GAP", "TrainResult", "memorisation_epoch", "side_folds",
           "stratified_folds", "train_and_record"]


@dataclass
class TrainResult:
    """What one seed's training produced besides the recorded store."""

    curve: list[dict[str, Any]]
    folds: np.ndarray | None                     # (N,) fold 0..k-1 per row unless heldout="none"
    heldout_logits: np.ndarray | None            # (E, N, K) float32 unless heldout="none"
    train_seconds: float = 0.0                   # the recorded model(s), incl. eval passes
    heldout_seconds: float = 0.0                 # side models and held-out inference
    timings: list[dict[str, float]] = field(default_factory=list)


def stratified_folds(labels: np.ndarray, rng: np.random.Generator, k: int = 2) -> np.ndarray:
    """Fold 0..k-1 per row: within each class rows are shuffled and dealt to the folds in turn.

    Examples
    --------
    >>> f = stratified_folds(np.array([0, 0, 0, 0, 1, 1]), np.random.default_rng(0))
    >>> sorted(f[:4].tolist()), sorted(f[4:].tolist())
    ([0, 0, 1, 1], [0, 1])
    """
    folds = np.empty(len(labels), dtype=np.int8)
    start = int(rng.integers(k))  # odd-sized classes do not always favour fold 0
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        rows = rows[rng.permutation(len(rows))]
        folds[rows] = (np.arange(len(rows)) + start) % k
        start = (start + len(rows)) % k
    return folds


#: Up to this many rows the side models are SMALL_DATA_FOLDS (each trained on all but one
#: fold): with half the rows, a model of a small data set is too weak to judge its labels.
SMALL_DATA_ROWS = 5000
SMALL_DATA_FOLDS = 4


def side_folds(n_examples: int) -> int:
    """How many side models (folds) the held-out curve uses for ``n_examples`` rows.

    Examples
    --------
    >>> side_folds(1000), side_folds(20000)
    (4, 2)
    """
    return SMALL_DATA_FOLDS if n_examples <= SMALL_DATA_ROWS else 2


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return round(float((logits.argmax(axis=1) == labels).mean()), 6) if len(labels) else float("nan")


def train_and_record(make_model: Callable[[np.ndarray, int], EpochModel], labels: np.ndarray,
                     ids: np.ndarray, *, n_classes: int, recorder: Recorder, epochs: int,
                     capture: str, heldout: str, seed: int, progress: Progress,
                     step_label: str = "", n_folds: int = 2) -> TrainResult:
    """Train ``epochs`` epochs and commit one recorded epoch per epoch to ``recorder``.

    ``make_model(train_rows, model_seed)`` builds a fresh model; ``labels`` are class indices
    (N,) aligned with ``ids``; ``capture`` is "pass" or "eval"; ``heldout`` one of
    :data:`HELDOUT_SCHEMES` (module docstring); ``n_folds`` side models with ``"side"`` (each
    trains on all folds but one and predicts that one; ``"crossfit"`` always uses 2).
    """
    n = len(labels)
    everyone = np.arange(n)
    rng = np.random.default_rng(seed)
    k = 2 if heldout == "crossfit" else int(n_folds)
    folds = stratified_folds(labels, rng, k) if heldout != "none" else None
    parts = [] if folds is None else [np.flatnonzero(folds == f) for f in range(k)]
    seeds = iter(int(s) for s in rng.integers(0, 2**31 - 1, size=k + 1))
    # (model, rows it trains on, rows it predicts held out, recorded?) -- the recorded ones
    # cover every row exactly once
    members: list[tuple[EpochModel, np.ndarray, np.ndarray | None, bool]] = []
    if heldout in ("side", "none"):
        members.append((make_model(everyone, next(seeds)), everyone, None, True))
    for f, part in enumerate(parts):
        if heldout == "crossfit":
            train, other = part, parts[1 - f]
        else:
            train = np.flatnonzero(folds != f) if k > 2 else parts[1 - f]
            other = part
        members.append((make_model(train, next(seeds)), train, other, heldout == "crossfit"))
    recorded = np.zeros((n, n_classes), dtype=np.float32)
    own = np.zeros((n, n_classes), dtype=np.float32)     # half models on their own half
    held = np.zeros((epochs, n, n_classes), dtype=np.float32) if folds is not None else None
    result = TrainResult(curve=[], folds=folds, heldout_logits=held)
    steps = sum(len(rows) for _, rows, _, _ in members)
    for epoch in range(1, epochs + 1):
        progress.start(f"{step_label}epoch {epoch}/{epochs}", total=steps)
        t_main = t_side = 0.0
        for model, rows, other, is_recorded in members:
            is_half = other is not None
            sink = recorded if is_recorded else own

            def on_batch(batch: np.ndarray, logits: Any, sink: np.ndarray = sink) -> None:
                if capture == "pass":
                    sink[batch] = logits
                progress.advance(len(batch))

            t0 = time.perf_counter()
            model.fit_epoch(rows, rng, on_batch)
            t1 = time.perf_counter()
            held_share = 0.0  # seconds of held-out inference, an overhead in every scheme
            if is_half:
                assert held is not None and other is not None
                if capture == "eval":
                    both = model.logits(everyone)  # one inference pass: own half + held-out half
                    sink[rows] = both[rows]
                    held[epoch - 1, other] = both[other]
                    held_share = (time.perf_counter() - t1) * len(other) / n
                else:
                    held[epoch - 1, other] = model.logits(other)
                    held_share = time.perf_counter() - t1
                if is_recorded:
                    own[rows] = sink[rows]
            elif capture == "eval":
                recorded[rows] = model.logits(rows)
            seconds = time.perf_counter() - t0
            if is_recorded:
                t_main += seconds - held_share
                t_side += held_share
            else:
                t_side += seconds
        recorder.update(ids, recorded, labels)
        recorder.end_epoch()
        point: dict[str, Any] = {"epoch": epoch, "train_acc": _accuracy(recorded, labels)}
        note = f"train acc {point['train_acc']:.3f}"
        if held is not None:
            point["halves_train_acc"] = _accuracy(own, labels)
            point["heldout_acc"] = _accuracy(held[epoch - 1], labels)
            point["gap"] = round(point["halves_train_acc"] - point["heldout_acc"], 6)
            note += f", held-out acc {point['heldout_acc']:.3f}"
        if heldout == "side":
            note += " (ex: mapped + side models)"
        result.curve.append(point)
        result.train_seconds += t_main
        result.heldout_seconds += t_side
        result.timings.append({"epoch": epoch, "train_s": round(t_main, 4),
                               "heldout_s": round(t_side, 4)})
        progress.finish(note)
    return result
