"""``datacarto run`` as a Python API: :func:`run_file` from a data file, or its stages
:func:`prepare`, :func:`reset_output`, :func:`execute` and :func:`summarize` for a DataFrame."""

from __future__ import annotations

from .commands._summary import summarize
from .commands._workflow import RunResult, build_suspects, default_out, execute, run_file
from .outputs import reset_output
from .train.preparation import MODELS, Prepared, RunOptions, prepare

__all__ = ["MODELS", "Prepared", "RunOptions", "RunResult", "build_suspects", "default_out",
           "execute", "prepare", "reset_output", "run_file", "summarize"]
