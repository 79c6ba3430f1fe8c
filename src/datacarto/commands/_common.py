"""Helpers shared by CLI subcommands: run loading, output paths, progress lines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .._paths import check_output_path
from ..errors import DatacartoError
from ..run import Run, load


def add_metric_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that computes metrics accepts."""
    parser.add_argument("--epochs", metavar="FIRST:LAST",
                        help="inclusive 1-based epoch window, e.g. 2:6, 3: or :5 (allenai's --burn_out B is :B)")
    parser.add_argument("--include-ci", action="store_true",
                        help="Active-Bias variability sqrt(v + v^2/(E-1)) (allenai's --include_ci)")
    parser.add_argument("--regions", choices=("corners", "quantile", "threshold"), default="corners",
                        help="how regions are assigned (see datacarto.regions); default: corners")
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="compute metrics here (threads, bounded memory) or on a dask.distributed "
                             "cluster reading the same shards")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --engine dask: scheduler address, e.g. tcp://10.0.0.5:8786 "
                             "(default: a temporary local cluster)")


def run_metrics(args: argparse.Namespace) -> tuple[Run, pd.DataFrame]:
    """Load ``args.run`` and compute its metrics with the common options."""
    run = load(args.run)
    note_incomplete(run)
    metrics = run.metrics(epochs=args.epochs, include_ci=args.include_ci,
                          regions={"method": args.regions}, engine=args.engine,
                          scheduler=args.scheduler)
    return run, with_evidence(run.path, metrics)


def with_evidence(run_dir: str | Path, metrics: pd.DataFrame) -> pd.DataFrame:
    """``metrics`` joined with ``RUN/evidence.parquet`` (why each suspect is flagged), when the
    run has one (``datacarto run`` writes it; a run recorded by your own loop has none)."""
    from ..evidence import attach_evidence, read_evidence

    return attach_evidence(metrics, read_evidence(run_dir))


def note_incomplete(run: Run) -> None:
    """One note on stderr when the run stopped before its planned epochs."""
    state = run.incomplete()
    if state:
        print(f"datacarto: note: {run.path} is {state} (training stopped early); the metrics "
              "cover the recorded epochs only.", file=sys.stderr, flush=True)


def default_output(run_dir: str | Path, name: str, given: str | None) -> Path:
    """``given`` if set, else ``RUN/name``."""
    return Path(given) if given else Path(run_dir) / name


def recorded_data(run_dir: str | Path) -> Path | None:
    """The data file a run records in run.json (``datacarto run``), if it is still there."""
    from .. import store
    from ..report.source import _locate

    try:
        meta = store.read_run_json(run_dir)
    except (DatacartoError, OSError):
        return None  # loading the run reports this properly
    path = meta.source.path if meta.source else None
    return _locate(path, Path(run_dir)) if path else None


def guard_output(out: str | Path, *, runs: Sequence[str | Path] = (),
                 data: Sequence[str | Path | None] = (), option: str = "-o") -> Path:
    """:func:`datacarto._paths.check_output_path` with the runs' recorded data files as inputs."""
    inputs = [*data, *(recorded_data(r) for r in runs)]
    return check_output_path(out, inputs=inputs, run_dirs=runs, option=option)


def info(message: str, *, quiet: bool = False, **_: Any) -> None:
    """A progress/status line on stderr (stdout stays clean for data)."""
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def detector_notes(metrics: pd.DataFrame) -> list[str]:
    """How the label-error flags were made (:func:`datacarto.label_errors.notes`)."""
    from ..label_errors import notes

    return notes(metrics.attrs.get("label_errors") or {})
