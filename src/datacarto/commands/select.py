"""``datacarto select RUN (--region R | --by METRIC) (--fraction F | --count N) -o FILE``.

The output is a copy of the selected rows of the data file in the format of FILE's extension,
rows in the file's original order (what a training script expects), when there is a data file
(``--data DATA``, or the one ``datacarto run`` recorded) and FILE ends in .csv, .tsv, .jsonl or
.parquet; otherwise an id list, one id per line, best first (rank order). Either way
``FILE.manifest.json`` records the parameters, the run, the counts and the datacarto version.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import store
from .._validation import check_fraction
from .._datamatch import check_data_matches_run, check_fingerprint
from ..datafiles import DataTable, copy_format, data_format, example_ids, read_table, write_rows
from ..report.source import DEFAULT_LABEL_COLUMNS, DataChoice
from ..errors import DatacartoError, InputError
from ..regions import REGION_ORDER, REGIONS
from ..run import Run, load
from ..select import select, selection_manifest
from ._common import (add_data_options, add_metric_options, data_choice, guard_output, info,
                      run_metrics)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "select", help="select training data by region or metric (id list or filtered data file)",
        description="Select examples by data-map region or by any metric. --fraction F gives "
                    "exactly floor(F*N) examples; ties are broken by id. Writes FILE and "
                    "FILE.manifest.json.")
    p.add_argument("run", metavar="RUN", help="run directory")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--region", choices=REGIONS,
                     help="rank as the paper does: easy by confidence (high first), hard by "
                          "confidence (low first), ambiguous by variability (high first)")
    how.add_argument("--by", metavar="METRIC",
                     help="rank by this metrics column, highest first (see `datacarto metrics`)")
    how.add_argument("--spread", action="store_true",
                     help="keep coverage: leave out the hardest 5%% (lowest confidence), then take "
                          "examples evenly across the map (beat --region ambiguous on the "
                          "selection benchmark)")
    p.add_argument("--ascending", action="store_true", help="rank lowest first instead")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--fraction", type=float, metavar="F",
                      help="select floor(F*N) examples, 0 < F <= 1")
    size.add_argument("--count", type=int, metavar="N", help="select N examples")
    p.add_argument("--stratify", action="store_true",
                   help="keep the class proportions (largest-remainder allocation)")
    add_data_options(p, purpose="the data file (.csv/.tsv/.jsonl/.parquet or a saved dataset) "
                                "to copy the selected rows from", text=False)
    p.add_argument("-o", "--output", metavar="FILE", required=True,
                   help="the selected rows of the data file when FILE ends in .csv, .tsv, .jsonl "
                        "or .parquet and there is one; else an id list (e.g. ids.txt)")
    add_metric_options(p)
    p.set_defaults(func=execute)


# ------------------------------------------------------------------ data file helpers
def load_data_for_run(run: Run, run_ids: np.ndarray, data_path: str | Path,
                      id_column: str | None, *, run_labels: np.ndarray | None = None,
                      ) -> tuple[pd.DataFrame, np.ndarray]:
    """Read DATA and find the row of every run id; returns (frame, rows) with rows (N,) int.

    See :func:`load_table_for_run`; the frame holds every cell as the text in the file.
    """
    table, rows = load_table_for_run(run, run_ids, data_path, id_column, run_labels=run_labels)
    return table.frame, rows


def load_table_for_run(run: Run, run_ids: np.ndarray, data_path: str | Path,
                       id_column: str | None, *, run_labels: np.ndarray | None = None,
                       ) -> tuple[DataTable, np.ndarray]:
    """Read DATA for copying (:func:`datacarto.datafiles.read_table`) and find the row of every
    run id; returns (table, rows).

    Ids are DATA's ``id_column``, or 0-based row numbers. A run id that DATA lacks is an
    error (probably the wrong file), and so is, with row-number ids, a file whose fingerprint
    differs from the one run.json records, or, with ``run_labels`` (class index per run id), a
    label column that disagrees with the run's (:mod:`datacarto._datamatch`).
    """
    check_fingerprint(run.meta, data_path, id_column)
    table = read_table(data_path)
    frame = table.frame
    data_ids = example_ids(frame, id_column, path=data_path)
    if run_ids.dtype.kind != data_ids.dtype.kind:  # e.g. ids written as text in one, numbers in the other
        run_ids, data_ids = run_ids.astype(str), data_ids.astype(str)
    rows = pd.Index(data_ids).get_indexer(run_ids)
    missing = rows < 0
    if missing.any():
        first = run_ids[int(np.argmax(missing))]
        source = f"column {id_column!r}" if id_column else f"row numbers 0..{len(frame) - 1}"
        hint = "" if id_column else " Give --id-column if the file has an id column."
        raise InputError(f"{data_path}: {int(missing.sum())} of the run's {len(run_ids)} ids are not "
                         f"in the data file (ids from {source}; first missing: "
                         f"{_plain(first)!r}). Is this the file the run was recorded on?{hint}")
    if run_labels is not None:
        recorded = run.meta.source.label_column if run.meta.source else None
        label_column = recorded if recorded in frame.columns else next(
            (c for c in DEFAULT_LABEL_COLUMNS if c in frame.columns), None)
        check_data_matches_run(run.meta, data_path, frame, rows, id_column=id_column,
                               label_column=label_column, run_labels=run_labels)
    return table, rows


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _is_data_file(path: Path, run: Run | None = None) -> bool:
    """Whether FILE gets the rows (a data file name, or any name without a data extension when
    the run's recorded data is a saved dataset) rather than an id list."""
    recorded = run.meta.source.path if run is not None and run.meta.source else None
    try:
        source_fmt = data_format(recorded) if recorded else ""
    except DatacartoError:
        source_fmt = ""
    try:
        copy_format(path, source_fmt)
    except DatacartoError:
        return False
    return True


def _rows_source(run: Run, args: argparse.Namespace, out: Path) -> DataChoice | None:
    """The data file to copy the selected rows from: ``--data`` or the recorded one when FILE
    is a data file (with its one ``data: ...`` line); None for an id list."""
    if args.data is None and not (run.meta.source is not None and _is_data_file(out, run)):
        if args.id_column:
            raise InputError("datacarto select: --id-column needs --data DATA (or a run that "
                             "records its data file, and FILE ending in .csv/.tsv/.jsonl/.parquet).")
        if run.meta.source is not None:
            info(f"data: not copied ({out.name} is an id list; a FILE ending in .csv, .tsv, "
                 ".jsonl or .parquet gets the rows)")
        return None
    choice = data_choice(run, args)
    if choice.source is None:
        reason = choice.problem or "the run records no data file"
        raise InputError(f"datacarto select: cannot copy the selected rows to {out}: {reason}. "
                         "Give --data DATA, or write an id list with -o FILE.txt.")
    return choice


# -------------------------------------------------------------------------- command
def execute(args: argparse.Namespace) -> int:
    if args.fraction is not None:
        check_fraction(args.fraction, where="datacarto select")
    if args.count is not None and args.count < 0:
        raise InputError(f"The 'count' parameter of datacarto select must be a non-negative "
                         f"integer. Got {args.count} instead.")
    out = Path(args.output)
    if args.data:
        data_format(args.data)
        copy_format(out, data_format(args.data))  # the copy's format comes from FILE's extension
    guard_output(out, runs=[args.run], data=[args.data])
    guard_output(f"{out}.manifest.json", runs=[args.run], data=[args.data])
    choice = _rows_source(load(args.run), args, out)  # data problems fail before any work
    run, metrics = run_metrics(args)
    ids = select(metrics, region=args.region, by=args.by,
                 ascending=True if args.ascending else None,
                 fraction=args.fraction, count=args.count, stratify=args.stratify,
                 spread=bool(args.spread))
    in_selection = metrics["id"].isin(ids).to_numpy()
    chosen = metrics[in_selection]
    params: dict[str, Any] = {
        "command": "select", "run": str(run.path.resolve()),
        "region": args.region, "by": args.by, "spread": bool(args.spread),
        "ascending": bool(args.ascending) or (args.region is not None and REGION_ORDER[args.region][1]),
        "fraction": args.fraction, "count": args.count, "stratify": bool(args.stratify),
        "epochs": args.epochs, "include_ci": bool(args.include_ci), "regions_method": args.regions,
        "n_examples": len(metrics), "n_selected": len(ids),
        "selected_by_label": {str(k): int(v) for k, v in
                              chosen["label_name"].value_counts().sort_index().items()},
        "selected_by_region": {r: int((chosen["region"] == r).sum()) for r in REGIONS},
        "output": str(out.resolve()),
    }
    if choice is not None:
        source = choice.source
        assert source is not None  # _rows_source returns only a choice with a file
        table, rows = load_table_for_run(run, metrics["id"].to_numpy(), source.path,
                                         source.id_column, run_labels=metrics["label"].to_numpy())
        info(choice.line)
        picked = np.sort(rows[in_selection])  # the data file's own order
        write_rows(table, picked, out)  # every row copied as it is in DATA
        params.update(output_kind="data", order="data file order", data=str(source.path.resolve()),
                      data_fingerprint=store.fingerprint_file(source.path),
                      id_column=source.id_column, output_format=data_format(out))
    else:
        text = [str(_plain(i)) for i in ids]
        bad = next((t for t in text if "\n" in t or "\r" in t), None)
        if bad is not None:
            raise InputError(f"datacarto select: id {bad!r} contains a line break and cannot be "
                             "written as an id list; give --data to write a data file instead.")
        out.parent.mkdir(parents=True, exist_ok=True)
        store.atomic_write_text(out, "".join(t + "\n" for t in text))
        params.update(output_kind="ids", order="rank order (best first)")
    manifest = Path(f"{out}.manifest.json")
    store.atomic_write_text(manifest, json.dumps(selection_manifest(**params), indent=2) + "\n")
    what = f"region {args.region}" if args.region else "spread across the map" if args.spread else \
        f"{args.by} ({'lowest' if args.ascending else 'highest'} first)"
    size = f"fraction {args.fraction:g}" if args.fraction is not None else f"count {args.count}"
    print(f"selected {len(ids):,} of {len(metrics):,} examples by {what}, {size}"
          f"{', stratified' if args.stratify else ''}")
    print(f"wrote {out} and {manifest.name}")
    return 0
