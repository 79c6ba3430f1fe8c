"""``datacarto metrics RUN [RUN ...] [-o FILE]``: every per-example metric, written to a file.

One run: the columns of :func:`datacarto.compute_metrics`. Several runs of the same data
(seeds, models): :func:`datacarto.aggregate_runs`, i.e. the mean of each metric plus
``<metric>_std`` and ``n_runs``.
"""

from __future__ import annotations

import argparse

import pandas as pd

from ..datafiles import data_format, write_data
from ..errors import InputError
from ..metrics import aggregate_runs
from ..options import RegionOptions
from ..regions import REGIONS
from ..run import load
from ._common import (add_metric_options, default_output, detector_notes, flagged_line,
                      guard_output, note_incomplete, with_evidence)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "metrics", help="compute per-example metrics (confidence, variability, label errors, ...)",
        description="Compute every per-example metric of a run and write them to a file. Several "
                    "runs of the same data are aggregated: mean of each metric plus <metric>_std.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directory (several: aggregate them)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="output file: .parquet (default RUN/metrics.parquet), .csv, .tsv or .jsonl")
    add_metric_options(p)
    p.set_defaults(func=execute)


def summary(frame: pd.DataFrame) -> list[str]:
    """Human-readable lines: examples, epochs, classes, per-region counts, flagged count."""
    n = len(frame)
    epochs = frame.attrs.get("epochs") or []
    classes = frame.attrs.get("classes") or []
    head = f"{n:,} examples"
    if epochs:
        span = f"{epochs[0]}-{epochs[-1]}" if len(epochs) > 1 else f"{epochs[0]}"
        head += f", {len(epochs)} epochs ({span})"
    if classes:
        head += f", {len(classes)} classes"
    if "n_runs" in frame.columns:
        head += f", mean of {int(frame['n_runs'].iloc[0])} runs"
    counts = frame["region"].value_counts()
    regions = ", ".join(f"{r} {int(counts.get(r, 0)):,} ({_pct(int(counts.get(r, 0)), n)})"
                        for r in REGIONS)
    lines = [head, f"regions: {regions}", flagged_line(frame)]
    if "reason" in frame.columns:  # evidence recorded by `datacarto run`
        dups = int((frame["n_conflicting_duplicates"].fillna(0) > 0).sum())
        lines.append(f"with a duplicate labelled differently (also suspects): {dups:,}")
        lines.append("why each suspect is flagged: columns reason, kept_predicting, "
                     "heldout_given_prob, neighbour_agreement, conflicting_duplicates, ...")
    return lines


def _pct(k: int, n: int) -> str:
    return f"{100.0 * k / n:.1f}%" if n else "0%"


def execute(args: argparse.Namespace) -> int:
    if len(args.runs) > 1 and not args.output:
        raise InputError("datacarto metrics: several runs are aggregated into one table; give "
                         "-o FILE for it.")
    out = default_output(args.runs[0], "metrics.parquet", args.output)
    data_format(out)  # an unsupported extension fails before any work
    guard_output(out, runs=args.runs)
    regions = RegionOptions(method=args.regions)
    runs = [load(path) for path in args.runs]  # check every path before computing
    for r in runs:
        note_incomplete(r)
    frames = [r.metrics(epochs=args.epochs, include_ci=args.include_ci, regions=regions,
                        engine=args.engine, scheduler=args.scheduler) for r in runs]
    try:
        frame = frames[0] if len(frames) == 1 else aggregate_runs(frames, regions=regions)
    except InputError as err:  # "run 2 has different ids": say which paths runs 1 and 2 are
        raise InputError(f"datacarto metrics {' '.join(map(str, args.runs))}: {err}") from err
    if len(runs) == 1:  # why each suspect is flagged, when `datacarto run` recorded it
        frame = with_evidence(runs[0].path, frame)
    write_data(frame, out)
    notes = detector_notes(frame, runs[0] if len(runs) == 1 else None)
    for line in summary(frame) + notes:
        print(line)
    print(f"wrote {out}")
    return 0
