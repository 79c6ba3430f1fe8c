"""Data preparation for ``datacarto run``: check a DataFrame against :class:`RunOptions` and turn it
into arrays (:class:`Prepared`); nothing is written or printed."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_option
from ..datafiles import example_ids
from ..errors import InputError, SchemaError
from ..runmeta import CAPTURE_MODES
from .autoselect import MAX_EPOCHS, Selection
from .featurize import check_minilm_available, looks_english
from .infer import infer_columns
from .loop import HELDOUT_SCHEMES

__all__ = ["CAPTURE_MODES", "DEFAULT_EPOCHS", "HYPERPARAMETERS", "MODELS", "Prepared", "RunOptions",
           "encode_labels", "prepare"]

MODELS = ("auto", "linear", "mlp", "gbt", "minilm", "finetune")
#: Default epochs per model; enough for the map to spread and for memorisation to show.
DEFAULT_EPOCHS = {"linear": 6, "mlp": 6, "gbt": 10, "minilm": 6, "finetune": 3}  # auto: chosen
#: Default hyper-parameters per (input kind, model): measured on the demo data (docs/run.md).
HYPERPARAMETERS: dict[tuple[str, str], dict[str, Any]] = {
    ("text", "linear"): {"lr": 0.003, "batch_size": 64},
    ("text", "minilm"): {"lr": 0.003, "batch_size": 64, "hidden": 128},
    ("text", "finetune"): {"lr": 3e-5, "batch_size": 16, "max_length": 128},
    ("tabular", "linear"): {"lr": 0.01, "batch_size": 64},
    ("tabular", "mlp"): {"lr": 0.003, "batch_size": 64, "hidden": 128},
    ("tabular", "gbt"): {"lr": 0.1, "rounds": 10},
}


@dataclass
class RunOptions:
    """Options of ``datacarto run`` (see ``datacarto run --help``)."""

    label_column: str | None = None             # None: guessed (train.infer)
    text_column: str | None = None
    feature_columns: Sequence[str] | str | None = None
    id_column: str | None = None
    model: str = "auto"
    base: str | None = None
    capture: str = "pass"
    epochs: int | None = None
    seeds: int = 1
    seed: int = 0
    heldout: str = "side"
    lr: float | None = None
    batch_size: int | None = None
    hidden: int | None = None
    max_length: int | None = None
    quiet: bool = False
    top: int = 10
    max_epochs: int | None = None


@dataclass
class Prepared:
    """A validated dataset, ready to featurize."""

    frame: pd.DataFrame
    source: str
    ids: np.ndarray
    labels: np.ndarray
    classes: list[str]
    kind: str                                   # "text" or "tabular"
    texts: list[str] | None
    feature_columns: list[str] | None
    model: str                                  # "auto" until training has chosen
    epochs: int | None                          # None: chosen by the auto search
    hyper: dict[str, Any]
    base: Path | None = None
    max_epochs: int = MAX_EPOCHS
    selection: Selection | None = None          # what --model auto chose, and why
    guessed: list[str] = field(default_factory=list)  # column options train.infer filled in
    options: RunOptions | None = None           # the options with the guessed columns filled in

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row positions in :attr:`frame` of ``ids`` (each one of :attr:`ids`)."""
        order = np.argsort(self.ids, kind="stable")
        return order[np.searchsorted(self.ids[order], ids)]


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _resolve_columns(frame: pd.DataFrame, spec: Sequence[str] | str, source: str,
                     reserved: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Feature columns named or matched by ``spec``; patterns such as ``'*'`` skip the
    ``reserved`` label and id columns, which only an explicit name can (wrongly) ask for."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s]
    if not items:
        raise InputError(f"{source}: --feature-columns is empty; name columns like A,B or a "
                         "pattern like 'pixel_*'.")
    columns = [str(c) for c in frame.columns]
    out: list[str] = []
    for item in items:
        if item in columns:
            hits = [item]
        else:
            hits = [c for c in columns if fnmatch.fnmatchcase(c, item) and c not in reserved]
            if not hits:
                raise SchemaError(f"{source}: no column {item!r} (feature columns); columns are "
                                  f"{_preview_columns(columns)}.")
        out.extend(h for h in hits if h not in out)
    return out


def _preview_columns(columns: list[str], n: int = 12) -> str:
    shown = ", ".join(repr(c) for c in columns[:n])
    return f"[{shown}{', …' if len(columns) > n else ''}]"


def _require_column(frame: pd.DataFrame, column: str, what: str, source: str) -> None:
    if column not in frame.columns:
        raise SchemaError(f"{source}: no {what} column {column!r}; columns are "
                          f"{_preview_columns([str(c) for c in frame.columns])}.")


def encode_labels(column: pd.Series, *, name: str, source: str) -> tuple[np.ndarray, list[str]]:
    """Class indices (N,) and sorted class names of a label column; empty cells are errors.

    Numbers sort numerically (``2`` before ``10``) and integral floats lose their ``.0``;
    strings sort as text.

    Examples
    --------
    >>> idx, names = encode_labels(pd.Series(["pos", "neg", "pos"]), name="y", source="f.csv")
    >>> idx.tolist(), names
    ([1, 0, 1], ['neg', 'pos'])
    """
    missing = np.array(column.isna().to_numpy(), dtype=bool)
    if not missing.all() and (column.dtype == object or pd.api.types.is_string_dtype(column.dtype)):
        blank = column.astype("string").str.strip().fillna("").eq("")
        missing |= blank.to_numpy(dtype=bool, na_value=True)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise InputError(f"{source} row {row}: empty label in column {name!r}. Every row needs a "
                         f"label; fill it in or drop the row (rows with an empty label: {int(missing.sum())}).")
    if pd.api.types.is_bool_dtype(column.dtype):
        values = column.astype(bool).to_numpy()
        uniq = np.unique(values)
        names = [str(bool(v)) for v in uniq]
    elif pd.api.types.is_numeric_dtype(column.dtype):
        values = column.astype("float64").to_numpy()
        uniq = np.unique(values)
        names = [str(int(v)) if float(v).is_integer() else repr(float(v)) for v in uniq]
    else:
        values = column.astype(str).to_numpy()
        uniq = np.unique(values)
        names = [str(v) for v in uniq]
    if len(uniq) < 2:
        raise InputError(f"{source}: column {name!r} has a single class ({names[0]!r}) in all "
                         f"{len(values)} rows; a classifier needs at least 2 classes.")
    return np.searchsorted(uniq, values).astype(np.int64), names


def prepare(frame: pd.DataFrame, options: RunOptions, *, source: str = "data") -> Prepared:
    """Validate ``frame`` against ``options`` and resolve the model; nothing is written.

    Every problem with the input is an :class:`~datacarto.errors.InputError` /
    :class:`~datacarto.errors.SchemaError` (or ``MissingDependencyError``) raised here, before
    any output exists. ``model="auto"`` stays unresolved (``epochs`` None) until training.
    """
    check_option(options.model, MODELS, name="--model", where="datacarto run")
    check_option(options.capture, CAPTURE_MODES, name="--capture", where="datacarto run")
    check_option(options.heldout, HELDOUT_SCHEMES, name="--heldout", where="datacarto run")
    _positive_int(options.seeds, "--seeds")
    _positive_int(options.seed, "--seed", minimum=0)
    if options.epochs is not None:
        _positive_int(options.epochs, "--epochs")
    max_epochs = MAX_EPOCHS
    if options.max_epochs is not None:
        max_epochs = _positive_int(options.max_epochs, "--max-epochs", minimum=2)
    if options.text_column is not None and options.feature_columns is not None:
        raise InputError("datacarto run: give either --text-column or --feature-columns, not both.")
    options, guessed = infer_columns(frame, options, source=source)
    assert options.label_column is not None
    _require_column(frame, options.label_column, "label", source)
    if options.id_column is not None:
        _require_column(frame, options.id_column, "id", source)
    ids = example_ids(frame, options.id_column, path=source)
    labels, classes = encode_labels(frame[options.label_column], name=options.label_column,
                                    source=source)
    reserved = {options.label_column, options.id_column} - {None}
    texts: list[str] | None = None
    features: list[str] | None = None
    if options.text_column is not None:
        _require_column(frame, options.text_column, "text", source)
        if options.text_column in reserved:
            raise InputError(f"{source}: --text-column {options.text_column!r} is also the label or "
                             "id column.")
        kind = "text"
        texts = [("" if isinstance(v, float) and np.isnan(v) else str(v))
                 for v in frame[options.text_column].astype(object).where(
                     frame[options.text_column].notna(), "").tolist()]
    else:
        kind = "tabular"
        assert options.feature_columns is not None
        features = _resolve_columns(frame, options.feature_columns, source, reserved)
        clash = [c for c in features if c in reserved]
        if clash:
            raise InputError(f"{source}: feature column {clash[0]!r} is also the label or id "
                             "column; leave it out of --feature-columns.")
    model = options.model
    if kind == "text" and model == "gbt":
        raise InputError("--model gbt is for tabular --feature-columns; for text use auto, linear "
                         "(TF-IDF), minilm or finetune.")
    if model == "gbt":
        from .._deps import require

        require("sklearn", extra="sklearn", feature="--model gbt (gradient-boosted trees)")
    if kind == "text" and model == "mlp":
        raise InputError("--model mlp is for tabular --feature-columns; for text use linear "
                         "(TF-IDF), minilm or finetune.")
    if kind == "tabular" and model in ("minilm", "finetune"):
        raise InputError(f"--model {model} reads text: give --text-column instead of "
                         "--feature-columns, or use --model linear or mlp.")
    base = None
    if model == "minilm":
        check_minilm_available()
    elif model == "finetune":
        from .finetune import check_finetune_available

        base = check_finetune_available(options.base)
    if kind == "text" and model in ("linear", "auto"):
        from .._deps import require

        require("sklearn", extra="sklearn", feature=f"the TF-IDF text model (--model {model})")
    hyper = dict(HYPERPARAMETERS.get((kind, model), {}))
    for key in ("lr", "batch_size", "hidden", "max_length"):
        value = getattr(options, key)
        if value is not None:
            if key == "lr":
                if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                    raise InputError(f"--lr must be a positive number; got {value!r}.")
            else:
                _positive_int(value, f"--{key.replace('_', '-')}")
            hyper[key] = value
    epochs = options.epochs if options.epochs is not None else DEFAULT_EPOCHS.get(model)
    if model == "minilm" and texts is not None and not looks_english(texts):
        warnings.warn(f"{source}: --model minilm reads English (all-MiniLM-L6-v2 was trained on "
                      "English text) but most of this text is not; --model auto (TF-IDF of "
                      "characters) usually maps such text better.", UserWarning, stacklevel=2)
    return Prepared(frame=frame, source=source, ids=ids, labels=labels, classes=classes, kind=kind,
                    texts=texts, feature_columns=features, model=model,
                    epochs=None if epochs is None else int(epochs), hyper=hyper, base=base,
                    max_epochs=max_epochs, guessed=guessed, options=options)

