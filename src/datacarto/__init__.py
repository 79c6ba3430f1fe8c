"""datacarto: dataset cartography — find mislabeled, ambiguous and easy examples from training dynamics.

Importing this package imports numpy, pandas and pyarrow only; plotting, training frameworks
and the CLI load on first use.
"""

from __future__ import annotations

from typing import Any as _Any

from ._version import __version__
from .classes import missing_class_score, suggest_classes
from .dynamics import TrainingDynamics
from .errors import DatacartoError, InputError, MissingDependencyError, SchemaError, StateError
from .metrics import (aggregate_runs, aum, compute_metrics, confidence, correctness, entropy,
                      first_learned_epoch, forgetting_events, never_learned, threshold_closeness,
                      variability)
from .recorder import Recorder
from .regions import assign_regions
from .run import Run, load
from .select import select

__all__ = [
    "DatacartoError",
    "InputError",
    "MissingDependencyError",
    "Recorder",
    "Run",
    "SchemaError",
    "StateError",
    "TrainingDynamics",
    "__version__",
    "aggregate_runs",
    "assign_regions",
    "aum",
    "compute_metrics",
    "confidence",
    "correctness",
    "entropy",
    "first_learned_epoch",
    "forgetting_events",
    "load",
    "missing_class_score",
    "never_learned",
    "plot_data_map",
    "select",
    "suggest_classes",
    "threshold_closeness",
    "variability",
]


def __getattr__(name: str) -> _Any:
    # matplotlib loads only when a map is drawn
    if name == "plot_data_map":
        from .plot.datamap import plot_data_map

        return plot_data_map
    raise AttributeError(f"module 'datacarto' has no attribute {name!r}")
