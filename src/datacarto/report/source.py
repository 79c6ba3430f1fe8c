"""Where a run's examples live: the user's data file and its text / id / label columns.

The report and the review page show each example's text and the review export rewrites its
label, so both need the data file the run was trained on. It comes from the command line
(``--data DATA --text-column T --id-column I --label-column L``) or, for runs made by
``datacarto run``, from ``run.json``'s ``extra["source"]`` (or ``extra["data"]``), a dict
``{"path", "text_column", "id_column", "label_column"}``; options given on the command line win.
:func:`choose_data` is that choice for every command (``flag``, ``select``, ``report``,
``review``), with the one line each prints about it (:attr:`DataChoice.line`); a recorded
file that is gone, or whose fingerprint is no longer the one ``run.json`` records, is not used.

Rows are matched to the run by id: the ``id_column`` when given, else the 0-based row number
(:func:`datacarto.datafiles.example_ids`). Ids are compared by their string form, so a run
recorded with integer ids matches a CSV whose id column pandas read as text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._datamatch import check_data_matches_run
from ..datafiles import DataTable, example_ids, read_table
from ..runmeta import DataRecord, RunMeta
from ..errors import InputError, SchemaError

__all__ = ["DataChoice", "DataSource", "LoadedData", "choose_data", "load_source", "resolve_source"]

#: Column names tried when none is given or recorded.
DEFAULT_TEXT_COLUMNS = ("text", "sentence", "content")
DEFAULT_LABEL_COLUMNS = ("label", "labels", "target")


@dataclass(frozen=True)
class DataSource:
    """A data file and the names of its columns (``None``: not known / row numbers for ids)."""

    path: Path
    text_column: str | None = None
    id_column: str | None = None
    label_column: str | None = None


@dataclass(frozen=True)
class LoadedData:
    """A read data file: the frame, its ids (one per row) and an id -> row lookup."""

    source: DataSource
    frame: pd.DataFrame
    ids: np.ndarray
    row_of: dict[str, int]
    #: the file as read for copying (cells as text, raw records): exports write from it
    table: DataTable | None = None

    def rows_for(self, run_ids: np.ndarray) -> np.ndarray:
        """Row of each run id in the file, -1 where the file lacks it."""
        get = self.row_of.get
        return np.fromiter((get(str(i), -1) for i in run_ids), dtype=np.int64, count=len(run_ids))

    def texts_for(self, run_ids: np.ndarray) -> list[str | None]:
        """The text of each run id (``None`` where missing or when there is no text column)."""
        if self.source.text_column is None:
            return [None] * len(run_ids)
        col = self.frame[self.source.text_column]
        values = col.to_numpy(dtype=object, na_value=None)
        rows = self.rows_for(run_ids)
        return [None if r < 0 or values[r] is None else str(values[r]) for r in rows]


def _locate(recorded: str, run_dir: Path) -> Path | None:
    """A recorded data path, as given (absolute or from the working directory) or beside the run."""
    path = Path(recorded)
    for candidate in (path, run_dir / path, run_dir.parent / path):
        if candidate.is_file() or candidate.is_dir():  # a saved dataset is a directory
            return candidate
    return None


@dataclass(frozen=True)
class DataChoice:
    """The data file a command uses, where that came from, and why a recorded one is not used.

    ``origin`` is ``"option"`` (``--data``), ``"recorded"`` (``datacarto run``'s record) or
    ``None`` (no file: ``problem`` says why when the run recorded one).
    """

    source: DataSource | None
    origin: str | None = None
    problem: str | None = None

    @property
    def line(self) -> str:
        """The one line a command prints about its data file, e.g.
        ``data: reviews.csv (recorded by datacarto run; --data to change)``."""
        if self.source is not None:
            how = ("recorded by datacarto run; --data to change" if self.origin == "recorded"
                   else "--data")
            return f"data: {self.source.path} ({how})"
        if self.problem:
            return f"data: none ({self.problem}; --data DATA to give the file)"
        return "data: none (the run records no data file; --data DATA to give one)"


def choose_data(run_dir: str | os.PathLike[str], meta: RunMeta, *,
                data: str | os.PathLike[str] | None = None, text_column: str | None = None,
                id_column: str | None = None, label_column: str | None = None) -> DataChoice:
    """The data file and columns a command uses: each option given, else what ``run.json``
    records (``datacarto run``).

    The recorded path is tried as written, then beside the run. It is not used when no such
    file exists or when its fingerprint differs from the run's ``data_fingerprint`` (the file
    changed since the run: its rows may no longer be the run's examples); ``problem`` then
    says which.
    """
    recorded = meta.source or DataRecord()

    def pick(given: str | None, value: str | None) -> str | None:
        return given if given is not None else (value or None)

    def columns(path: Path) -> DataSource:
        return DataSource(path=path, text_column=pick(text_column, recorded.text_column),
                          id_column=pick(id_column, recorded.id_column),
                          label_column=pick(label_column, recorded.label_column))

    if data is not None:
        return DataChoice(columns(Path(data)), "option")
    if not recorded.path:
        return DataChoice(None)
    located = _locate(recorded.path, Path(run_dir))
    if located is None:
        return DataChoice(None, problem=f"{recorded.path}, recorded by datacarto run, is gone")
    if meta.data_fingerprint:
        from ..store import fingerprint_file

        if fingerprint_file(located) != meta.data_fingerprint:
            return DataChoice(None, problem=f"{located}, recorded by datacarto run, has changed "
                                            "since the run (its fingerprint differs)")
    return DataChoice(columns(located), "recorded")


def resolve_source(run_dir: str | os.PathLike[str], meta: RunMeta, *,
                   data: str | os.PathLike[str] | None = None, text_column: str | None = None,
                   id_column: str | None = None, label_column: str | None = None,
                   ) -> DataSource | None:
    """The data source of :func:`choose_data`.

    Returns ``None`` when no data file is given or recorded (or the recorded one is gone or
    changed): callers that can work without text (the report) go on, others raise.
    """
    return choose_data(run_dir, meta, data=data, text_column=text_column, id_column=id_column,
                       label_column=label_column).source


def _check_column(frame: pd.DataFrame, column: str, option: str, path: Path) -> None:
    if column not in frame.columns:
        raise SchemaError(f"{path}: no column {column!r} (from {option}); columns are "
                          f"{list(map(str, frame.columns))}.")


def load_source(source: DataSource, run_ids: np.ndarray, *, need_label: bool = False,
                meta: RunMeta | None = None,
                run_labels: np.ndarray | None = None) -> LoadedData:
    """Read the data file, check the columns and that its ids cover the run's.

    Columns not named fall back to common names (``text``, ``label``) when the file has them.
    Raises SchemaError naming the file when a column is missing or no run id is in the file,
    and InputError when ``need_label`` and no label column can be found. Cells are read as the
    text in the file (:func:`datacarto.datafiles.read_table`). With ``meta`` (the run's
    run.json) and ``run_labels`` (the run's class index per run id), the file must be the one
    the run was made from (:func:`datacarto._datamatch.check_data_matches_run`).
    """
    table = read_table(source.path)
    frame = table.frame
    text_column, label_column = source.text_column, source.label_column
    if text_column is None:
        text_column = next((c for c in DEFAULT_TEXT_COLUMNS if c in frame.columns), None)
    else:
        _check_column(frame, text_column, "--text-column", source.path)
    if label_column is None:
        label_column = next((c for c in DEFAULT_LABEL_COLUMNS if c in frame.columns), None)
    else:
        _check_column(frame, label_column, "--label-column", source.path)
    if need_label and label_column is None:
        raise InputError(f"{source.path}: no label column found (tried "
                         f"{', '.join(DEFAULT_LABEL_COLUMNS)}). Name it with --label-column.")
    ids = example_ids(frame, source.id_column, path=source.path)
    row_of = {str(v): i for i, v in enumerate(ids.tolist())}
    present = sum(1 for i in run_ids.tolist() if str(i) in row_of)
    if len(run_ids) and present == 0:
        how = (f"column {source.id_column!r}" if source.id_column else "row numbers (0-based)")
        raise SchemaError(f"{source.path}: none of the run's {len(run_ids)} ids is in the file "
                          f"(ids from {how}; first run id: {run_ids[0]!r}). Pass the id column "
                          "with --id-column.")
    resolved = DataSource(path=source.path, text_column=text_column, id_column=source.id_column,
                          label_column=label_column)
    loaded = LoadedData(source=resolved, frame=frame, ids=ids, row_of=row_of, table=table)
    if meta is not None:
        check_data_matches_run(meta, source.path, frame, loaded.rows_for(run_ids),
                               id_column=source.id_column, label_column=label_column,
                               run_labels=run_labels)
    return loaded
