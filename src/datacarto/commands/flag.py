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

Each example is shown with its text (or, for tabular data, its features; for pixels a short
``[28x28 image, mean 0.31]``) from the data file ``datacarto run`` recorded, or ``--data``
(:func:`datacarto.report.source.choose_data`); the text column is written into the table too.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from ..datafiles import data_format, write_data
from ..errors import SchemaError
from ..evidence import COLUMNS as EVIDENCE_COLUMNS
from ..evidence import describe_evidence
from ..report.source import DEFAULT_TEXT_COLUMNS, DataChoice, DataSource
from ..run import Run
from ..thumbnails import image_shape, parse_image_shape, pixel_columns
from ._common import (add_data_options, add_metric_options, data_choice, default_output,
                      detector_notes, guard_output, info, run_metrics)
from ._summary import describe_features
from .select import load_data_for_run

COLUMNS = ("id", "label_name", "suggested_label_name", "label_error_score", "confidence",
           "variability", "correctness", "region", "assessment")
LIKELY_MISLABELED = "likely mislabeled"
_SHOWN = 10
_TEXT_WIDTH = 60
#: The preview's column of an example's features (tabular data; not written to the table).
EXAMPLE_COLUMN = "example"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "flag", help="list likely mislabeled, ambiguous and hard examples",
        description="List the suspects of a run sorted by label_error_score (highest first), each "
                    "assessed as 'likely mislabeled', 'ambiguous' or 'hard'.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="table: .csv (default RUN/flags.csv), .tsv, .jsonl or .parquet")
    p.add_argument("--all", action="store_true", help="include every example, not only suspects")
    add_data_options(p, purpose="the data file to take each example's text from")
    p.add_argument("--image-shape", metavar="H,W",
                   help="the feature columns are the pixels of an H x W image (default: guessed "
                        "from column names such as px_0..px_783); the preview then shows "
                        "[HxW image, mean m] instead of pixel values")
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
    out = default_output(args.run, "flags.csv", args.output)
    data_format(out)  # an unsupported extension fails before any work
    if args.data:
        data_format(args.data)
    parse_image_shape(args.image_shape)
    guard_output(out, runs=[args.run], data=[args.data])
    run, metrics = run_metrics(args)
    table = flag_table(metrics, include_all=args.all)
    shown = _examples(run, metrics, table, data_choice(run, args), args.image_shape)
    text_column = None
    if shown is not None and shown[0] != EXAMPLE_COLUMN:  # text goes into the table too
        text_column = shown[0]
        table.insert(1, text_column, shown[1])
    write_data(table, out)
    counts = table["assessment"].value_counts()
    kinds = ", ".join(f"{int(counts.get(k, 0)):,} {k}"
                      for k in (LIKELY_MISLABELED, "ambiguous", "hard", "easy")
                      if k != "easy" or args.all)
    if "n_conflicting_duplicates" in table.columns:
        kinds += (f"; {int((table['n_conflicting_duplicates'] > 0).sum()):,} with a duplicate "
                  "labelled differently")
    print(f"{len(table):,} of {len(metrics):,} examples listed ({kinds})")
    for line in detector_notes(metrics, run):
        print(line)
    if len(table):
        head = table.head(_SHOWN)
        if shown is not None and text_column is None:
            head = head.copy()
            head.insert(1, EXAMPLE_COLUMN, shown[1][:len(head)])
        print(_preview(head, shown[0] if shown is not None else None))
        for line in _why(table, _SHOWN):
            print(line)
    print(f"wrote {out}")
    return 0


def _examples(run: Run, metrics: pd.DataFrame, table: pd.DataFrame, choice: DataChoice,
              given_shape: str | None) -> tuple[str, list] | None:
    """The column shown beside each row of ``table``: (its name, a value per row), after the
    data file's ``data: ...`` line (printed once the file is read: an error stays one line).

    The data file's text column (the one given or recorded, else ``text``/``sentence``/
    ``content``); for tabular data the run's feature columns as :data:`EXAMPLE_COLUMN`
    (:func:`~datacarto.commands._summary.describe_features`, a picture's summary when they are
    pixels; the first :data:`_SHOWN` rows, those of the preview); None without a data file or
    such columns.
    """
    source = choice.source
    shown = None if source is None else _example_values(run, metrics, table, source, given_shape)
    info(choice.line)
    return shown


def _example_values(run: Run, metrics: pd.DataFrame, table: pd.DataFrame, source: DataSource,
                    given_shape: str | None) -> tuple[str, list] | None:
    frame, rows = load_data_for_run(run, metrics["id"].to_numpy(), source.path, source.id_column,
                                    run_labels=metrics["label"].to_numpy())
    row_of = pd.Series(rows, index=metrics["id"].to_numpy())
    table_rows = row_of.loc[table["id"].to_numpy()].to_numpy()
    text = source.text_column
    if text is not None and text not in frame.columns:
        raise SchemaError(f"{source.path}: no column {text!r}; columns are "
                          f"{list(frame.columns)}.")
    if text is None:
        text = next((c for c in DEFAULT_TEXT_COLUMNS if c in frame.columns), None)
    if text is not None:
        return text, list(frame[text].to_numpy()[table_rows])
    recorded = run.meta.source.feature_columns if run.meta.source else None
    columns = [c for c in (recorded or pixel_columns(list(map(str, frame.columns))))
               if c in frame.columns]
    if not columns:
        return None
    shape = image_shape(columns, given_shape)
    values = frame[columns].iloc[table_rows[:_SHOWN]]
    if shape is not None:
        values = values.apply(pd.to_numeric, errors="coerce")
    return EXAMPLE_COLUMN, [describe_features(columns, v, shape)
                            for v in values.itertuples(index=False, name=None)]


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
