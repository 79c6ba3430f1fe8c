"""Helpers shared by CLI subcommands: run loading, output paths, progress lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

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
    metrics = run.metrics(epochs=args.epochs, include_ci=args.include_ci,
                          regions={"method": args.regions}, engine=args.engine,
                          scheduler=args.scheduler)
    return run, metrics


def default_output(run_dir: str | Path, name: str, given: str | None) -> Path:
    """``given`` if set, else ``RUN/name``."""
    return Path(given) if given else Path(run_dir) / name


def info(message: str, *, quiet: bool = False, **_: Any) -> None:
    """A progress/status line on stderr (stdout stays clean for data)."""
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def detector_notes(metrics: pd.DataFrame) -> list[str]:
    """How the label-error flags were made: the epoch window / memorisation message, the
    calibration, and any component that the stored run could not provide."""
    info = metrics.attrs.get("label_errors") or {}
    lines = []
    if info.get("message"):
        lines.append(f"label errors: {info['message']}")
    if info.get("calibration"):
        lines.append(f"flag calibration: {info['calibration']}")
    if info.get("unavailable"):
        missing = info["unavailable"]
        missing = ", ".join(missing) if isinstance(missing, (list, tuple)) else str(missing)
        lines.append(f"unavailable from this run: {missing}")
    return lines
