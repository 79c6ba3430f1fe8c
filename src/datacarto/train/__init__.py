"""Built-in models for ``datacarto run``: data preparation, featurizers, numpy classifiers,
fine-tuning and train-and-record. The workflow around them is :mod:`datacarto.workflow`.

Nothing heavy is imported here: scikit-learn (TF-IDF), sentence-transformers (MiniLM) and
torch/transformers (fine-tuning) load inside the functions that need them.
"""

from __future__ import annotations

import warnings
from typing import Any

from .loop import HELDOUT_SCHEMES, MEMORISATION_GAP, memorisation_epoch, train_and_record
from .preparation import MODELS, Prepared, RunOptions, prepare
from .trainer import Trained, train_runs

__all__ = ["HELDOUT_SCHEMES", "MEMORISATION_GAP", "MODELS", "Prepared", "RunOptions", "Trained",
           "memorisation_epoch", "prepare", "train_and_record", "train_runs"]

#: Names this package used to export from the workflow, now in :mod:`datacarto.workflow`.
_WORKFLOW = ("RunResult", "execute", "reset_output", "run_file", "summarize")


def __getattr__(name: str) -> Any:
    if name not in _WORKFLOW:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"datacarto.train.{name} is deprecated; use datacarto.workflow.{name}",
                  DeprecationWarning, stacklevel=2)
    from .. import workflow  # the workflow (plotting, the commands) loads on first use only

    return getattr(workflow, name)
