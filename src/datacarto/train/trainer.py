"""Train-and-record for ``datacarto run``: featurise a prepared dataset, choose the model
(``--model auto``) and train each seed into its run directory."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import store
from ..outputs import CACHE_DIR
from ..progress import Progress
from ..recorder import Recorder
from .autoselect import Candidate
from .featurize import lsa_features, minilm_embeddings, tabular_features, tfidf_features
from .loop import MEMORISATION_GAP, memorisation_epoch, side_folds, train_and_record
from .preparation import Prepared, RunOptions

__all__ = ["AUTO_MIN_CLASS_ROWS", "AUTO_MIN_ROWS", "SMALL_DATA_EPOCHS", "Trained", "mean_curve",
           "train_runs"]

#: Below these sizes ``--model auto`` does not compare models (the held-out folds would be
#: too small to tell them apart) and trains the linear model for SMALL_DATA_EPOCHS epochs.
AUTO_MIN_ROWS = 40
AUTO_MIN_CLASS_ROWS = 4
SMALL_DATA_EPOCHS = 10


@dataclass
class Trained:
    """What :func:`train_runs` trained and recorded."""

    run_dirs: list[Path]                        # one run directory per seed
    features: Any                               # what the models saw (X, or tokens)
    featurizer: dict[str, Any]                  # input kind, dim, and ``auto``: the search
    curves: list[list[dict[str, Any]]]          # per seed, the accuracy curve per epoch
    timings: dict[str, float] = field(default_factory=dict)  # featurize_s … heldout_s


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


def train_runs(prep: Prepared, options: RunOptions, out: str | os.PathLike[str], *,
               data_fingerprint: str | None = None, extra: dict[str, Any] | None = None,
               progress: Progress | None = None) -> Trained:
    """Featurise ``prep``, resolve ``--model auto`` (in ``prep``) and train-and-record every seed.

    With one seed ``out`` is the run directory, else ``out/seed-0`` … ``out/seed-{K-1}``; each
    gets the store (``run.json`` with ``extra`` = the source, the model, the held-out scheme and
    ``extra``; then the curve, memorisation epoch and timings) and its ``heldout.parquet``.
    """
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
    meta = {
        "source": {"path": prep.source, "label_column": options.label_column,
                   "text_column": options.text_column, "feature_columns": prep.feature_columns,
                   "id_column": options.id_column},
        "model": {"name": prep.model, **featurizer, **prep.hyper},
        "heldout": options.heldout,
        "memorisation_gap": MEMORISATION_GAP,
        **(extra or {}),
    }
    curves: list[list[dict[str, Any]]] = []
    t_train = t_held = 0.0
    for s, run_dir in enumerate(run_dirs):
        seed = int(options.seed) + s
        step = f"seed {s + 1}/{seeds} " if seeds > 1 else ""
        recorder = Recorder(run_dir, classes=prep.classes, capture=options.capture, seed=seed,
                            planned_epochs=prep.epochs, data_fingerprint=data_fingerprint,
                            meta=meta)
        with recorder:
            result = train_and_record(make_model, prep.labels, prep.ids,
                                      n_classes=len(prep.classes), recorder=recorder,
                                      epochs=prep.epochs, capture=options.capture,
                                      heldout=options.heldout, seed=seed, progress=progress,
                                      step_label=step, n_folds=side_folds(len(prep.labels)))
        if result.heldout_logits is not None and result.folds is not None:
            store.write_heldout(run_dir / store.HELDOUT_FILE, prep.ids, result.folds,
                                result.heldout_logits)
        store.update_run_extra(
            run_dir, curve=result.curve, memorisation_epoch=memorisation_epoch(result.curve),
            timings={"train_s": round(result.train_seconds, 3),
                     "heldout_s": round(result.heldout_seconds, 3), "per_epoch": result.timings})
        curves.append(result.curve)
        t_train += result.train_seconds
        t_held += result.heldout_seconds
    return Trained(run_dirs=run_dirs, features=X, featurizer=featurizer, curves=curves,
                   timings={"featurize_s": t_feat, "search_s": t_search, "train_s": t_train,
                            "heldout_s": t_held})
