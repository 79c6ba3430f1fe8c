"""The one driver behind every gradient-boosting adapter: rounds as checkpoints ("epochs").

A library module (``xgboost.py``, ``lightgbm.py``) says only what differs: how to recognise a
fitted classifier or raw booster, its labels and class names, how many rounds it has, which
objectives are classifiers, and how to get the raw margins of its first i rounds on the
training rows. :func:`record_boosting` does the rest, identically for every library:

- checkpoints ``every``, ``2*every``, ... and the last round, or exactly ``iterations``;
- checkpoint i = the raw margins (logits) of the model truncated to its first i rounds; a
  binary model's single margin z becomes the logits ``[-z/2, z/2]``;
- one committed "epoch" per checkpoint, appended to the run at ``path``.

No framework is imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..dynamics import TrainingDynamics
from ..errors import InputError
from ..recording_config import RecordingConfig
from ._adapter import binary_to_logits, record_checkpoints, row_ids


@dataclass(frozen=True)
class FittedBooster:
    """What the driver needs from one fitted model, as a library module reads it."""

    labels: np.ndarray
    classes: list[str] | None
    n_rounds: int
    objective: str
    margins: Callable[[int], Any]  # i -> raw margins of the first i rounds, (n,) or (n, K)


@dataclass(frozen=True)
class BoostingLibrary:
    """How one library differs.

    Parameters
    ----------
    name : str
        Shown in errors: ``"record_boosting (NAME)"``.
    integration, checkpoint_unit : str
        Stored in the run's metadata (``"xgboost"``, ``"boosting_round"``).
    fitted : callable
        ``fitted(model, X, y, where) -> FittedBooster``; raises InputError for a model it
        cannot record (not fitted, not a classifier, another library's).
    is_classifier : callable
        ``is_classifier(objective) -> bool`` for a non-empty objective name.
    objectives : str
        The classifier objectives, for the error message (``"binary:* or multi:*"``).
    """

    name: str
    integration: str
    checkpoint_unit: str
    fitted: Callable[[Any, Any, Any, str], FittedBooster]
    is_classifier: Callable[[str], bool]
    objectives: str

    @property
    def where(self) -> str:
        return f"record_boosting ({self.name})"


def select_checkpoints(n_rounds: int, *, every: int, chosen: Iterable[int] | None,
                       where: str) -> list[int]:
    """Boosting rounds to record: ``every``, ``2*every``, ... and the last, or ``chosen``.

    >>> select_checkpoints(5, every=2, chosen=None, where="x")
    [2, 4, 5]
    """
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise InputError(f"{where}: every must be a positive integer; got {every!r}.")
    if n_rounds < 1:
        raise InputError(f"{where}: the model has no boosting rounds; fit it first.")
    if chosen is None:
        rounds = list(range(every, n_rounds + 1, every))
        return rounds if rounds and rounds[-1] == n_rounds else rounds + [n_rounds]
    rounds = sorted({int(i) for i in chosen})
    bad = [i for i in rounds if not 1 <= i <= n_rounds]
    if bad:
        raise InputError(f"{where}: iterations {bad[:3]} are outside 1..{n_rounds} (the model has "
                         f"{n_rounds} boosting rounds).")
    return rounds


def record_boosting(library: BoostingLibrary, model: Any, X: Any, y: Any, *,
                    path: str | Path | None, ids: Any, every: int,
                    iterations: Iterable[int] | None, capture: str, classes: list[str] | None,
                    meta: dict[str, Any] | None) -> TrainingDynamics:
    """Record a fitted boosting classifier's rounds on its training set (module docstring)."""
    where = library.where
    config = RecordingConfig(capture=capture, inputs="logits", classes=classes, meta=meta or {},
                             where=where).with_meta(integration=library.integration,
                                                    checkpoint_unit=library.checkpoint_unit)
    fitted = library.fitted(model, X, y, where)
    if fitted.objective and not library.is_classifier(fitted.objective):
        raise InputError(f"{where}: the model's objective is {fitted.objective!r}; datacarto "
                         f"records classifiers ({library.objectives} objectives).")
    if config.classes is None and fitted.classes is not None:
        config = config.replace(classes=fitted.classes, where=where)
    rounds = select_checkpoints(fitted.n_rounds, every=every, chosen=iterations, where=where)
    example_ids = row_ids(ids, len(fitted.labels), where)

    def checkpoints() -> Iterator[tuple[int, np.ndarray]]:
        for i in rounds:
            z = np.asarray(fitted.margins(i))
            yield i, binary_to_logits(z) if z.ndim == 1 else z

    return record_checkpoints(where, path, checkpoints(), ids=example_ids,
                              labels=fitted.labels, config=config)
