"""Adapters that record training dynamics from each training stack (docs/contract.md §3).

Each adapter lives in its own submodule and is the only place its framework is imported;
importing ``datacarto.integrations`` itself imports nothing (PEP 562 lazy attributes)::

    from datacarto.integrations.torch import WithIds, LoopRecorder       # plain PyTorch (+ DDP)
    from datacarto.integrations.huggingface import DataMapCallback       # transformers.Trainer
    from datacarto.integrations.lightning import DataMapCallback         # lightning.pytorch
    from datacarto.integrations.keras import DataMapCallback             # Keras 3
    from datacarto.integrations.sklearn import record_partial_fit, record_staged
    from datacarto.integrations.xgboost import record_boosting           # XGBoost
    from datacarto.integrations.lightgbm import record_boosting          # LightGBM

Every adapter converts framework outputs to numpy and forwards them to
:class:`datacarto.Recorder`; none computes a metric. See ``docs/integrations.md``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Submodules reachable as attributes, e.g. ``datacarto.integrations.torch``.
SUBMODULES = ("huggingface", "keras", "lightgbm", "lightning", "sklearn", "torch", "xgboost")

__all__ = list(SUBMODULES)


def __getattr__(name: str) -> ModuleType:
    # the framework loads only when its adapter is asked for
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(SUBMODULES))
