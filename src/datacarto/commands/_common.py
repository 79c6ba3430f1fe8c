"""Helpers shared by CLI subcommands: run loading, the data file, output paths, the lines
several commands print (flag count, detector notes, memorisation)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .._paths import check_output_path
from ..errors import DatacartoError
from ..report.source import DataChoice, choose_data
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


def data_choice(run: Run, args: argparse.Namespace) -> DataChoice:
    """The data file of a command (:func:`datacarto.report.source.choose_data`): ``--data``,
    ``--text-column``, ``--id-column``, ``--label-column`` where the command has them, else
    what ``datacarto run`` recorded. The command prints ``choice.line`` (on stderr, with
    :func:`info`) once the file is read, or when it goes on without one: an error about the
    file stays the only line."""
    return choose_data(run.path, run.meta, data=getattr(args, "data", None),
                       text_column=getattr(args, "text_column", None),
                       id_column=getattr(args, "id_column", None),
                       label_column=getattr(args, "label_column", None))


def add_data_options(p: argparse.ArgumentParser, *, purpose: str, text: bool = True,
                     label: bool = False) -> None:
    """``--data`` (``purpose``: what the command reads it for), ``--id-column`` and, where the
    command has them, ``--text-column`` and ``--label-column``: each defaults to what
    ``datacarto run`` recorded, then to common names (:func:`data_choice`)."""
    p.add_argument("--data", metavar="DATA",
                   help=f"{purpose} (default: the one `datacarto run` recorded)")
    if text:
        p.add_argument("--text-column", metavar="T",
                       help="DATA's text column (default: the recorded one, else text, sentence "
                            "or content)")
    p.add_argument("--id-column", metavar="I",
                   help="DATA's id column (default: the recorded one, else ids are 0-based row "
                        "numbers)")
    if label:
        p.add_argument("--label-column", metavar="L",
                       help="DATA's label column (default: the recorded one, else label, labels "
                            "or target)")


def flagged_line(metrics: pd.DataFrame) -> str:
    """How many examples are flagged, e.g. ``Flagged as likely label errors: 12 (1.2%)``."""
    n, flagged = len(metrics), int(metrics["is_label_error"].sum())
    return f"Flagged as likely label errors: {flagged:,} ({flagged / n if n else 0.0:.1%})"


def detector_notes(metrics: pd.DataFrame, run: Run | None = None) -> list[str]:
    """How the label-error flags were made (:func:`datacarto.label_errors.notes`), then, for a
    run with a held-out curve (``datacarto run``), when it started memorising
    (:func:`datacarto.memorisation.memorisation_line`)."""
    from ..label_errors import notes

    lines = notes(metrics.attrs.get("label_errors") or {})
    line = memorisation_note(run.meta.curve) if run is not None else None
    return lines + ([line] if line else [])


def memorisation_note(curve: Sequence[Any]) -> str | None:
    """:func:`~datacarto.memorisation.memorisation_line` of a curve with a held-out accuracy
    per epoch; None for a curve without one (``--heldout none``, a run of your own loop)."""
    from ..memorisation import memorisation_epoch, memorisation_line

    if not curve or any(p.get("gap") is None for p in curve):
        return None
    return memorisation_line(memorisation_epoch(curve))
