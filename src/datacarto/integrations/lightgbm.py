"""LightGBM: boosting iterations as checkpoints, scored with ``start_iteration=0, num_iteration=i``.

::

    from datacarto.integrations.lightgbm import record_boosting

    model = lightgbm.LGBMClassifier(n_estimators=100).fit(X, y)
    dyn = record_boosting(model, X, y, every=10, path="runs/lgbm")

Checkpoint i holds the raw scores (logits) of the first i iterations on every training row,
``predict(X, raw_score=True, start_iteration=0, num_iteration=i)``; a binary model's single
score z is stored as ``[-z/2, z/2]``. Works with ``LGBMClassifier`` and a raw ``Booster``
(labels then must be 0..K-1). Each checkpoint re-scores i iterations (cost grows as i²):
thin them with ``every`` or ``iterations``.

Capture modes coincide for boosting (no dropout; iteration i's scores are what iteration
i+1 is fitted to); ``capture`` is recorded as given. Calls on the same ``path`` append.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import require

lgb = require("lightgbm", extra="xgboost", feature="datacarto.integrations.lightgbm")

from ..dynamics import TrainingDynamics  # noqa: E402
from ..errors import InputError  # noqa: E402
from ._adapter import encode_labels  # noqa: E402
from ._boosting import BoostingLibrary, FittedBooster  # noqa: E402
from ._boosting import record_boosting as _record  # noqa: E402

__all__ = ["record_boosting"]

#: LightGBM's names (and aliases) of its classification objectives.
CLASSIFIER_OBJECTIVES = ("binary", "multiclass", "multiclassova", "softmax", "multiclass_ova",
                         "ova", "ovr", "cross_entropy", "xentropy")


def _fitted(model: Any, X: Any, y: Any, where: str) -> FittedBooster:
    if isinstance(model, lgb.LGBMModel):
        if not hasattr(model, "classes_") or not getattr(model, "fitted_", False):
            raise InputError(f"{where}: {type(model).__name__} is not a fitted classifier. Fit an "
                             "LGBMClassifier on X, y first.")
        booster = model.booster_
        labels = encode_labels(y, model.classes_, where=where)
        names: list[str] | None = [str(c) for c in model.classes_]
    elif isinstance(model, lgb.Booster):
        booster = model
        labels, names = np.asarray(y), None
    else:
        raise InputError(f"{where}: expected an LGBMClassifier or a Booster; got "
                         f"{type(model).__name__}. For XGBoost use "
                         "datacarto.integrations.xgboost.record_boosting.")

    def margins(i: int) -> Any:
        return booster.predict(X, raw_score=True, start_iteration=0, num_iteration=i)

    objective = str(booster.params.get("objective", "")) if booster.params else ""
    return FittedBooster(labels=labels, classes=names, n_rounds=booster.current_iteration(),
                         objective=objective, margins=margins)


LIGHTGBM = BoostingLibrary(name="LightGBM", integration="lightgbm",
                           checkpoint_unit="boosting_iteration", fitted=_fitted,
                           is_classifier=lambda o: o in CLASSIFIER_OBJECTIVES,
                           objectives="binary or multiclass")
WHERE = LIGHTGBM.where


def record_boosting(model: Any, X: Any, y: Any, *, path: str | Path | None = None,
                    ids: Any = None, every: int = 1, iterations: Iterable[int] | None = None,
                    capture: str = "eval", classes: list[str] | None = None,
                    meta: dict[str, Any] | None = None) -> TrainingDynamics:
    """Record a fitted LightGBM classifier's boosting iterations on its training set.

    Parameters are those of :func:`datacarto.integrations.xgboost.record_boosting`;
    ``model`` is an ``LGBMClassifier`` or a ``lightgbm.Booster`` with a binary or multiclass
    objective.

    Examples
    --------
    >>> X = np.array([[0.0], [0.2], [1.0], [1.2]] * 5); y = np.array([0, 0, 1, 1] * 5)
    >>> model = lgb.LGBMClassifier(n_estimators=3, min_child_samples=2, verbose=-1).fit(X, y)
    >>> record_boosting(model, X, y).n_epochs
    3
    """
    return _record(LIGHTGBM, model, X, y, path=path, ids=ids, every=every, iterations=iterations,
                   capture=capture, classes=classes, meta=meta)
