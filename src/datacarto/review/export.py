"""Export a corrected copy of the user's dataset from the review decisions.

The copy has the data file's own format (CSV, TSV, JSONL, Parquet, or a Hugging Face
``save_to_disk`` directory with the dataset's features) and every column of the original, in the original row order; for each id's latest decision:

========  ===============================================================
accept    the label becomes the suggested label
relabel   the label becomes the label the reviewer chose
keep      the row is unchanged
drop      the row is left out
========  ===============================================================

Labels are written the way the file holds them: as the class name itself for a text column;
for a numeric column, as the number the class name spells (runs made by ``datacarto run``
name classes ``"1"``, ``"2"``, ...) or, when the class names are not numbers (a Recorder run
with ``classes=["neg", "pos"]`` over a 0/1 column), as the class index. A class created in the
review (``new_classes``) is written as its name in a text column, as the next index after the
run's classes in an index column, and must be a number in a numeric one. A change log (CSV:
id, row, action, old_label, new_label, time, why -- the bulk action or proposal behind the
change, when there is one) is written beside the copy. The original file is never opened
for writing: an output path that is the data file itself is refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._paths import check_output_path
from ..datafiles import copy_format, data_format, write_data, write_rows
from ..errors import InputError, SchemaError
from ..report.source import LoadedData
from ..store import atomic_write

__all__ = ["ExportResult", "changes_path", "export_corrected"]

_DATA_SUFFIXES = {".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq", ".gz", ".bz2", ".xz", ".zst"}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how many rows each action touched."""

    path: Path
    changes: Path
    rows: int
    relabelled: int
    dropped: int
    kept: int
    mismatched: int

    def summary(self) -> str:
        text = (f"wrote {self.path} ({self.rows} rows: {self.relabelled} relabelled, "
                f"{self.dropped} dropped, {self.kept} kept as is) and the change log {self.changes}")
        if self.mismatched:
            text += (f"; note: {self.mismatched} decided row(s) had a label in the file different "
                     "from the run's")
        return text


def changes_path(out: str | os.PathLike[str]) -> Path:
    """The change log beside ``out``: ``corrected.csv.gz`` -> ``corrected.changes.csv``.

    >>> changes_path("out/corrected.jsonl.gz").as_posix()
    'out/corrected.changes.csv'
    """
    out = Path(out)
    name = out.name
    while Path(name).suffix.lower() in _DATA_SUFFIXES:
        name = name[: -len(Path(name).suffix)]
    return out.with_name(f"{name or 'corrected'}.changes.csv")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _number(name: str) -> float | None:
    try:
        return float(name)
    except ValueError:
        return None


class _LabelCodec:
    """How class names map to the values of the file's label column, and back.

    The column is read as in the file (:func:`datacarto.datafiles.read_table`): CSV/TSV cells as
    text, JSONL values as JSON values, Parquet in its own type. A new label is written in the
    column's own style: text in a CSV (``TRUE`` stays upper case, ``2.0`` keeps its ``.0``), the
    JSON type the column already uses, the Parquet column's type.
    """

    def __init__(self, column: pd.Series, classes: Sequence[str]) -> None:
        self.classes = list(classes)
        self.extra: list[str] = []  # classes created in the review, after ``classes``
        dtype = column.dtype
        self.integral = False
        self.text = False
        self.spelling: dict[str, str] = {}
        values = [v for v in column.to_numpy(dtype=object) if not _missing(v)]
        if pd.api.types.is_bool_dtype(dtype) or (values and all(isinstance(v, bool) for v in values)):
            self.kind = "bool"
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            numeric = all(_number(c) is not None for c in self.classes)
            self.kind = "number" if numeric else "index"
            self.integral = pd.api.types.is_integer_dtype(dtype)
        elif values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            numeric = all(_number(c) is not None for c in self.classes)  # JSON numbers
            self.kind = "number" if numeric else "index"
            self.integral = all(isinstance(v, int) for v in values)
        elif values and all(isinstance(v, str) for v in values):
            self.text = True
            lowered = {v.strip().lower() for v in values}
            if lowered <= {"true", "false"} and set(self.classes) <= {"True", "False"}:
                self.kind = "bool"
                self.spelling = {v.strip().capitalize(): v for v in values}
            elif all(_number(v) is not None for v in values) and not set(self.classes) & set(values):
                numeric = all(_number(c) is not None for c in self.classes)
                self.kind = "number" if numeric else "index"
                self.integral = all(re.fullmatch(r"\s*[-+]?\d+\s*", v) is not None for v in values)
            else:
                self.kind = "name"
        else:
            self.kind = "name"

    def name_of(self, value: Any) -> str:
        if _missing(value):
            return ""
        if self.kind == "index":
            try:
                k = int(float(value))
            except (TypeError, ValueError):
                return str(value)
            return self.classes[k] if 0 <= k < len(self.classes) else str(value)
        if self.kind == "number":
            try:
                v = float(value)
            except (TypeError, ValueError):
                return str(value)
            return str(int(v)) if v.is_integer() else repr(v)
        if self.kind == "bool":
            return str(value).strip().capitalize() if isinstance(value, str) else str(bool(value))
        return str(value)

    def value_of(self, name: str) -> Any:
        if name in self.extra and self.kind in ("number", "bool") and _number(name) is None:
            raise InputError(f"new class {name!r}: the label column holds "
                             f"{'numbers' if self.kind == 'number' else 'true/false'}, so a new class "
                             "there must be named by a number; merge it or create it under a number.")
        if self.kind == "index":
            value: Any = [*self.classes, *self.extra].index(name)
        elif self.kind == "number":
            v = float(name)
            value = int(v) if self.integral or v.is_integer() else v
            if self.text and not self.integral:
                value = repr(float(v))
        elif self.kind == "bool":
            if self.text:
                return self.spelling.get(name, name)
            return name == "True"
        else:
            value = name
        return str(value) if self.text else value


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def export_corrected(data: LoadedData, decisions: Mapping[str, Mapping[str, Any]],
                     classes: Sequence[str], out: str | os.PathLike[str], *,
                     run_labels: Mapping[str, str] | None = None,
                     new_classes: Sequence[str] = ()) -> ExportResult:
    """Write the corrected copy of ``data`` to ``out`` and its change log beside it.

    Parameters
    ----------
    data : LoadedData
        The user's data file, read with its label column known.
    decisions : mapping
        ``str(id)`` -> latest decision (``DecisionLog.latest``).
    classes : sequence of str
        The run's class names (index k names label k).
    out : str or Path
        Where to write; its extension must give the data file's format.
    run_labels : mapping, optional
        ``str(id)`` -> the run's label name, to count rows whose file label differs.
    new_classes : sequence of str, optional
        Classes created in the review (after ``classes``; index ``len(classes) + j``).

    Raises
    ------
    InputError
        If ``out`` is the data file, has another format, or a decision names an unknown label.
    SchemaError
        If the data has no label column or a decided id is not in the data file.
    """
    out = Path(out)
    src = data.source
    if src.label_column is None:
        raise SchemaError(f"{src.path}: no label column to correct. Name it with --label-column.")
    if _same_file(out, src.path):
        raise InputError(f"{out}: this is the data file itself; the original is never modified. "
                         "Choose another output path.")
    source_fmt = data_format(src.path)
    if copy_format(out, source_fmt) != "hf":  # a saved dataset is a directory, checked on writing
        check_output_path(out, inputs=[src.path], option="--export")
    check_output_path(changes_path(out), inputs=[src.path], option="--export")
    if copy_format(out, source_fmt) != source_fmt:
        raise InputError(f"{out}: the corrected copy keeps the data file's format "
                         f"({data_format(src.path)}); got a .{data_format(out)} name. Use an output "
                         f"name ending in the data file's extension.")
    class_index = {name: k for k, name in enumerate([*classes, *new_classes])}
    frame = data.frame.copy()
    column = frame[src.label_column]
    codec = _LabelCodec(column, classes)
    codec.extra = [c for c in new_classes if c not in classes]
    keep_row = np.ones(len(frame), dtype=bool)
    changes: list[dict[str, Any]] = []
    counts = {"relabelled": 0, "dropped": 0, "kept": 0, "mismatched": 0}
    new_values: dict[int, Any] = {}
    for key, dec in decisions.items():
        row = data.row_of.get(key)
        if row is None:
            raise SchemaError(f"{src.path}: id {dec.get('id')!r} has a review decision but is not in "
                              "the file. Use the data file (and --id-column) the run was made from.")
        old_name = codec.name_of(column.iloc[row])
        if run_labels is not None and run_labels.get(key) not in (None, old_name):
            counts["mismatched"] += 1
        action, new_name = dec["action"], dec.get("new_label")
        if action == "drop":
            keep_row[row] = False
            counts["dropped"] += 1
        elif action == "keep" or new_name == old_name:
            counts["kept"] += 1
        else:
            if new_name not in class_index:
                raise InputError(f"decision for id {dec.get('id')!r}: label {new_name!r} is not a class "
                                 f"of the run ({', '.join(classes)}).")
            new_values[row] = codec.value_of(new_name)
            counts["relabelled"] += 1
        changes.append({"id": dec.get("id"), "row": row, "action": action, "old_label": old_name,
                        "new_label": None if action == "drop" else (new_name if action != "keep" else old_name),
                        "time": dec.get("time"), "why": dec.get("source") or ""})
    if data.table is not None:
        # every row and cell not decided is written exactly as read (datafiles.write_rows)
        write_rows(data.table, np.flatnonzero(keep_row),
                   out, changes={row: {src.label_column: v} for row, v in new_values.items()})
    else:
        if new_values:
            rows = np.fromiter(new_values, dtype=np.int64, count=len(new_values))
            values = list(new_values.values())
            if codec.kind == "number" and not codec.integral and all(
                    isinstance(v, int) for v in values):
                values = [float(v) for v in values]
            position = frame.columns.get_loc(src.label_column)
            frame.iloc[rows, position] = values
        corrected = frame.loc[keep_row].reset_index(drop=True)
        write_data(corrected, out)
    log = pd.DataFrame(changes, columns=["id", "row", "action", "old_label", "new_label", "time", "why"])
    log = log.sort_values("row", kind="stable")
    log_path = changes_path(out)
    atomic_write(log_path, lambda tmp: log.to_csv(tmp, index=False))
    return ExportResult(path=out, changes=log_path, rows=int(keep_row.sum()), **counts)
