"""Deprecated home of the ``datacarto run`` workflow: use :mod:`datacarto.workflow` (its stages
live in :mod:`datacarto.train.preparation`, :mod:`datacarto.train.trainer` and
:mod:`datacarto.commands`)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

#: Each old name and the module it now lives in (the first one listed is the one to use).
_MOVED = {
    **dict.fromkeys(("MODELS", "Prepared", "RunOptions", "RunResult", "build_suspects",
                     "default_out", "execute", "prepare", "reset_output", "run_file",
                     "summarize"), "datacarto.workflow"),
    **dict.fromkeys(("CAPTURE_MODES", "DEFAULT_EPOCHS", "HYPERPARAMETERS", "encode_labels"),
                    "datacarto.train.preparation"),
    **dict.fromkeys(("AUTO_MIN_CLASS_ROWS", "AUTO_MIN_ROWS", "SMALL_DATA_EPOCHS", "mean_curve"),
                    "datacarto.train.trainer"),
    **dict.fromkeys(("round_robin", "trim"), "datacarto.commands._summary"),
    "MAX_SUSPECT_FEATURES": "datacarto.commands._workflow",
    **dict.fromkeys(("CACHE_DIR", "CREATED_BY"), "datacarto.outputs"),
}


def __getattr__(name: str) -> Any:
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"datacarto.train.pipeline.{name} is deprecated; use {home}.{name}",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(_MOVED)
