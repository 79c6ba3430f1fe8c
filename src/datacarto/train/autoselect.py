"""``--model auto``: choose the model family, learning rate and epochs from held-out curves.

A data map is only as good as the model behind it: an under-fitting model leaves every row
near the middle of the map and its "suspects" are simply the rows it has not learned yet.
So ``datacarto run`` does not fix the model; it tries a few candidate families on the data
and keeps the one that generalises best.

Each candidate trains the side models of the held-out scheme (:mod:`datacarto.train.loop`):
k models of that kind (:func:`~datacarto.train.loop.side_folds`: 2 halves, or 4 folds up to
5,000 rows), each trained on all folds but one and predicting that fold after every epoch.
That gives a held-out accuracy per epoch for every row at the cost of k - 1 passes over the
data per epoch. A candidate stops when its
smoothed held-out accuracy has not improved by more than :data:`IMPROVEMENT` for
:data:`PATIENCE` epochs (or at the cap).

Choice
    the candidate with the highest peak held-out accuracy; a cheaper candidate (earlier in
    the list) wins ties within :data:`TIE` (about one standard error of accuracy on
    1,000–2,000 rows), so a linear model is kept unless a larger one is clearly better.
Epochs
    ``E = clip(p + max(MIN_EXTRA, ceil(EXTRA_SHARE * p)), MIN_EPOCHS, cap)`` where ``p`` is
    the epoch at which the chosen candidate's smoothed held-out accuracy first came within
    :data:`PLATEAU_TOLERANCE` of its best: trained to the plateau, then a few epochs past it
    so that memorisation (if any) shows in the dynamics and the label-error window
    (:mod:`datacarto.label_errors`) can end before it.

Candidates (cheapest first)
    text: TF-IDF + softmax regression; TF-IDF reduced to :data:`LSA_DIM` dimensions (LSA)
    + MLP (up to :data:`LSA_MAX_ROWS` rows). tabular: standardised features + softmax
    regression; + MLP(128). Gradient-boosted trees (``--model gbt``) are not a candidate
    (see :func:`candidates`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..progress import Progress
from .loop import side_folds, stratified_folds
from .models import MLP, EpochModel, SoftmaxRegression

#: Epoch cap of the search and of the chosen model.
MAX_EPOCHS = 40
#: Fewest epochs of the recorded run: variability needs a few epochs to mean anything.
MIN_EPOCHS = 5
#: Epochs trained past the held-out plateau: max(MIN_EXTRA, EXTRA_SHARE * plateau epoch).
MIN_EXTRA = 3
EXTRA_SHARE = 0.5
#: Held-out accuracy within this of the best counts as the plateau.
PLATEAU_TOLERANCE = 0.005
#: A candidate stops after PATIENCE epochs without IMPROVEMENT of its smoothed held-out accuracy.
PATIENCE = 4
IMPROVEMENT = 0.002
#: Peak held-out accuracies within TIE are equal; the cheaper candidate wins.
TIE = 0.01
#: Dimensions of the LSA (truncated SVD) reduction of TF-IDF for the text MLP, and the most
#: rows it is tried on: the SVD costs more than every other step of a run beyond that size,
#: where the linear model on the full TF-IDF has rarely been beaten.
LSA_DIM = 128
LSA_MAX_ROWS = 3000
#: Optimiser steps per epoch the batch size aims at, and its bounds.
STEPS_PER_EPOCH = 50
MIN_BATCH = 32
MAX_BATCH = 512


@dataclass(frozen=True)
class Candidate:
    """One model family with its hyper-parameters; ``input`` says which features it reads."""

    model: str                      # "linear" or "mlp" (the RunOptions.model it maps to)
    input: str                      # "tfidf", "lsa" or "tabular"
    hyper: dict[str, Any]

    @property
    def name(self) -> str:
        if self.model == "mlp":
            return f"{'lsa+' if self.input == 'lsa' else ''}mlp({self.hyper['hidden']})"
        return f"{'tfidf+' if self.input == 'tfidf' else ''}linear"


@dataclass
class Trial:
    """A candidate's held-out accuracy per epoch."""

    candidate: Candidate
    heldout_acc: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def best(self) -> float:
        return float(max(self.heldout_acc)) if self.heldout_acc else float("nan")


@dataclass
class Selection:
    """The outcome of :func:`search`."""

    chosen: Candidate
    epochs: int
    plateau_epoch: int
    trials: list[Trial]
    seconds: float

    def describe(self) -> str:
        """One line, e.g. ``auto: mlp(128), 23 epochs — held-out 0.871 vs linear 0.612``."""
        best = next(t for t in self.trials if t.candidate == self.chosen)
        others = [f"{t.candidate.name} {t.best:.3f}" for t in self.trials if t is not best]
        vs = f" vs {', '.join(others)}" if others else ""
        return (f"auto: {self.chosen.name}, {self.epochs} epochs — held-out accuracy "
                f"{best.best:.3f}{vs} (plateau at epoch {self.plateau_epoch}; search "
                f"{self.seconds:.1f} s)")

    def as_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen.name, "epochs": self.epochs,
                "plateau_epoch": self.plateau_epoch, "seconds": round(self.seconds, 3),
                "trials": [{"candidate": t.candidate.name, "best_heldout_acc": round(t.best, 6),
                            "epochs_tried": len(t.heldout_acc),
                            "heldout_acc": [round(a, 6) for a in t.heldout_acc],
                            "seconds": round(t.seconds, 3)} for t in self.trials]}


def candidates(kind: str, n_examples: int) -> list[Candidate]:
    """The candidate families for ``kind`` ("text" or "tabular"), cheapest first.

    Batches hold ``N / STEPS_PER_EPOCH`` rows (within [MIN_BATCH, MAX_BATCH]) so that an epoch
    is about the same number of optimiser steps whatever N: the learning rates below then
    reach the held-out plateau in a similar number of epochs on small and large data, and
    large data trains in fast, large batches.

    Gradient-boosted trees are not a candidate: on 2 cores their search cost 30-100x the MLP's (digits: 165 s against 3 s for the whole run)
    and on the benchmark's non-linear tabular data they ranked injected flips worse than the
    MLP (20 % flips: AP 0.696 against 0.755). ``--model gbt`` trains them on request.
    """
    batch = int(np.clip(n_examples // STEPS_PER_EPOCH, MIN_BATCH, MAX_BATCH))
    if kind == "text":
        pool = [Candidate("linear", "tfidf", {"lr": 0.01, "batch_size": batch})]
        if n_examples <= LSA_MAX_ROWS:
            pool.append(Candidate("mlp", "lsa", {"lr": 0.003, "batch_size": batch, "hidden": 128}))
        return pool
    return [Candidate("linear", "tabular", {"lr": 0.01, "batch_size": batch}),
            Candidate("mlp", "tabular", {"lr": 0.003, "batch_size": batch, "hidden": 128})]


def build_model(candidate: Candidate, X: Any, labels: np.ndarray, n_classes: int,
                seed: int) -> EpochModel:
    """A fresh model of ``candidate`` over features ``X``."""
    h = candidate.hyper
    if candidate.model == "linear":
        return SoftmaxRegression(X, labels, n_classes, lr=h["lr"], batch_size=h["batch_size"],
                                 weight_decay=h.get("weight_decay", 0.0), seed=seed)
    return MLP(X, labels, n_classes, hidden=h["hidden"], lr=h["lr"], batch_size=h["batch_size"],
               weight_decay=h.get("weight_decay", 0.0), seed=seed)


def _smooth(x: list[float]) -> np.ndarray:
    """Running mean over 3 epochs (centred; shorter at the ends)."""
    a = np.asarray(x, dtype=np.float64)
    out = np.empty(len(a))
    for i in range(len(a)):
        out[i] = a[max(0, i - 1):i + 2].mean()
    return out


def plateau_epoch(heldout_acc: list[float], tolerance: float = PLATEAU_TOLERANCE) -> int:
    """1-based first epoch whose smoothed held-out accuracy is within ``tolerance`` of the best.

    Examples
    --------
    >>> plateau_epoch([0.5, 0.7, 0.8, 0.81, 0.81, 0.80])
    4
    """
    s = _smooth(heldout_acc)
    return int(np.flatnonzero(s >= s.max() - tolerance)[0]) + 1


def epochs_after_plateau(plateau: int, cap: int = MAX_EPOCHS) -> int:
    """Epochs of the recorded run: the plateau plus a few epochs past it, within the bounds.

    Examples
    --------
    >>> epochs_after_plateau(4), epochs_after_plateau(20), epochs_after_plateau(1)
    (7, 30, 5)
    """
    extra = max(MIN_EXTRA, int(np.ceil(EXTRA_SHARE * plateau)))
    return int(min(max(plateau + extra, MIN_EPOCHS), cap))


def try_candidate(candidate: Candidate, X: Any, labels: np.ndarray, n_classes: int, *,
                  seed: int, max_epochs: int = MAX_EPOCHS,
                  on_epoch: Callable[[int, float], None] | None = None) -> Trial:
    """Train the side models of ``candidate`` until their held-out accuracy stalls."""
    rng = np.random.default_rng(seed)
    k = side_folds(len(labels))
    folds = stratified_folds(labels, rng, k)
    parts = [np.flatnonzero(folds == f) for f in range(k)]
    trains = [np.flatnonzero(folds != f) for f in range(k)]
    seeds = rng.integers(0, 2**31 - 1, size=k)
    models = [build_model(candidate, X, labels, n_classes, int(s)) for s in seeds]
    trial = Trial(candidate)
    held = np.zeros((len(labels), n_classes))
    t0 = time.perf_counter()
    best, since = -np.inf, 0
    for epoch in range(1, max_epochs + 1):
        for model, rows, other in zip(models, trains, parts):
            model.fit_epoch(rows, rng)
            held[other] = model.logits(other)
        trial.heldout_acc.append(float((held.argmax(axis=1) == labels).mean()))
        if on_epoch is not None:
            on_epoch(epoch, trial.heldout_acc[-1])
        smooth = _smooth(trial.heldout_acc)[-2] if epoch > 1 else trial.heldout_acc[0]
        if smooth > best + IMPROVEMENT:
            best, since = smooth, 0
        else:
            since += 1
            if since >= PATIENCE:
                break
    trial.seconds = time.perf_counter() - t0
    return trial


def search(features: Callable[[Candidate], Any], labels: np.ndarray, n_classes: int,
           pool: list[Candidate], *, seed: int = 0, max_epochs: int = MAX_EPOCHS,
           progress: Progress | None = None) -> Selection:
    """Try every candidate of ``pool`` and choose one (module docstring).

    ``features(candidate)`` returns the feature matrix the candidate reads (computed once per
    input kind by the caller).
    """
    t0 = time.perf_counter()
    trials = []
    for cand in pool:
        X = features(cand)
        if progress is not None:
            progress.start(f"auto: trying {cand.name}", total=max_epochs * len(labels))
        trial = try_candidate(cand, X, labels, n_classes, seed=seed, max_epochs=max_epochs,
                              on_epoch=(lambda e, a: progress.advance(len(labels)))
                              if progress else None)
        if progress is not None:
            progress.finish(f"held-out accuracy {trial.best:.3f} after "
                            f"{len(trial.heldout_acc)} epochs")
        trials.append(trial)
    top = max(t.best for t in trials)
    chosen = next(t for t in trials if t.best >= top - TIE)
    plateau = plateau_epoch(chosen.heldout_acc)
    return Selection(chosen=chosen.candidate, epochs=epochs_after_plateau(plateau, max_epochs),
                     plateau_epoch=plateau, trials=trials, seconds=time.perf_counter() - t0)
