"""``datacarto run``: from a data file to a data map with no code.

Stages, each usable on its own (the demo uses them):

1. :func:`prepare` — check the user's columns and rows and resolve the model. Every problem
   with the input is an :class:`~datacarto.errors.InputError` (or ``MissingDependencyError``)
   raised *here*, before anything is written.
2. :func:`reset_output` — make ``RUN`` ready: create it, or clear the outputs of an earlier
   ``datacarto run`` there (its ``cache/`` of embeddings is kept, so reruns skip the encoder).
   A directory that holds anything else is refused.
3. :func:`execute` — featurize, train ``seeds`` times recording dynamics through a
   :class:`~datacarto.recorder.Recorder` (see :mod:`datacarto.train.loop` for the held-out
   scheme), compute metrics, write the outputs.
4. :func:`summarize` — the text printed at the end.

Layout of RUN (docs/run.md). With one seed RUN is itself the run directory::

    RUN/run.json, RUN/epochs/…      the store (datacarto metrics/map/flag RUN work on it)
    RUN/heldout.parquet             held-out logits per epoch (id, fold, epoch, logits)
    RUN/metrics.parquet, .csv       every metric per example
    RUN/datamap.png, RUN/suspects.csv, RUN/summary.json, RUN/summary.txt

With ``seeds = K > 1`` each seed is a run directory ``RUN/seed-0`` … ``RUN/seed-{K-1}`` (each
with its own ``heldout.parquet``), and the files at the top are aggregated over the seeds
(:func:`datacarto.metrics.aggregate_runs`: mean and ``_std`` of every metric).
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import store
from .._validation import check_option
from ..datafiles import example_ids, write_data
from ..errors import InputError, SchemaError
from ..metrics import aggregate_runs
# the output directory (marker, file names, reset_output) lives in datacarto.outputs
from ..outputs import CACHE_DIR, CREATED_BY, reset_output
from ..progress import Progress
from ..recorder import Recorder
from ..regions import REGIONS
from ..run import load
from .autoselect import MAX_EPOCHS, Candidate, Selection
from .infer import infer_columns
from .featurize import (check_minilm_available, looks_english, lsa_features, minilm_embeddings,
                        tabular_features, tfidf_features)
from .loop import (HELDOUT_SCHEMES, MEMORISATION_GAP, memorisation_epoch, side_folds,
                   train_and_record)

MODELS = ("auto", "linear", "mlp", "gbt", "minilm", "finetune")
CAPTURE_MODES = ("pass", "eval")
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
#: Feature columns shown in suspects.csv for tabular data (a row's other columns are in the data).
MAX_SUSPECT_FEATURES = 30


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
    model: str                                  # "auto" until execute() has chosen
    epochs: int | None                          # None: chosen by the auto search
    hyper: dict[str, Any]
    base: Path | None = None
    max_epochs: int = MAX_EPOCHS
    selection: Selection | None = None          # what --model auto chose, and why
    guessed: list[str] = field(default_factory=list)  # column options train.infer filled in
    options: RunOptions | None = None           # the options with the guessed columns filled in


@dataclass
class RunResult:
    """What :func:`execute` produced."""

    out: Path
    run_dirs: list[Path]
    prepared: Prepared
    metrics: pd.DataFrame
    suspects: pd.DataFrame
    curve: list[dict[str, Any]]
    memorisation_epoch: int | None
    heldout: str = "side"
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------- prepare
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
    """Validate ``frame`` against ``options``; nothing is written. See the module docstring."""
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


# --------------------------------------------------------------------------- output dir
# reset_output: see datacarto.outputs (imported above)


# ------------------------------------------------------------------------------- execute
def _featurize(prep: Prepared, out: Path, progress: Progress) -> tuple[Any, dict[str, Any]]:
    n = len(prep.labels)
    if prep.kind == "tabular":
        assert prep.feature_columns is not None
        X, names = tabular_features(prep.frame, prep.feature_columns)
        return X, {"input": "tabular", "columns": len(prep.feature_columns), "dim": len(names)}
    assert prep.texts is not None
    if prep.model in ("linear", "auto"):
        progress.start(f"TF-IDF features of {n:,} texts", total=n)
        X = tfidf_features(prep.texts)
        progress.advance(n)
        progress.finish(f"{X.shape[1]:,} features")
        return X, {"input": "tfidf", "dim": int(X.shape[1])}
    if prep.model == "minilm":
        progress.start(f"MiniLM embeddings of {n:,} texts", total=n)
        X, cached = minilm_embeddings(prep.texts, cache_dir=out / CACHE_DIR,
                                      on_progress=progress.advance)
        progress.finish("from cache" if cached else f"cached in {out / CACHE_DIR}")
        return X.astype(np.float64), {"input": "minilm", "dim": int(X.shape[1]), "cached": cached}
    from .finetune import Tokenized

    assert prep.base is not None
    progress.start(f"tokenizing {n:,} texts", total=n)
    tokens = Tokenized(prep.base, prep.texts, int(prep.hyper["max_length"]))
    progress.advance(n)
    progress.finish()
    return tokens, {"input": "tokens", "base": str(prep.base),
                    "max_length": int(prep.hyper["max_length"])}


def _choose_model(prep: Prepared, X: Any, featurizer: dict[str, Any], options: RunOptions,
                  progress: Progress) -> Any:
    """Resolve ``--model auto`` in place (model, hyper-parameters, epochs); the features to use.

    See :mod:`datacarto.train.autoselect`. Data too small for a held-out comparison keeps the
    linear model with :data:`SMALL_DATA_EPOCHS` epochs, and says so.
    """
    from . import autoselect

    counts = np.bincount(prep.labels, minlength=len(prep.classes))
    pool = autoselect.candidates(prep.kind, len(prep.labels))
    cache: dict[str, Any] = {pool[0].input: X}

    def features(cand: Candidate) -> Any:
        if cand.input not in cache:  # only "lsa" is derived: TF-IDF -> truncated SVD
            progress.start(f"LSA ({autoselect.LSA_DIM} dims) of the TF-IDF features", total=1)
            cache[cand.input] = lsa_features(X, autoselect.LSA_DIM, seed=int(options.seed))
            progress.advance(1)
            progress.finish()
        return cache[cand.input]

    if len(prep.labels) < AUTO_MIN_ROWS or counts[counts > 0].min() < AUTO_MIN_CLASS_ROWS:
        chosen = pool[0]
        prep.epochs = prep.epochs or SMALL_DATA_EPOCHS
        featurizer["auto"] = {
            "chosen": chosen.name, "epochs": prep.epochs,
            "reason": (f"too few rows to compare models on held-out rows ({len(prep.labels)} "
                       f"rows, smallest class {int(counts[counts > 0].min())}; needs "
                       f"{AUTO_MIN_ROWS} rows and {AUTO_MIN_CLASS_ROWS} per class): "
                       f"{chosen.name} with {prep.epochs} epochs")}
    else:
        selection = autoselect.search(features, prep.labels, len(prep.classes), pool,
                                      seed=int(options.seed), max_epochs=prep.max_epochs,
                                      progress=progress)
        chosen = selection.chosen
        prep.selection = selection
        prep.epochs = prep.epochs or selection.epochs
        featurizer["auto"] = {**selection.as_dict(), "epochs": prep.epochs,
                              "reason": selection.describe()}
    prep.model = chosen.model
    prep.hyper = {**chosen.hyper, **prep.hyper}  # --lr and the like still override
    featurizer["input"] = chosen.input
    X = features(chosen)
    featurizer["dim"] = int(X.shape[1])
    return X


#: Below these sizes ``--model auto`` does not compare models (the held-out folds would be
#: too small to tell them apart) and trains the linear model for SMALL_DATA_EPOCHS epochs.
AUTO_MIN_ROWS = 40
AUTO_MIN_CLASS_ROWS = 4
SMALL_DATA_EPOCHS = 10


def _model_factory(prep: Prepared, X: Any) -> Any:
    h = prep.hyper
    k = len(prep.classes)
    if prep.model == "finetune":
        from .finetune import FinetuneModel

        assert prep.base is not None
        return lambda rows, seed: FinetuneModel(prep.base, X, prep.labels, k, lr=h["lr"],
                                                batch_size=h["batch_size"], seed=seed)
    from .models import MLP, SoftmaxRegression

    if prep.model == "gbt":
        from .boosting import BoostedTrees

        return lambda rows, seed: BoostedTrees(X, prep.labels, k, rounds=h["rounds"], lr=h["lr"],
                                               seed=seed)
    if prep.model == "linear":
        return lambda rows, seed: SoftmaxRegression(X, prep.labels, k, lr=h["lr"],
                                                    batch_size=h["batch_size"], seed=seed)
    return lambda rows, seed: MLP(X, prep.labels, k, hidden=h["hidden"], lr=h["lr"],
                                  batch_size=h["batch_size"], seed=seed)


def _update_run_extra(run_dir: Path, updates: dict[str, Any]) -> None:
    store.update_run_extra(run_dir, **updates)


def _metrics(run_dir: Path) -> pd.DataFrame:
    with warnings.catch_warnings():
        # a 1-epoch run is allowed; its zero variability is explained in the summary
        warnings.filterwarnings("ignore", message="only 1 epoch recorded", category=UserWarning)
        return load(run_dir).metrics()


def mean_curve(curves: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per-epoch mean over seeds of every accuracy in the curves, and of the gap.

    Examples
    --------
    >>> mean_curve([[{"epoch": 1, "train_acc": 0.5}], [{"epoch": 1, "train_acc": 0.7}]])
    [{'epoch': 1, 'train_acc': 0.6}]
    """
    out = []
    for points in zip(*curves):
        point: dict[str, Any] = {"epoch": points[0]["epoch"]}
        for key in ("train_acc", "halves_train_acc", "heldout_acc", "gap"):
            if all(key in p for p in points):
                point[key] = round(float(np.mean([p[key] for p in points])), 6)
        out.append(point)
    return out


def execute(prep: Prepared, options: RunOptions, out: str | os.PathLike[str], *,
            data_fingerprint: str | None = None, extra: dict[str, Any] | None = None,
            progress: Progress | None = None, title: str | None = None) -> RunResult:
    """Featurize, train and record every seed, compute metrics and write every output."""
    options = prep.options or options  # with the columns prepare() guessed
    out = Path(out)
    progress = progress or Progress(quiet=options.quiet)
    t_start = time.perf_counter()
    X, featurizer = _featurize(prep, out, progress)
    t_feat = time.perf_counter() - t_start
    if prep.model == "auto":
        X = _choose_model(prep, X, featurizer, options, progress)
        progress.message(featurizer["auto"]["reason"])
    t_search = time.perf_counter() - t_start - t_feat
    make_model = _model_factory(prep, X)
    seeds = int(options.seeds)
    run_dirs = [out] if seeds == 1 else [out / f"seed-{s}" for s in range(seeds)]
    base_extra = {
        "created_by": CREATED_BY,
        "source": {"path": prep.source, "label_column": options.label_column,
                   "text_column": options.text_column, "feature_columns": prep.feature_columns,
                   "id_column": options.id_column},
        "model": {"name": prep.model, **featurizer, **prep.hyper},
        "heldout": options.heldout,
        "memorisation_gap": MEMORISATION_GAP,
        **(extra or {}),
    }
    curves: list[list[dict[str, Any]]] = []
    frames: list[pd.DataFrame] = []
    t_train = t_held = 0.0
    for s, run_dir in enumerate(run_dirs):
        seed = int(options.seed) + s
        step = f"seed {s + 1}/{seeds} " if seeds > 1 else ""
        recorder = Recorder(run_dir, classes=prep.classes, capture=options.capture, seed=seed,
                            planned_epochs=prep.epochs,
                            data_fingerprint=data_fingerprint, meta=base_extra)
        with recorder:
            result = train_and_record(make_model, prep.labels, prep.ids,
                                      n_classes=len(prep.classes), recorder=recorder,
                                      epochs=prep.epochs, capture=options.capture,
                                      heldout=options.heldout, seed=seed, progress=progress,
                                      step_label=step, n_folds=side_folds(len(prep.labels)))
        if result.heldout_logits is not None and result.folds is not None:
            store.write_heldout(run_dir / store.HELDOUT_FILE, prep.ids, result.folds,
                           result.heldout_logits)
        _update_run_extra(run_dir, {
            "curve": result.curve, "memorisation_epoch": memorisation_epoch(result.curve),
            "timings": {"train_s": round(result.train_seconds, 3),
                        "heldout_s": round(result.heldout_seconds, 3),
                        "per_epoch": result.timings},
        })
        curves.append(result.curve)
        t_train += result.train_seconds
        t_held += result.heldout_seconds
        frames.append(_metrics(run_dir))
    t_metrics0 = time.perf_counter()
    metrics = frames[0] if seeds == 1 else aggregate_runs(frames)
    metrics = _add_evidence(metrics, frames, run_dirs, prep, X, out)
    if "suggested_label_name" not in metrics.columns:
        metrics["suggested_label_name"] = np.asarray(prep.classes, dtype=object)[
            metrics["suggested_label"].to_numpy()]
    write_data(metrics, out / "metrics.parquet")
    write_data(metrics, out / "metrics.csv")
    curve = mean_curve(curves)
    mem = memorisation_epoch(curve)
    suspects = build_suspects(metrics, prep, options)
    write_data(suspects, out / "suspects.csv")
    _plot(metrics, prep, out / "datamap.png", title)
    t_out = time.perf_counter() - t_metrics0
    timings = {"featurize_s": t_feat, "search_s": t_search, "train_s": t_train, "heldout_s": t_held,
               "outputs_s": t_out, "total_s": time.perf_counter() - t_start}
    run = RunResult(out=out, run_dirs=run_dirs, prepared=prep, metrics=metrics, suspects=suspects,
                    curve=curve, memorisation_epoch=mem, heldout=options.heldout, timings=timings,
                    extra={**(extra or {}), "model_auto": featurizer.get("auto")})
    _write_summary_json(run, options)
    return run


def build_suspects(metrics: pd.DataFrame, prep: Prepared, options: RunOptions) -> pd.DataFrame:
    """Suspects, most suspicious first (ties by id), joined with the user's text/features.

    Suspects are the flagged rows and, when the frame carries the evidence
    (:mod:`datacarto.evidence`), every row with a duplicate labelled differently; the evidence
    columns follow ``region``.
    """
    suspect = metrics["is_label_error"].to_numpy(dtype=bool)
    if "n_conflicting_duplicates" in metrics.columns:
        suspect = suspect | (metrics["n_conflicting_duplicates"].to_numpy() > 0)
    flagged = metrics[suspect]
    flagged = flagged.sort_values(["label_error_score", "id"], ascending=[False, True],
                                  kind="mergesort")
    out = pd.DataFrame({
        "id": flagged["id"].to_numpy(),
        "given_label": flagged["label_name"].to_numpy(),
        "suggested_label": flagged["suggested_label_name"].to_numpy(),
        "label_error_score": flagged["label_error_score"].to_numpy(),
        "confidence": flagged["confidence"].to_numpy(),
        "variability": flagged["variability"].to_numpy(),
        "region": flagged["region"].to_numpy(),
    })
    for col in _evidence_columns(flagged):
        out[col] = flagged[col].to_numpy()
    rows = _rows_of(prep, out["id"].to_numpy())
    if prep.kind == "text":
        assert prep.texts is not None and options.text_column is not None
        out[options.text_column] = [prep.texts[i] for i in rows]
    else:
        assert prep.feature_columns is not None
        for col in prep.feature_columns[:MAX_SUSPECT_FEATURES]:
            out[col] = prep.frame[col].to_numpy()[rows]
    return out


def _rows_of(prep: Prepared, ids: np.ndarray) -> np.ndarray:
    """Row positions in the user's frame of ``ids``."""
    order = np.argsort(prep.ids, kind="stable")
    pos = np.searchsorted(prep.ids[order], ids)
    return order[pos]


def _plot(metrics: pd.DataFrame, prep: Prepared, path: Path, title: str | None) -> None:
    from ..plot.datamap import plot_data_map

    fig = plot_data_map(metrics["confidence"].to_numpy(), metrics["variability"].to_numpy(),
                        metrics["correctness"].to_numpy(), regions=metrics["region"].to_numpy(),
                        out=path, title=title, labels=metrics["label"].to_numpy(),
                        class_names=prep.classes)
    del fig


def _write_summary_json(run: RunResult, options: RunOptions) -> None:
    m = run.metrics
    doc = {
        "created_by": CREATED_BY,
        "examples": int(len(m)),
        "classes": run.prepared.classes,
        "model": run.prepared.model,
        "epochs": run.prepared.epochs,
        "seeds": int(options.seeds),
        "capture": options.capture,
        "heldout": options.heldout,
        "run_dirs": [str(d.relative_to(run.out)) if d != run.out else "." for d in run.run_dirs],
        "guessed_columns": run.prepared.guessed,
        "model_auto": run.extra.get("model_auto"),
        "fit": (m.attrs.get("label_errors") or {}).get("fit"),
        "regions": {r: int((m["region"] == r).sum()) for r in REGIONS},
        "flagged": int(m["is_label_error"].sum()),
        "curve": run.curve,
        "memorisation_gap": MEMORISATION_GAP,
        "memorisation_epoch": run.memorisation_epoch,
        "timings": {k: round(v, 3) for k, v in run.timings.items()},
    }
    store.atomic_write_text(run.out / "summary.json", json.dumps(doc, indent=2) + "\n")


# ------------------------------------------------------------------------------- summary
def trim(text: str, width: int = 72) -> str:
    """One line of at most ``width`` characters.

    Examples
    --------
    >>> trim("a  very\\nlong text", 10)
    'a very lo…'
    """
    one = " ".join(str(text).split())
    return one if len(one) <= width else one[:width - 1] + "…"


def _describe_row(run: RunResult, row: int) -> str:
    prep = run.prepared
    if prep.kind == "text":
        assert prep.texts is not None
        return prep.texts[row]
    assert prep.feature_columns is not None
    return ", ".join(f"{c}={prep.frame[c].iloc[row]}" for c in prep.feature_columns[:6]) + (
        ", …" if len(prep.feature_columns) > 6 else "")


def round_robin(frame: pd.DataFrame, column: str, n: int) -> pd.DataFrame:
    """The first ``n`` rows taking the next row of each ``column`` value in turn (order kept).

    So that the summary shows suspects of every class, not only of the easiest confusion.

    Examples
    --------
    >>> f = pd.DataFrame({"c": ["a", "a", "a", "b"], "v": [1, 2, 3, 4]})
    >>> round_robin(f, "c", 3)["v"].tolist()
    [1, 4, 2]
    """
    if frame.empty or n <= 0:
        return frame.head(0)
    rank = frame.groupby(column, sort=False).cumcount().to_numpy()
    position = np.arange(len(frame))
    order = np.lexsort((position, rank))
    return frame.iloc[order[:n]]


def summarize(run: RunResult, *, top: int = 10, injected: set[Any] | None = None,
              more: Sequence[str] = ()) -> str:
    """The text printed at the end of ``datacarto run`` / ``demo`` (``more``: lines to add
    after the suspects; ``injected``: ids to mark as injected flips)."""
    prep, m = run.prepared, run.metrics
    n = len(m)
    lines = [f"{n:,} examples, {len(prep.classes)} classes ({', '.join(prep.classes[:8])}"
             f"{', …' if len(prep.classes) > 8 else ''}); model {prep.model}, {prep.epochs} "
             f"epoch{'s' if prep.epochs != 1 else ''}"
             f"{f', {len(run.run_dirs)} seeds' if len(run.run_dirs) > 1 else ''}."]
    if prep.guessed:
        lines.append("Columns guessed: " + " ".join(prep.guessed) + " (give the options to "
                     "override)")
    auto = (run.extra.get("model_auto") or {}).get("reason")
    if auto:
        lines.append(auto)
    lines.append("")
    lines.append("Accuracy on the given labels per epoch"
                 + (" (mean over seeds)" if len(run.run_dirs) > 1 else "") + ":")
    if run.curve and "heldout_acc" in run.curve[0]:
        if run.heldout == "side":
            k = side_folds(n)
            lines.append("  train: the mapped model, on all rows; halves: two side models, each "
                         "trained on one half and scored on the other" if k == 2 else
                         f"  train: the mapped model, on all rows; halves: {k} side models, each "
                         f"trained on all but one of {k} folds and scored on that fold")
        else:
            lines.append("  halves: the two mapped models, each trained on one half and scored on "
                         "the other (--heldout crossfit)")
    has_held = all("heldout_acc" in p for p in run.curve)
    if has_held:
        lines.append("  epoch  train  | halves: train  held-out    gap")
    else:
        lines.append("  epoch  train")
    for p in run.curve:
        if has_held:
            lines.append(f"  {p['epoch']:>5}  {p['train_acc']:.3f}  |         {p['halves_train_acc']:.3f}"
                         f"     {p['heldout_acc']:.3f}  {p['gap']:+.3f}")
        else:
            lines.append(f"  {p['epoch']:>5}  {p['train_acc']:.3f}")
    if not has_held:
        lines.append("  (no held-out curve with --heldout none)")
    elif run.memorisation_epoch is not None:
        e = run.memorisation_epoch
        lines.append(f"  Memorisation from epoch {e}: training accuracy stays more than "
                     f"{MEMORISATION_GAP:.2f} ahead of accuracy on held-out rows; later epochs "
                     "increasingly fit the given labels, right or wrong.")
        if e > 2:  # a window needs 2+ epochs for variability
            where = run.run_dirs[0] if len(run.run_dirs) == 1 else run.out / "seed-0"
            lines.append(f"  To map the epochs before it: datacarto metrics {where} --epochs :{e - 1}")
    else:
        lines.append(f"  No memorisation: training accuracy never stays more than "
                     f"{MEMORISATION_GAP:.2f} ahead of held-out accuracy.")
    if prep.epochs == 1:
        lines.append("  With 1 epoch every variability is 0: train 2 or more epochs for a real map.")
    lines.append("")
    counts = {r: int((m["region"] == r).sum()) for r in REGIONS}
    lines.append("Regions: " + ", ".join(f"{r} {c:,} ({c / n:.1%})" for r, c in counts.items()))
    flagged = m["is_label_error"].to_numpy(dtype=bool)
    fit = (m.attrs.get("label_errors") or {}).get("fit")
    if isinstance(fit, dict) and fit.get("message"):
        lines.append(str(fit["message"]))
    lines.append(f"Flagged as likely label errors: {int(flagged.sum()):,} ({flagged.mean():.1%})")
    lines.append("")
    width = max(5, max(len(c) for c in prep.classes))
    lines.append(f"  {'class':<{width}}  {'n':>7}  {'easy':>7}  {'ambig.':>7}  {'hard':>7}  "
                 f"{'flagged':>7}")
    for k, name in enumerate(prep.classes):
        sel = m["label"].to_numpy() == k
        cells = [int(((m["region"] == r).to_numpy() & sel).sum()) for r in REGIONS]
        lines.append(f"  {name:<{width}}  {int(sel.sum()):>7,}  {cells[0]:>7,}  {cells[1]:>7,}  "
                     f"{cells[2]:>7,}  {int((flagged & sel).sum()):>7,}")
    lines.append("")
    suspects = run.suspects
    heading = "Top suspects"
    if suspects.empty:
        order = m.sort_values(["label_error_score", "id"], ascending=[False, True],
                              kind="mergesort")
        suspects = pd.DataFrame({"id": order["id"], "given_label": order["label_name"],
                                 "suggested_label": order["suggested_label_name"],
                                 "label_error_score": order["label_error_score"]})
        heading = "Highest label-error scores (none flagged)"
    shown = round_robin(suspects, "given_label", top)
    if len(shown):
        lines.append(f"{heading}, the most suspicious of each given label in turn (score, given "
                     f"-> suggested{', injected flip?' if injected is not None else ''}):")
        rows = _rows_of(prep, shown["id"].to_numpy())
        for (_, s), row in zip(shown.iterrows(), rows):
            mark = ""
            if injected is not None:
                mark = " [flip]" if s["id"] in injected else " [    ]"
            lines.append(f"  {s['label_error_score']:.2f} {s['given_label']} -> "
                         f"{s['suggested_label']}{mark}  id={s['id']}: "
                         f"{trim(_describe_row(run, int(row)), 90)}")
        lines.append("")
    lines.extend(more)
    outs = ["datamap.png", "suspects.csv", "metrics.parquet", "metrics.csv", "summary.json"]
    lines.append(f"Outputs in {run.out}: " + ", ".join(outs)
                 + (f"; runs: {', '.join(d.name for d in run.run_dirs)}"
                    if len(run.run_dirs) > 1 else ""))
    return "\n".join(lines)


def run_file(path: str | os.PathLike[str], options: RunOptions, out: str | os.PathLike[str], *,
             progress: Progress | None = None, allow_many_classes: bool = False) -> RunResult:
    """Read ``path``, then :func:`prepare`, :func:`reset_output` and :func:`execute`.

    A label column with more classes than ``datafiles.MAX_CLASS_SHARE`` of the rows is refused
    unless ``allow_many_classes``."""
    from ..datafiles import check_label_column, read_data

    frame = read_data(path, text_columns=[options.id_column])  # ids as written: 00001, 01 != 1
    options, guessed = infer_columns(frame, options, source=str(path))
    if any(g.startswith("--id-column") for g in guessed):
        frame = read_data(path, text_columns=[options.id_column])
    check_label_column(frame, options.label_column, path=path,
                       allow_many_classes=allow_many_classes)
    prep = prepare(frame, options, source=str(path))
    prep.guessed = guessed
    out = reset_output(out, inputs=[path])
    return execute(prep, options, out, data_fingerprint=store.fingerprint_file(path),
                   progress=progress)


def default_out(data: str | os.PathLike[str]) -> Path:
    """``RUN`` when ``--out`` is not given: the data file's name + ``-datacarto``, in the
    current directory (``reviews.csv`` -> ``./reviews-datacarto``).

    Examples
    --------
    >>> default_out("data/reviews.csv.gz").name
    'reviews-datacarto'
    """
    name = Path(data).name
    for suffix in (".gz", ".bz2", ".csv", ".tsv", ".jsonl", ".json", ".parquet", ".txt"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return Path.cwd() / f"{name}-datacarto"


# ------------------------------------------------------------------------------ evidence
def _evidence_columns(frame: pd.DataFrame) -> list[str]:
    """The evidence columns of ``frame``, ``reason`` first (none without evidence)."""
    from ..evidence import COLUMNS

    if "reason" not in frame.columns:
        return []
    return ["reason"] + [c for c in COLUMNS if c != "reason" and c in frame.columns]


def _add_evidence(metrics: pd.DataFrame, frames: list[pd.DataFrame], run_dirs: list[Path],
                  prep: Prepared, X: Any, out: Path) -> pd.DataFrame:
    """Why each suspect is flagged (:mod:`datacarto.evidence`): write ``evidence.parquet`` to
    ``out`` (pooled over the seeds: their epochs' predictions together, the mean of their
    held-out probabilities) and, with several seeds, to each seed's directory; return
    ``metrics`` with the evidence columns."""
    from .. import evidence as ev

    ids = metrics["id"].to_numpy()
    labels = metrics["label"].to_numpy(dtype=np.int64)
    rows = _rows_of(prep, ids)
    identity = np.array_equal(rows, np.arange(len(rows)))
    features = ev.feature_matrix(X)
    if features is not None and not identity:
        features = features[rows]
    texts = prep.texts if prep.texts is None or identity else [prep.texts[i] for i in rows]
    near = ev.neighbourhood_evidence(ids, labels, prep.classes, features=features, texts=texts)
    preds, held_sum, held_n = [], np.zeros(len(ids)), np.zeros(len(ids))
    for frame, run_dir in zip(frames, run_dirs):
        dyn = load(run_dir).dynamics(logits=False)
        pos = pd.Index(dyn.ids).get_indexer(ids)
        pred = dyn.pred[pos]
        window = (frame.attrs.get("label_errors") or {}).get("window")
        held = ev.heldout_for_run(run_dir, ids, labels, window)
        preds.append(pred)
        if held is not None:
            ok = np.isfinite(held)
            held_sum[ok] += held[ok]
            held_n[ok] += 1
        if len(run_dirs) > 1:
            ev.write_evidence(run_dir, ev.compute_evidence(
                ids, labels, prep.classes, pred=pred, heldout_prob=held,
                is_label_error=frame["is_label_error"].to_numpy(dtype=bool),
                label_error_score=frame["label_error_score"].to_numpy(), neighbourhood=near))
    pooled_held = np.where(held_n > 0, held_sum / np.maximum(held_n, 1), np.nan)
    evidence = ev.compute_evidence(
        ids, labels, prep.classes, pred=np.concatenate(preds, axis=1), heldout_prob=pooled_held,
        is_label_error=metrics["is_label_error"].to_numpy(dtype=bool),
        label_error_score=metrics["label_error_score"].to_numpy(), neighbourhood=near)
    ev.write_evidence(out, evidence)
    return ev.attach_evidence(metrics, evidence)
