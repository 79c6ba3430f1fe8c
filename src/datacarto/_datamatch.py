"""Is this data file the one the run was made from? Checked before any row is matched to a run id.

* With the default row-number ids, a row is an example only in the very file the run was made
  from: when ``run.json`` records the data's fingerprint (``datacarto run`` and ``demo`` do) and
  the file's differs, that is an error (a re-ordered, filtered or edited file would put every
  decision, text and selection on the wrong example).
* With an id column (or when no fingerprint was recorded), the file's given labels must agree
  with the run's for all but :data:`LABEL_MISMATCH_TOLERANCE` of the run's examples found in it
  (compared by class name, or by class index when the file holds 0..K-1). A column in which no
  label agrees at all spells the classes differently and is not compared.

Used by ``select --data``, ``flag --data``, ``report`` and ``review``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .runmeta import RunMeta

__all__ = ["LABEL_MISMATCH_TOLERANCE", "check_data_matches_run", "label_key"]

#: Largest share of the run's examples whose label in the data file may differ from the run's
#: (labels corrected by a review); beyond it the file is taken for another one and refused.
LABEL_MISMATCH_TOLERANCE = 0.05


def check_fingerprint(meta: RunMeta, path: str | os.PathLike[str],
                      id_column: str | None) -> None:
    """With row-number ids, the data file's fingerprint must be the run's (when recorded)."""
    from .store import fingerprint_file

    recorded = meta.data_fingerprint
    if id_column is not None or not recorded:
        return
    actual = fingerprint_file(path)
    if actual != recorded:
        raise InputError(f"{path}: this is not the file the run was made from (its fingerprint "
                         f"{actual[:19]}… differs from run.json's {recorded[:19]}…), and ids are "
                         "row numbers, so rows would land on the wrong examples. Use the original "
                         "file, or give --id-column if the file has an id column.")


def label_key(value: Any) -> str | None:
    """A label as a class name: numbers without a trailing ``.0``, booleans as True/False."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.capitalize()
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def count_label_mismatches(values: Sequence[Any], run_labels: np.ndarray,
                           classes: Sequence[str]) -> int:
    """How many file labels differ from the run's (``run_labels``: class indices), comparing by
    class name or, when the file holds class indices 0..K-1, by index (the better match wins)."""
    values = pd.Series(list(values), dtype=object)
    if values.empty:
        return 0
    run_labels = np.asarray(run_labels, dtype=np.int64)
    names = np.asarray([label_key(c) for c in classes] + [None], dtype=object)
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)  # label_key once per value
        keys = np.asarray([label_key(u) for u in uniques] + [None], dtype=object)[codes]
    except TypeError:  # unhashable cells (JSON lists): one by one
        keys = np.asarray([label_key(v) for v in values], dtype=object)
    by_name = int((keys != names[np.clip(run_labels, -1, len(classes) - 1)]).sum())
    try:
        index = np.asarray([-1 if k is None else int(k) for k in keys], dtype=np.int64)
    except (ValueError, OverflowError):
        return by_name
    return min(by_name, int((index != run_labels).sum()))


def check_labels_agree(path: str | os.PathLike[str], label_column: str, values: Sequence[Any],
                       run_labels: np.ndarray, classes: Sequence[str]) -> int:
    """Refuse the file when more than LABEL_MISMATCH_TOLERANCE of the labels differ; return the count."""
    n = len(values)
    if n == 0:
        return 0
    bad = count_label_mismatches(values, run_labels, classes)
    if bad == n:
        # no label agrees, not even by class index: the column spells the classes differently
        # (``neg`` for ``negative``) or is not the labels; nothing to compare
        return 0
    if bad > LABEL_MISMATCH_TOLERANCE * n:
        raise InputError(f"{path}: column {label_column!r} disagrees with the run's labels for {bad} "
                         f"of {n} examples (more than {LABEL_MISMATCH_TOLERANCE:.0%}); this does not "
                         "look like the file the run was made from (check --data, --id-column "
                         "and --label-column).")
    return bad


def check_data_matches_run(meta: RunMeta, path: str | os.PathLike[str], frame: pd.DataFrame,
                           rows: np.ndarray, *, id_column: str | None,
                           label_column: str | None = None,
                           run_labels: np.ndarray | None = None) -> None:
    """Both checks of the module docstring. ``rows``: the file row of each run example (-1 if
    missing); ``run_labels``: the run's class index of each example."""
    check_fingerprint(meta, Path(path), id_column)
    if label_column is None or run_labels is None or label_column not in frame.columns:
        return
    if id_column is None and meta.data_fingerprint:
        return  # the very same file: nothing more to check
    found = rows >= 0
    values = frame[label_column].to_numpy(dtype=object)[rows[found]]
    check_labels_agree(path, label_column, list(values), np.asarray(run_labels)[found],
                       list(meta.classes))
