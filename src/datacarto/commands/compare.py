"""``datacarto compare BEFORE AFTER [--data CLEANED]``: the run before cleaning and after.

With ``--data`` (the file ``datacarto clean`` wrote), AFTER is first trained on it with
BEFORE's model, epochs, hyper-parameters and seeds (:func:`datacarto.compare.retrain_options`);
without it, AFTER must already be a run. Prints held-out accuracy, flags, regions and a
per-class table side by side and writes ``AFTER/compare.png`` (both data maps) and
``AFTER/compare.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..run import Run
from ._common import info


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="before and after cleaning: retrain the same model, show both side by side",
        description="Compare a run with the run of its cleaned data. With --data CLEANED, AFTER is "
                    "trained first on CLEANED with BEFORE's model and options (what `datacarto "
                    "run` chose, not chosen again, so the two differ only in the data). Prints "
                    "held-out accuracy, flags and a per-class table side by side; writes "
                    "AFTER/compare.png (both data maps) and AFTER/compare.json.")
    p.add_argument("before", metavar="BEFORE", help="the run before cleaning (made by datacarto run)")
    p.add_argument("after", metavar="AFTER",
                   help="the run after cleaning; with --data, the directory to train it into")
    p.add_argument("--data", metavar="CLEANED",
                   help="the cleaned data file (`datacarto clean -o`): train AFTER on it first")
    p.add_argument("-o", "--output", metavar="PNG",
                   help="the side-by-side data maps (default: AFTER/compare.png)")
    p.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from .. import store
    from ..compare import (check_row_count, check_same_data, compare_runs, dropped_by_log,
                           plot_pair, retrain_options)
    from ..datafiles import read_data
    from ..progress import Progress
    from ..run import load
    from ._common import guard_output
    from ._workflow import run_file

    before = load(args.before)
    after_dir = Path(args.after)
    dropped = None
    if args.data is not None:
        options = retrain_options(before)
        dropped = dropped_by_log(args.data)
        if not options.id_column:  # a wrong file fails here, before anything is trained or written
            check_row_count(f"compare {before.path} {args.data}", _rows(before),
                            len(read_data(args.data)), dropped)
        info(f"datacarto compare: training {after_dir} on {args.data} with {before.path}'s model "
             f"({options.model}, {options.epochs} epochs, {options.seeds} seed(s))")
        run_file(args.data, options, after_dir, progress=Progress(quiet=True))
    elif not (after_dir / "run.json").is_file():
        raise InputError(f"compare: {after_dir} is not a run. Give --data CLEANED to train it on "
                         "the cleaned file, or the directory of a run made on it.")
    after = load(after_dir)
    png = Path(args.output) if args.output else after_dir / "compare.png"
    guard_output(png, runs=[before.path, after.path])
    before_m = _metrics(before)
    after_m = _metrics(after)
    check_same_data(before, after, before_m, after_m, dropped=dropped)
    comparison = compare_runs(before, after, before_m, after_m)
    print(f"before: {before.path}\nafter:  {after.path}\n")
    print(comparison.text())
    print("\nheld-out accuracy: side models on rows they did not train on, against each run's "
          "own labels.")
    plot_pair(before_m, after_m, png, titles=(f"before ({Path(before.path).name})",
                                              f"after ({after_dir.name})"))
    store.atomic_write_text(after_dir / "compare.json", json.dumps(
        {"before": str(Path(before.path).resolve()), "after": str(after_dir.resolve()),
         **comparison.as_dict()}, indent=2) + "\n")
    info(f"datacarto compare: wrote {png} and {after_dir / 'compare.json'}")
    return 0


def _metrics(run: Run) -> pd.DataFrame:
    """The run's metrics as ``datacarto run`` wrote them, else computed."""
    path = Path(run.path) / "metrics.parquet"
    return pd.read_parquet(path) if path.is_file() else run.metrics()


def _rows(run: Run) -> int:
    summary = Path(run.path) / "summary.json"
    return int(json.loads(summary.read_text(encoding="utf-8"))["examples"])
