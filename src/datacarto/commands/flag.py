"""``datacarto flag RUN [-o FILE]``: the suspects of a run, most likely mislabeled first.

Each row gets an ``assessment``: ``likely mislabeled`` where the calibrated label-error flag
is set (``is_label_error``), else the example's region, ``ambiguous`` or ``hard`` (the model
is unsure of it, or never learns it, but nothing says the label is wrong). By default the
table holds those three kinds; ``--all`` adds the easy, unflagged rest (assessment ``easy``).

Runs made by ``datacarto run`` also record why each suspect is flagged
(``RUN/evidence.parquet``, :mod:`datacarto.evidence`): the table then gains the evidence
columns (``reason``, ``kept_predicting``, ``heldout_given_prob``, ``neighbour_agreement``,
``conflicting_duplicates``, ...), lists every row with a duplicate labelled differently
whatever its score, and the preview prints a "why" line per suspect.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from ..datafiles import data_format, write_data
from ..errors import InputError, SchemaError
from ..evidence import COLUMNS as EVIDENCE_COLUMNS
from ..evidence import describe_evidence
from ._common import add_metric_options, default_output, detector_notes, guard_output, run_metrics
from .select import load_data_for_run

COLUMNS = ("id", "label_name", "suggested_label_name", "label_error_score", "confidence",
           "variability", "correctness", "region", "assessment")
LIKELY_MISLABELED = "likely mislabeled"
_SHOWN = 10
_TEXT_WIDTH = 60


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "flag", help="list likely mislabeled, ambiguous and hard examples",
        description="List the suspects of a run sorted by label_error_score (highest first), each "
                    "assessed as 'likely mislabeled', 'ambiguous' or 'hard'.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="table: .csv (default RUN/flags.csv), .tsv, .jsonl or .parquet")
    p.add_argument("--all", action="store_true", help="include every example, not only suspects")
    p.add_argument("--data", metavar="DATA", help="data file to take each example's text from")
    p.add_argument("--text-column", metavar="T", help="DATA's column to show beside each example")
    p.add_argument("--id-column", metavar="I",
                   help="DATA's id column (default: ids are 0-based row numbers)")
    add_metric_options(p)
    p.set_defaults(func=execute)


def flag_table(metrics: pd.DataFrame, *, include_all: bool = False,
               flagged_only: bool = False) -> pd.DataFrame:
    """The ``flag`` table from a metrics frame, sorted by label_error_score (desc), then id.

    Rows: the flagged, ambiguous and hard examples; every example with ``include_all``; only
    the flagged ones with ``flagged_only`` (the suspects of ``datacarto run``). A row with a
    duplicate labelled differently is always in.
    """
    flagged = metrics["is_label_error"].to_numpy(dtype=bool)
    region = metrics["region"].to_numpy(dtype=object)
    if include_all:
        keep = np.ones(len(metrics), dtype=bool)
    else:
        keep = flagged.copy() if flagged_only else flagged | (region != "easy")
    if "n_conflicting_duplicates" in metrics.columns:  # always a suspect, whatever its score
        keep |= metrics["n_conflicting_duplicates"].fillna(0).to_numpy() > 0
    table = metrics.loc[keep, list(COLUMNS)].copy()  # assessment: the metrics frame's own
    for col in EVIDENCE_COLUMNS:  # why it is flagged, when `datacarto run` recorded it
        if col in metrics.columns:
            table[col] = metrics.loc[keep, col].to_numpy()
    return table.sort_values(["label_error_score", "id"], ascending=[False, True],
                             kind="mergesort").reset_index(drop=True)


def execute(args: argparse.Namespace) -> int:
    if args.data and not args.text_column:
        raise InputError("datacarto flag: --data needs --text-column T (the column to show "
                         "beside each example).")
    if (args.text_column or args.id_column) and not args.data:
        raise InputError("datacarto flag: --text-column and --id-column need --data DATA.")
    out = default_output(args.run, "flags.csv", args.output)
    data_format(out)  # an unsupported extension fails before any work
    if args.data:
        data_format(args.data)
    guard_output(out, runs=[args.run], data=[args.data])
    run, metrics = run_metrics(args)
    table = flag_table(metrics, include_all=args.all)
    if args.data:
        frame, rows = load_data_for_run(run, metrics["id"].to_numpy(), args.data, args.id_column,
                                        run_labels=metrics["label"].to_numpy())
        if args.text_column not in frame.columns:
            raise SchemaError(f"{args.data}: no column {args.text_column!r}; columns are "
                              f"{list(frame.columns)}.")
        row_of = pd.Series(rows, index=metrics["id"].to_numpy())
        text = frame[args.text_column].to_numpy()[row_of.loc[table["id"].to_numpy()].to_numpy()]
        table.insert(1, args.text_column, text)
    write_data(table, out)
    counts = table["assessment"].value_counts()
    kinds = ", ".join(f"{int(counts.get(k, 0)):,} {k}"
                      for k in (LIKELY_MISLABELED, "ambiguous", "hard", "easy")
                      if k != "easy" or args.all)
    if "n_conflicting_duplicates" in table.columns:
        kinds += (f"; {int((table['n_conflicting_duplicates'] > 0).sum()):,} with a duplicate "
                  "labelled differently")
    print(f"{len(table):,} of {len(metrics):,} examples listed ({kinds})")
    for line in detector_notes(metrics):
        print(line)
    if len(table):
        print(_preview(table.head(_SHOWN), args.text_column))
        for line in _why(table, _SHOWN):
            print(line)
    print(f"wrote {out}")
    return 0


def _why(table: pd.DataFrame, n: int) -> list[str]:
    """'Why' lines: the first ``n`` suspects with a reason, then up to ``n`` more rows whose only
    reason is a duplicate labelled differently (they may sort far down by score)."""
    if "reason" not in table.columns:
        return []
    has = table["reason"].fillna("").astype(str).str.len().to_numpy() > 0
    dup_only = has & ~(table["assessment"] == LIKELY_MISLABELED).to_numpy()
    first = np.flatnonzero(has)[:n]
    extra = [i for i in np.flatnonzero(dup_only) if i not in set(first.tolist())][:n]
    rows = list(first) + extra
    if not rows:
        return []
    lines = ["Why (the evidence of each suspect):"]
    for i in rows:
        rec = table.iloc[int(i)]
        evidence = describe_evidence(rec.to_dict())
        lines.append(f"  id={rec['id']}: {rec['reason']}" + (f" | {evidence}" if evidence else ""))
    return lines


def _preview(table: pd.DataFrame, text_column: str | None) -> str:
    shown = table.drop(columns=[c for c in EVIDENCE_COLUMNS if c in table.columns])
    if text_column:
        shown[text_column] = [_shorten(str(t)) for t in shown[text_column]]
    for col in ("label_error_score", "confidence", "variability", "correctness"):
        shown[col] = shown[col].map(lambda v: f"{v:.3f}")
    return shown.to_string(index=False)


def _shorten(text: str) -> str:
    text = " ".join(text.split())  # one line per example
    return text if len(text) <= _TEXT_WIDTH else text[:_TEXT_WIDTH - 1] + "…"
