"""Guess the columns of ``datacarto run DATA`` when the user names none.

``datacarto run reviews.csv`` should just work on a file with a ``label`` and a ``text``
column. Every guess is printed (and stored in ``summary.json``), and each can be overridden
with the explicit option; a guess that could be wrong is not made:

label
    the first column named (case-insensitively) one of :data:`LABEL_NAMES`; otherwise an
    error that lists the columns.
id
    a column named ``id`` (any case) whose values are all present and unique; otherwise the
    row number.
text or features
    the remaining columns: a string column whose cells average at least
    :data:`TEXT_MIN_WORDS` words, or :data:`TEXT_MIN_CHARS` characters (Chinese or Japanese
    text has no spaces between words), is text (the longest, if several); otherwise every
    remaining column is a feature (tabular data).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import InputError

if TYPE_CHECKING:
    from .preparation import RunOptions

LABEL_NAMES = ("label", "labels", "class", "target", "y", "category", "sentiment",
               "gold_label", "gold", "annotation", "tag", "intent")
#: Mean words, or characters, per cell from which a string column is read as text rather
#: than a category.
TEXT_MIN_WORDS = 3.0
TEXT_MIN_CHARS = 16.0
#: Rows sampled to measure the words per cell.
SAMPLE_ROWS = 2000


def _named(frame: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {str(c).lower(): str(c) for c in reversed(list(frame.columns))}
    return next((lower[n] for n in names if n in lower), None)


def _mean_words_and_chars(column: pd.Series) -> tuple[float, float]:
    sample = column.dropna().head(SAMPLE_ROWS)
    if not (sample.dtype == object or pd.api.types.is_string_dtype(sample.dtype)) or sample.empty:
        return 0.0, 0.0
    cells = sample.astype(str)
    return float(cells.str.split().str.len().mean()), float(cells.str.len().mean())


def infer_columns(frame: pd.DataFrame, options: RunOptions, *,
                  source: str = "data") -> tuple[RunOptions, list[str]]:
    """``options`` with the label / id / text / feature columns filled in where unset, and the
    guesses as option strings (e.g. ``["--label-column label", "--text-column review"]``).

    Examples
    --------
    >>> from datacarto.train.preparation import RunOptions
    >>> f = pd.DataFrame({"id": [1, 2], "review": ["a fine long film", "not good at all"],
    ...                   "label": ["pos", "neg"]})
    >>> opts, notes = infer_columns(f, RunOptions(label_column=None))
    >>> notes
    ['--label-column label', '--id-column id', '--text-column review']
    """
    notes: list[str] = []
    label = options.label_column
    columns = [str(c) for c in frame.columns]
    if label is None:
        label = _named(frame, LABEL_NAMES)
        if label is None:
            shown = ", ".join(repr(c) for c in columns[:12]) + (", …" if len(columns) > 12 else "")
            raise InputError(f"{source}: which column holds the labels? None is named like one "
                             f"({', '.join(LABEL_NAMES[:6])}, …); give --label-column C. Columns "
                             f"are [{shown}].")
        notes.append(f"--label-column {label}")
    id_column = options.id_column
    if id_column is None and options.text_column is None and options.feature_columns is None:
        named = _named(frame, ("id",))
        if named is not None and named != label and frame[named].notna().all() \
                and frame[named].astype(str).is_unique:
            id_column = named
            notes.append(f"--id-column {id_column}")
    text, features = options.text_column, options.feature_columns
    if text is None and features is None:
        rest = [c for c in frame.columns if str(c) not in (label, id_column)]
        if not rest:
            raise InputError(f"{source}: no column besides the label{' and id' if id_column else ''}"
                             " to learn from; give --text-column T or --feature-columns A,B.")
        sizes = {str(c): _mean_words_and_chars(frame[c]) for c in rest}
        best = max(sizes, key=lambda c: sizes[c][1])
        words, chars = sizes[best]
        if words >= TEXT_MIN_WORDS or chars >= TEXT_MIN_CHARS:
            text = best
            notes.append(f"--text-column {text}")
        else:
            features = [str(c) for c in rest]
            notes.append("--feature-columns " + (",".join(features) if len(features) <= 6 else
                                                 f"{','.join(features[:3])},… ({len(features)} columns)"))
    return replace(options, label_column=label, id_column=id_column, text_column=text,
                   feature_columns=features), notes
