"""Before and after cleaning, side by side: two runs of the same model on two versions of a file.

:func:`retrain_options` gives the ``datacarto run`` options that reproduce a run's model on
another file (the model ``--model auto`` chose, its epochs and hyper-parameters, the seeds and
columns); :func:`check_same_data` refuses a pair that is not one data set before and after
cleaning; :func:`compare_runs` builds the tables ``datacarto compare`` prints and
:func:`plot_pair` draws the two data maps side by side (docs/cleaning.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import InputError

if TYPE_CHECKING:
    from .run import Run
    from .train.preparation import RunOptions

__all__ = ["Comparison", "check_row_count", "check_same_data", "compare_runs", "dropped_by_log",
           "plot_pair", "retrain_options"]

#: Summary fields of ``datacarto run`` that fix the retrained model.
_SUMMARY_FIELDS = ("model", "epochs", "seeds", "capture", "heldout")
#: Hyper-parameters recorded in ``run.json`` ``extra["model"]``.
_HYPER_FIELDS = ("lr", "batch_size", "hidden", "max_length")


def _summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    if not path.is_file():
        raise InputError(f"{run_dir}: no summary.json; compare needs runs made by `datacarto run`.")
    return json.loads(path.read_text(encoding="utf-8"))


def retrain_options(run: Run) -> RunOptions:
    """The :class:`~datacarto.train.preparation.RunOptions` that train ``run``'s model again:
    the columns recorded in ``run.json``, the model ``--model auto`` chose and its epochs,
    seeds, capture, held-out scheme and hyper-parameters, the same first seed.

    Raises InputError when the run was not made by ``datacarto run`` (nothing recorded).
    """
    from .train.preparation import RunOptions

    meta = run.meta
    source = meta.source
    if source is None or not source.label_column:
        raise InputError(f"{run.path}: run.json records no data columns; compare retrains runs "
                         "made by `datacarto run`.")
    summary = _summary(Path(run.path))
    hyper = meta.extra.get("model") if isinstance(meta.extra.get("model"), Mapping) else {}
    values: dict[str, Any] = {k: summary[k] for k in _SUMMARY_FIELDS if summary.get(k) is not None}
    values.update({k: hyper[k] for k in _HYPER_FIELDS if hyper.get(k) is not None})
    return RunOptions(label_column=source.label_column, text_column=source.text_column,
                      feature_columns=list(source.feature_columns) if source.feature_columns else None,
                      id_column=source.id_column, seed=int(meta.seed or 0), quiet=True, **values)


def check_same_data(before: Run, after: Run, before_metrics: pd.DataFrame,
                    after_metrics: pd.DataFrame, *, dropped: int | None = None) -> None:
    """Raise InputError unless ``after`` looks like ``before``'s data after cleaning: the same
    columns, classes among ``before``'s, and (with an id column) ids among ``before``'s, or
    (row-number ids) no more rows -- exactly ``n_before - dropped`` when the change log says how
    many rows the cleaning dropped."""
    b, a = before.meta.source, after.meta.source
    where = f"compare {before.path} {after.path}"
    if b is not None and a is not None:
        for what in ("label_column", "text_column", "feature_columns", "id_column"):
            if getattr(b, what) != getattr(a, what):
                raise InputError(f"{where}: the runs read different columns ({what}: "
                                 f"{_short(getattr(b, what))} vs {_short(getattr(a, what))}); not "
                                 "one data set before and after cleaning.")
    extra = sorted(set(after.classes) - set(before.classes))
    if extra:
        raise InputError(f"{where}: the after run has classes the before run lacks "
                         f"({', '.join(extra[:5])}); not one data set before and after cleaning.")
    n_before, n_after = len(before_metrics), len(after_metrics)
    if b is not None and b.id_column:
        ids = set(before_metrics["id"].astype(str))
        foreign = [i for i in after_metrics["id"].astype(str) if i not in ids]
        if foreign:
            raise InputError(f"{where}: {len(foreign)} of the after run's ids are not in the before "
                             f"run (first: {foreign[0]!r}); not one data set before and after cleaning.")
    else:
        check_row_count(where, n_before, n_after, dropped)


def check_row_count(where: str, n_before: int, n_after: int, dropped: int | None) -> None:
    """With row-number ids, the cleaned data has at most the rows of the original, exactly
    ``n_before - dropped`` when the change log says how many were dropped."""
    if n_after > n_before or (dropped is not None and n_after != n_before - dropped):
        expect = f"{n_before - dropped}" if dropped is not None else f"at most {n_before}"
        raise InputError(f"{where}: the after data has {n_after} rows, expected {expect} "
                         f"(the before run's {n_before}"
                         + (f" less the {dropped} the cleaning dropped" if dropped is not None else "")
                         + "); not one data set before and after cleaning.")


def _short(value: Any) -> str:
    """A column list as its first three names and a count, e.g. ``('a', 'b', 'c', ... 64 in all)``."""
    if isinstance(value, (tuple, list)) and len(value) > 3:
        return "(" + ", ".join(repr(v) for v in value[:3]) + f", ... {len(value)} in all)"
    return repr(value)


def dropped_by_log(data: str | os.PathLike[str]) -> int | None:
    """Rows a cleaning dropped, from the change log beside a cleaned file (None: no log)."""
    from .review.export import changes_path

    log = changes_path(data)
    if not log.is_file():
        return None
    return int((pd.read_csv(log, dtype=str)["action"] == "drop").sum())


@dataclass(frozen=True)
class Comparison:
    """The side-by-side tables of two runs."""

    overview: pd.DataFrame   # rows: measures; columns: before, after
    per_class: pd.DataFrame  # index: class; rows and flags before and after

    def text(self) -> str:
        return (self.overview.to_string() + "\n\nper class:\n" + self.per_class.to_string())

    def as_dict(self) -> dict[str, Any]:
        return {"overview": json.loads(self.overview.to_json()),
                "per_class": json.loads(self.per_class.to_json(orient="index"))}


def _heldout_accuracy(run: Run) -> float:
    """The side models' held-out accuracy after the last epoch (on the run's own labels)."""
    curve = [p for p in run.meta.curve if p.get("heldout_acc") is not None]
    return float(curve[-1]["heldout_acc"]) if curve else float("nan")


def compare_runs(before: Run, after: Run, before_metrics: pd.DataFrame,
                 after_metrics: pd.DataFrame) -> Comparison:
    """Rows, held-out accuracy, flags and regions of each run, and the per-class table.

    Held-out accuracy is the last epoch's accuracy of the side models (each row predicted by a
    model that did not train on it), against *each run's own labels*.
    """
    def overview(run: Run, m: pd.DataFrame) -> dict[str, Any]:
        flagged = int(m["is_label_error"].sum())
        return {"rows": len(m), "held-out accuracy": round(_heldout_accuracy(run), 4),
                "flagged": flagged, "flagged %": round(100.0 * flagged / max(1, len(m)), 2),
                **{f"{r} rows": int((m["region"] == r).sum()) for r in ("easy", "ambiguous", "hard")},
                "mean confidence": round(float(m["confidence"].mean()), 4)}

    table = pd.DataFrame({"before": pd.Series(overview(before, before_metrics), dtype=object),
                          "after": pd.Series(overview(after, after_metrics), dtype=object)})

    def by_class(m: pd.DataFrame) -> pd.DataFrame:
        g = m.groupby(m["label_name"].astype(str))
        return pd.DataFrame({"rows": g.size(), "flagged": g["is_label_error"].sum().astype(int),
                             "confidence": g["confidence"].mean().round(3)})

    b, a = by_class(before_metrics), by_class(after_metrics)
    per_class = b.add_suffix(" before").join(a.add_suffix(" after"), how="outer")
    order = [f"{c} {w}" for c in ("rows", "flagged", "confidence") for w in ("before", "after")]
    per_class = per_class[order].fillna(0).rename_axis("class")
    for col in order[:4]:
        per_class[col] = per_class[col].astype(int)
    return Comparison(overview=table, per_class=per_class)


def plot_pair(before_metrics: pd.DataFrame, after_metrics: pd.DataFrame,
              out: str | os.PathLike[str], *, titles: tuple[str, str] = ("before", "after")) -> Path:
    """Both data maps side by side in one PNG (written atomically), the same axes on each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .plot.datamap import plot_data_map
    from .store import atomic_write

    fig = Figure(figsize=(13, 5.5))
    FigureCanvasAgg(fig)  # the maps measure their labels' extents with a renderer
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, m, title in zip(axes, (before_metrics, after_metrics), titles):
        plot_data_map(m["confidence"].to_numpy(), m["variability"].to_numpy(),
                      m["correctness"].to_numpy(), regions=m["region"].to_numpy(), ax=ax,
                      title=f"{title}: {len(m):,} rows, {int(m['is_label_error'].sum()):,} flagged",
                      axes="paper")
    out = Path(out)
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=110,
                                              metadata={"Software": None}))
    return out
