"""The ``datacarto run`` / ``demo`` workflow: make the output directory, train, then write the
run's metrics, data map, suspects and summary (layout in docs/run.md)."""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import store
from ..datafiles import check_label_column, read_data, write_data
from ..errors import InputError
from ..evidence import COLUMNS as EVIDENCE_COLUMNS
from ..memorisation import MEMORISATION_GAP, memorisation_epoch
from ..metrics import aggregate_runs
from ..outputs import CREATED_BY, reset_output
from ..progress import Progress
from ..regions import REGIONS
from ..run import load
from ..thumbnails import image_shape as columns_image_shape
from ..train.infer import infer_columns
from ..train.preparation import Prepared, RunOptions, prepare
from ..train.trainer import mean_curve, train_runs
from ._evidence import add_evidence
from .flag import flag_table

__all__ = ["MAX_SUSPECT_FEATURES", "RunResult", "build_suspects", "default_out", "execute",
           "feature_image_shape", "run_file", "update_summary_json", "write_summary_text"]

#: Feature columns shown in suspects.csv for tabular data (a row's other columns are in the data).
MAX_SUSPECT_FEATURES = 30
SUMMARY_JSON = "summary.json"
SUMMARY_TEXT = "summary.txt"


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
    #: (height, width) of the image the feature columns form (``--image-shape`` or guessed)
    image_shape: tuple[int, int] | None = None


def run_file(path: str | os.PathLike[str], options: RunOptions, out: str | os.PathLike[str], *,
             progress: Progress | None = None, allow_many_classes: bool = False,
             image_shape: Any = None, axes: str = "fit") -> RunResult:
    """Read ``path``, then :func:`~datacarto.train.preparation.prepare`,
    :func:`~datacarto.outputs.reset_output` and :func:`execute`.

    A label column with more classes than ``datafiles.MAX_CLASS_SHARE`` of the rows is refused
    unless ``allow_many_classes``. ``image_shape`` and ``axes`` as for :func:`execute`.
    ``path`` may also be a ``datasets.Dataset``: it is saved beside the run as ``OUT.dataset``
    (:func:`datacarto.integrations.hf_datasets.save_beside`) and read from there.
    """
    if not isinstance(path, (str, os.PathLike)):
        from ..integrations.hf_datasets import save_beside

        path = save_beside(path, out)
    frame = read_data(path, text_columns=[options.id_column])  # ids as written: 00001, 01 != 1
    options, guessed = infer_columns(frame, options, source=str(path))
    if any(g.startswith("--id-column") for g in guessed):
        frame = read_data(path, text_columns=[options.id_column])
    check_label_column(frame, options.label_column, path=path,
                       allow_many_classes=allow_many_classes)
    prep = prepare(frame, options, source=str(path))
    prep.guessed = guessed
    shape = feature_image_shape(prep, image_shape)  # a wrong --image-shape fails before training
    out = reset_output(out, inputs=[path])
    return execute(prep, options, out, data_fingerprint=store.fingerprint_file(path),
                   progress=progress, image_shape=shape, axes=axes)


def feature_image_shape(prep: Prepared, given: Any = None) -> tuple[int, int] | None:
    """The (height, width) of the image ``prep``'s feature columns form: ``given``
    (``--image-shape H,W``, which must match their number) or guessed from their names
    (:func:`datacarto.thumbnails.image_shape`); None for text or other tabular data."""
    if prep.kind == "text" or prep.feature_columns is None:
        if given is not None:
            raise InputError("--image-shape needs feature columns (the pixels); this run "
                             "trains on a text column.")
        return None
    return columns_image_shape(list(prep.feature_columns), given)


def execute(prep: Prepared, options: RunOptions, out: str | os.PathLike[str], *,
            data_fingerprint: str | None = None, extra: dict[str, Any] | None = None,
            progress: Progress | None = None, title: str | None = None,
            image_shape: Any = None, axes: str = "fit") -> RunResult:
    """Train and record every seed into ``out`` (:func:`~datacarto.train.trainer.train_runs`),
    then write the metrics, evidence, suspects, data map and ``summary.json`` there.

    ``image_shape``: ``"H,W"`` when the feature columns are the pixels of an image (default:
    guessed from their names); the summary then describes each suspect as a picture.
    ``axes``: the data map's axes, ``"fit"`` or ``"paper"``
    (:func:`datacarto.plot.datamap.plot_data_map`)."""
    options = prep.options or options  # with the columns prepare() guessed
    shape = feature_image_shape(prep, image_shape)
    out = Path(out)
    t_start = time.perf_counter()
    trained = train_runs(prep, options, out, data_fingerprint=data_fingerprint,
                         extra={"created_by": CREATED_BY, **(extra or {})}, progress=progress)
    frames = [_metrics(run_dir) for run_dir in trained.run_dirs]
    t_outputs = time.perf_counter()
    metrics = frames[0] if len(frames) == 1 else aggregate_runs(frames)
    metrics = add_evidence(metrics, frames, trained.run_dirs, prep, trained.features, out)
    if "suggested_label_name" not in metrics.columns:
        metrics["suggested_label_name"] = np.asarray(prep.classes, dtype=object)[
            metrics["suggested_label"].to_numpy()]
    write_data(metrics, out / "metrics.parquet")
    write_data(metrics, out / "metrics.csv")
    curve = mean_curve(trained.curves)
    suspects = build_suspects(metrics, prep, options)
    write_data(suspects, out / "suspects.csv")
    _plot(metrics, prep, out / "datamap.png", title, axes)
    now = time.perf_counter()
    timings = {**trained.timings, "outputs_s": now - t_outputs, "total_s": now - t_start}
    run = RunResult(out=out, run_dirs=trained.run_dirs, prepared=prep, metrics=metrics,
                    suspects=suspects, curve=curve, memorisation_epoch=memorisation_epoch(curve),
                    heldout=options.heldout, timings=timings,
                    extra={**(extra or {}), "model_auto": trained.featurizer.get("auto")},
                    image_shape=shape)
    _write_summary_json(run, options)
    return run


def build_suspects(metrics: pd.DataFrame, prep: Prepared, options: RunOptions) -> pd.DataFrame:
    """``suspects.csv``: the ``flag`` table of the flagged rows and of every row with a duplicate
    labelled differently (most suspicious first, ties by id), joined with the user's text or
    first :data:`MAX_SUSPECT_FEATURES` feature columns; the evidence columns follow ``region``."""
    table = flag_table(metrics, flagged_only=True)
    out = pd.DataFrame({
        "id": table["id"].to_numpy(),
        "given_label": table["label_name"].to_numpy(),
        "suggested_label": table["suggested_label_name"].to_numpy(),
        "label_error_score": table["label_error_score"].to_numpy(),
        "confidence": table["confidence"].to_numpy(),
        "variability": table["variability"].to_numpy(),
        "region": table["region"].to_numpy(),
    })
    if "reason" in table.columns:  # the reason first, then the figures behind it
        for col in ("reason", *(c for c in EVIDENCE_COLUMNS if c != "reason")):
            if col in table.columns:
                out[col] = table[col].to_numpy()
    rows = prep.rows_of(out["id"].to_numpy())
    if prep.kind == "text":
        assert prep.texts is not None and options.text_column is not None
        out[options.text_column] = [prep.texts[i] for i in rows]
    else:
        assert prep.feature_columns is not None
        for col in prep.feature_columns[:MAX_SUSPECT_FEATURES]:
            out[col] = prep.frame[col].to_numpy()[rows]
    return out


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


def write_summary_text(out: Path, text: str) -> None:
    """``RUN/summary.txt``: what was printed (also under ``--quiet``)."""
    store.atomic_write_text(out / SUMMARY_TEXT, text + "\n")


def update_summary_json(out: Path, **fields: Any) -> None:
    """Add ``fields`` to ``RUN/summary.json`` (e.g. the demo's scores)."""
    doc = json.loads((out / SUMMARY_JSON).read_text(encoding="utf-8"))
    store.atomic_write_text(out / SUMMARY_JSON, json.dumps({**doc, **fields}, indent=2) + "\n")


def _metrics(run_dir: Path) -> pd.DataFrame:
    with warnings.catch_warnings():
        # a 1-epoch run is allowed; its zero variability is explained in the summary
        warnings.filterwarnings("ignore", message="only 1 epoch recorded", category=UserWarning)
        return load(run_dir).metrics()


def _plot(metrics: pd.DataFrame, prep: Prepared, path: Path, title: str | None,
          axes: str = "fit") -> None:
    from ..plot.datamap import plot_data_map

    fig = plot_data_map(metrics["confidence"].to_numpy(), metrics["variability"].to_numpy(),
                        metrics["correctness"].to_numpy(), regions=metrics["region"].to_numpy(),
                        out=path, title=title, labels=metrics["label"].to_numpy(),
                        class_names=prep.classes, axes=axes)
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
    store.atomic_write_text(run.out / SUMMARY_JSON, json.dumps(doc, indent=2) + "\n")
