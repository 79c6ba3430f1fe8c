"""XGBoost: boosting rounds as checkpoints ("epochs"), scored with ``iteration_range=(0, i)``.

::

    from datacarto.integrations.xgboost import record_boosting

    model = xgboost.XGBClassifier(n_estimators=100).fit(X, y)
    dyn = record_boosting(model, X, y, every=10, path="runs/xgb")   # rounds 10, 20, ..., 100

Checkpoint i holds the raw margins (logits) of the first i rounds on every training row,
``predict(X, output_margin=True, iteration_range=(0, i))``; a binary model's single margin z
is stored as the logits ``[-z/2, z/2]``. Works with ``XGBClassifier`` and a raw ``Booster``
(labels then must be 0..K-1). Each checkpoint re-scores the first i rounds (cost grows as
i²): thin them with ``every`` or ``iterations``.

Capture modes coincide for boosting (round i's margins are what round i+1 is fitted to; no
dropout): ``capture`` is recorded as given. Resume: calls on the same ``path`` append, so an
interrupted recording finishes with ``iterations=`` the remaining rounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import require

xgb = require("xgboost", extra="xgboost", feature="datacarto.integrations.xgboost")

from ..dynamics import TrainingDynamics  # noqa: E402
from ..errors import InputError  # noqa: E402
from ._adapter import encode_labels  # noqa: E402
from ._boosting import BoostingLibrary, FittedBooster  # noqa: E402
from ._boosting import record_boosting as _record  # noqa: E402

__all__ = ["record_boosting"]


def _fitted(model: Any, X: Any, y: Any, where: str) -> FittedBooster:
    if isinstance(model, xgb.XGBModel):
        if not hasattr(model, "classes_"):
            raise InputError(f"{where}: {type(model).__name__} is not a fitted classifier (no "
                             "classes_). Fit an XGBClassifier on X, y first.")
        booster = model.get_booster()
        labels = encode_labels(y, model.classes_, where=where)
        names: list[str] | None = [str(c) for c in model.classes_]

        def margins(i: int) -> Any:
            return model.predict(X, output_margin=True, iteration_range=(0, i))
    elif isinstance(model, xgb.Booster):
        booster = model
        data = X if isinstance(X, xgb.DMatrix) else xgb.DMatrix(X)
        labels, names = np.asarray(y), None

        def margins(i: int) -> Any:
            return booster.predict(data, output_margin=True, iteration_range=(0, i))
    else:
        raise InputError(f"{where}: expected an XGBClassifier or a Booster; got "
                         f"{type(model).__name__}. For LightGBM use "
                         "datacarto.integrations.lightgbm.record_boosting.")
    return FittedBooster(labels=labels, classes=names, n_rounds=booster.num_boosted_rounds(),
                         objective=str(booster.attr("objective") or _objective(booster)),
                         margins=margins)


def _objective(booster: Any) -> str:
    import json

    try:
        return str(json.loads(booster.save_config())["learner"]["objective"]["name"])
    except (KeyError, ValueError, TypeError):
        return ""


XGBOOST = BoostingLibrary(name="XGBoost", integration="xgboost", checkpoint_unit="boosting_round",
                          fitted=_fitted,
                          is_classifier=lambda objective: objective.startswith(("binary:", "multi:")),
                          objectives="binary:* or multi:*")
WHERE = XGBOOST.where


def record_boosting(model: Any, X: Any, y: Any, *, path: str | Path | None = None,
                    ids: Any = None, every: int = 1, iterations: Iterable[int] | None = None,
                    capture: str = "eval", classes: list[str] | None = None,
                    meta: dict[str, Any] | None = None) -> TrainingDynamics:
    """Record a fitted XGBoost classifier's boosting rounds on its training set.

    Parameters
    ----------
    model : xgboost.XGBClassifier or xgboost.Booster (fitted)
    X : array-like or DMatrix (a Booster needs a DMatrix or an array)
    y : array-like (n,)
        The training labels (an XGBClassifier's ``classes_`` order; 0..K-1 for a Booster).
    path : str or Path, optional
        Run directory; ``None`` records in memory.
    ids : sequence, optional
        Stable example ids; default the row positions 0..n-1.
    every : int
        Record rounds every, 2*every, ... and the last one.
    iterations : iterable of int, optional
        Exactly these 1-based round counts instead.
    capture, classes, meta
        Stored in the run's metadata (``classes``: class names).

    Examples
    --------
    >>> X = np.array([[0.0], [0.2], [1.0], [1.2]]); y = np.array([0, 0, 1, 1])
    >>> model = xgb.XGBClassifier(n_estimators=4, max_depth=1).fit(X, y)
    >>> record_boosting(model, X, y, every=2).epochs.tolist()
    [1, 2]
    """
    return _record(XGBOOST, model, X, y, path=path, ids=ids, every=every, iterations=iterations,
                   capture=capture, classes=classes, meta=meta)
