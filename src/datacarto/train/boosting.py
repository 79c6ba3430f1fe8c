"""Gradient-boosted trees as an epoch model: each "epoch" adds a fixed number of boosting rounds.

Boosting has no epochs, but its rounds are checkpoints like epochs (the XGBoost / LightGBM
integrations record them the same way): after ``e`` epochs the model holds ``e * rounds``
rounds. scikit-learn's ``HistGradientBoostingClassifier`` grows them with ``warm_start``; it
is part of the ``sklearn`` extra, so no further dependency is needed.

Capture: ``fit_epoch`` reports the logits of the model *before* the epoch's rounds for the
rows it trains on (the boosting equivalent of the training forward pass: zero logits, a uniform
guess, before the first round), then adds the rounds. ``logits`` are the raw decision values
(``decision_function``: log-odds per class; for two classes ``[0, f]``, whose softmax is the
model's probability).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._deps import require
from .models import BatchCallback

#: Logit given to a class that a model never saw in its training rows (softmax ~ 1e-13).
ABSENT_CLASS_LOGIT = -30.0


class BoostedTrees:
    """``HistGradientBoostingClassifier`` grown ``rounds`` boosting rounds per epoch.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2))
    >>> y = (X[:, 0] * X[:, 1] > 0).astype(int)          # XOR: not linearly separable
    >>> model = BoostedTrees(X, y, 2, rounds=10, seed=0)
    >>> for _ in range(3):
    ...     model.fit_epoch(np.arange(300), rng)
    >>> bool((model.logits(np.arange(300)).argmax(axis=1) == y).mean() > 0.9)
    True
    """

    def __init__(self, X: Any, y: np.ndarray, n_classes: int, *, rounds: int = 10,
                 lr: float = 0.1, seed: int = 0) -> None:
        ensemble = require("sklearn.ensemble", extra="sklearn", feature="--model gbt")
        self.X = X
        self.y = np.asarray(y, dtype=np.int64)
        self.n_classes = n_classes
        self.rounds = int(rounds)
        # no early stopping: the held-out curve of the side models decides the epochs
        self.clf = ensemble.HistGradientBoostingClassifier(
            learning_rate=lr, max_iter=0, warm_start=True, early_stopping=False,
            random_state=seed)
        self.fitted = False

    def fit_epoch(self, rows: np.ndarray, rng: np.random.Generator,
                  on_batch: BatchCallback | None = None) -> None:
        """Report the current logits of ``rows`` to ``on_batch``, then add ``rounds`` rounds."""
        rows = np.asarray(rows)
        if on_batch is not None:
            on_batch(rows, self.logits(rows))
        self.clf.max_iter += self.rounds
        self.clf.fit(self.X[rows], self.y[rows])
        self.fitted = True

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """Raw decision values (len(rows), K); zeros before the first round."""
        rows = np.asarray(rows)
        out = np.zeros((len(rows), self.n_classes))
        if not self.fitted or len(rows) == 0:
            return out
        f = np.asarray(self.clf.decision_function(self.X[rows]), dtype=np.float64)
        seen = self.clf.classes_.astype(np.int64)
        out[:] = ABSENT_CLASS_LOGIT
        if f.ndim == 1:  # two classes seen: log-odds of the second
            out[:, seen[0]] = 0.0
            out[:, seen[1]] = f
        else:
            out[:, seen] = f
        return out
