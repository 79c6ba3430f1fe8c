"""Built-in models for ``datacarto run``: featurizers, numpy classifiers, fine-tuning, the pipeline.

Nothing heavy is imported here: scikit-learn (TF-IDF), sentence-transformers (MiniLM) and
torch/transformers (fine-tuning) load inside the functions that need them.
"""

from __future__ import annotations

from .loop import HELDOUT_SCHEMES, MEMORISATION_GAP, memorisation_epoch, train_and_record
from .pipeline import (MODELS, Prepared, RunOptions, RunResult, execute, prepare, reset_output,
                       run_file, summarize)

__all__ = ["HELDOUT_SCHEMES", "MEMORISATION_GAP", "MODELS", "Prepared", "RunOptions", "RunResult",
           "execute", "memorisation_epoch", "prepare", "reset_output", "run_file", "summarize",
           "train_and_record"]
