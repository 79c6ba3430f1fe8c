"""The interactive report: one self-contained HTML file (plotly.js inlined, works offline).

The page holds a WebGL data map (x = variability, y = confidence) with a hover tooltip
showing each example's text and metrics, colour by correctness / region / class, filters by
class, region and "suspects only", the marginal histograms (counts), a per-class summary and
a searchable, sortable table of suspects (``is_label_error``), highest ``label_error_score``
first.

Up to ``max_points`` examples (default 10^5) every point is drawn and hoverable. Beyond, the
map shows the density of all examples (a log-count heatmap computed in the page from
quantized coordinates, so it follows the filters) plus a hover layer of ``sample_size``
points: the top suspects by score and a seeded random sample of the rest; the page says so.

The map opens with axes that fit the data (``axes="fit"``) or the paper's fixed
[0, 0.5] x [0, 1] (``axes="paper"``), see :func:`datacarto.plot.datamap.axis_limits`; plotly's
zoom (drag a box, scroll) works, and buttons switch to "fit to data" (the examples matching
the filters), "paper axes", or back ("reset"). For image data, the hover tooltip and the
detail panel show each example's picture (``images``, at most ``max_images`` of them: the
highest-scoring hover points).

Safety: the data travel as JSON inside ``<script type="application/json">`` with ``<``, ``>``
and ``&`` written as ``\\u003c`` etc., so no text can close the element; the page's script
sets dataset text only through ``textContent``, and the page's Content-Security-Policy
forbids every network request.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._deps import require
from .._version import __version__
from ..errors import InputError, SchemaError
from ..evidence import evidence_texts
from ..label_errors import notes as label_error_notes
from ..plot.datamap import (AXES, CORRECTNESS_COLORS, CORRECTNESS_EDGES, FIT_MARGIN, FIT_MIN_SPAN,
                            PAPER_LIMITS, REGION_TITLES, axis_limits)
from ..regions import REGIONS
from ..store import atomic_write_text
from .page import ReportPage

__all__ = ["DEFAULT_MAX_IMAGES", "DEFAULT_MAX_POINTS", "DEFAULT_SAMPLE_SIZE", "REQUIRED_COLUMNS",
           "build_report", "write_report"]

#: Above this many examples the map switches to density + a sampled hover layer.
DEFAULT_MAX_POINTS = 100_000
#: Points in the hover layer of the density mode.
DEFAULT_SAMPLE_SIZE = 30_000
#: Hover and table text is cut to this many characters (the file holds no more).
DEFAULT_TEXT_CHARS = 240
#: Pictures embedded at most (about 1 kB each for a 28 x 28 image).
DEFAULT_MAX_IMAGES = 5_000
#: Bins and colours of the "missing-class score" colouring (light to dark: fits a class to none).
MISSING_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0)
MISSING_COLORS = ("#d9d9d9", "#fdae6b", "#e6550d", "#7f2704")
REQUIRED_COLUMNS = ("id", "label", "confidence", "variability", "correctness", "region",
                    "label_error_score", "suggested_label", "is_label_error")
_PLACEHOLDER = re.compile(r"\{\{([A-Z]+)\}\}")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                 "\u2029": "\\u2029"}


def script_json(obj: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` survive.

    >>> script_json({"t": "</script><b>&"})
    '{"t":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
                            ).decode("ascii")


def _trim(text: Any, limit: int) -> str | None:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _check_metrics(metrics: pd.DataFrame, classes: Sequence[str]) -> None:
    if not isinstance(metrics, pd.DataFrame):
        raise InputError(f"build_report: metrics must be a pandas DataFrame (from run.metrics()); "
                         f"got {type(metrics).__name__}.")
    missing = [c for c in REQUIRED_COLUMNS if c not in metrics.columns]
    if missing:
        raise SchemaError(f"build_report: metrics lacks column(s) {', '.join(missing)}; expected the "
                          "frame returned by run.metrics().")
    if len(metrics) == 0:
        raise InputError("build_report: metrics has no rows; the report needs at least one example.")
    unknown = sorted(set(metrics["region"].astype(str)) - set(REGIONS))
    if unknown:
        raise SchemaError(f"build_report: region column holds {unknown[0]!r}; expected one of "
                          f"{', '.join(REGIONS)}.")
    k = len(classes)
    for col in ("label", "suggested_label"):
        values = metrics[col].to_numpy()
        bad = (values < 0) | (values >= k)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"build_report: {col}[{i}] = {values[i]} is outside 0..{k - 1} "
                             f"({k} classes).")


def _hover_indices(flag: np.ndarray, score: np.ndarray, n: int, max_points: int, sample_size: int,
                   seed: int) -> tuple[np.ndarray, int]:
    """All rows when n <= max_points; else the top suspects (<= half the sample) + a random rest."""
    if n <= max_points:
        return np.arange(n), int(flag.sum())
    flagged = np.flatnonzero(flag)
    flagged = flagged[np.argsort(-score[flagged], kind="stable")][: sample_size // 2]
    rest = np.setdiff1d(np.arange(n), flagged, assume_unique=True)
    rng = np.random.default_rng(seed)
    take = min(len(rest), sample_size - len(flagged))
    chosen = np.sort(rng.choice(rest, size=take, replace=False))
    return np.concatenate([flagged, chosen]), len(flagged)


def build_report(metrics: pd.DataFrame, *, classes: Sequence[str],
                 texts: Sequence[str | None] | None = None, title: str = "datacarto report",
                 epochs: int | None = None, max_points: int = DEFAULT_MAX_POINTS,
                 sample_size: int = DEFAULT_SAMPLE_SIZE, text_chars: int = DEFAULT_TEXT_CHARS,
                 seed: int = 0, axes: str = "fit",
                 images: Callable[[Sequence[int]], Sequence[str | None]] | None = None,
                 max_images: int = DEFAULT_MAX_IMAGES,
                 notes: Sequence[str] | None = None) -> ReportPage:
    """The report page for one run's metrics, as an HTML string (a :class:`ReportPage`, which a
    Jupyter notebook displays inline).

    Parameters
    ----------
    metrics : DataFrame
        ``run.metrics()``: one row per example with at least :data:`REQUIRED_COLUMNS`.
    classes : sequence of str
        Class names, index k naming label k.
    texts : sequence of str or None, optional
        Example text in ``metrics`` row order (``None`` where unknown); cut to ``text_chars``.
    title : str
        Page title (escaped).
    epochs : int, optional
        Number of epochs, shown in the header.
    max_points : int
        Draw every point up to this many examples; beyond, density + a sampled hover layer.
    sample_size : int
        Points in the hover layer of the density mode (at most half of them suspects).
    seed : int
        Seed of the hover sample.
    axes : {"fit", "paper"}
        The map's first view: limits that fit the data, or the paper's fixed axes.
    images : callable, optional
        For image data: called once with the ``metrics`` row numbers that get a picture, returns
        a ``data:`` URI (or ``None``) for each, e.g. from :class:`datacarto.thumbnails.ImageSource`.
    max_images : int
        At most this many pictures: the hover points with the highest ``label_error_score``.
    notes : sequence of str, optional
        The lines under the title; default: the label-error detector's notes
        (:func:`datacarto.label_errors.notes`). ``datacarto report`` adds the run's
        memorisation line, as ``metrics`` and ``flag`` print it.

    Returns
    -------
    str
        A complete HTML document that loads nothing from the network.

    Raises
    ------
    InputError, SchemaError
        If ``metrics`` lacks columns, is empty, has labels outside the classes, or ``texts``
        has the wrong length.
    MissingDependencyError
        If plotly (the ``report`` extra) is not installed.
    """
    plotly_offline = require("plotly.offline", extra="report", feature="datacarto report")
    _check_metrics(metrics, classes)
    if axes not in AXES:
        raise InputError(f"build_report: axes must be one of {', '.join(AXES)}; got {axes!r}.")
    for name, value in (("max_points", max_points), ("sample_size", sample_size),
                        ("text_chars", text_chars), ("max_images", max_images)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"build_report: {name} must be a positive integer; got {value!r}.")
    n = len(metrics)
    if texts is not None and len(texts) != n:
        raise InputError(f"build_report: texts has {len(texts)} entries but metrics has {n} rows.")

    conf = metrics["confidence"].to_numpy(np.float64)
    var = metrics["variability"].to_numpy(np.float64)
    corr = metrics["correctness"].to_numpy(np.float64)
    score = metrics["label_error_score"].to_numpy(np.float64)
    flag = metrics["is_label_error"].to_numpy(bool)
    # missing_class_score in MISSING_EDGES bins, a colour option of the map (NaN: first bin)
    mscore = (metrics["missing_class_score"].to_numpy(np.float64)
               if "missing_class_score" in metrics.columns else np.full(n, np.nan))
    mbin = np.clip(np.searchsorted(MISSING_EDGES, np.nan_to_num(mscore), side="right") - 1, 0,
                   len(MISSING_COLORS) - 1).astype(np.uint8)
    label = metrics["label"].to_numpy(np.int64)
    sugg = metrics["suggested_label"].to_numpy(np.int64)
    region_code = {r: i for i, r in enumerate(REGIONS)}
    region = np.fromiter((region_code[str(r)] for r in metrics["region"]), dtype=np.uint8, count=n)
    ids = metrics["id"].astype(str).to_numpy()
    reason, evidence = evidence_texts(metrics)
    suspect = flag if reason is None else flag | (reason != "")

    hover, n_top = _hover_indices(suspect, score, n, max_points, sample_size, seed)
    dense = n > max_points

    def col(values: np.ndarray) -> list[Any]:
        v = values[hover]
        return np.round(v, 4).tolist() if v.dtype.kind == "f" else v.tolist()

    points: dict[str, Any] = {
        "id": ids[hover].tolist(), "x": col(var), "y": col(conf), "corr": col(corr),
        "label": col(label), "sugg": col(sugg), "region": col(region),
        "score": col(score), "flag": flag[hover].astype(np.uint8).tolist(), "mbin": col(mbin),
        "text": None if texts is None else [_trim(texts[i], text_chars) for i in hover.tolist()],
        # why a suspect is flagged (datacarto run's evidence.parquet); None for other points
        "reason": None if reason is None else [reason[i] or None for i in hover.tolist()],
        "evidence": None if evidence is None else [evidence[i] or None for i in hover.tolist()],
        "image": None,
    }
    n_images = 0
    if images is not None:
        # the highest-scoring hover points get pictures (ties: metrics order)
        chosen = np.argsort(-score[hover], kind="stable")[:max_images]
        uris = list(images(hover[chosen].tolist()))
        if len(uris) != len(chosen):
            raise InputError(f"build_report: images returned {len(uris)} pictures for "
                             f"{len(chosen)} rows.")
        column: list[str | None] = [None] * len(hover)
        for k, uri in zip(chosen.tolist(), uris):
            column[k] = uri
        n_images = sum(u is not None for u in column)
        points["image"] = column if n_images else None
    full = None
    if dense:
        bins = np.clip(np.searchsorted(CORRECTNESS_EDGES, corr, side="right") - 1, 0,
                       len(CORRECTNESS_COLORS) - 1)
        full = {"x": _b64(np.round(np.clip(var, 0, 0.5) / 0.5 * 65535).astype(np.uint16)),
                "y": _b64(np.round(np.clip(conf, 0, 1) * 65535).astype(np.uint16)),
                "label": _b64(label.astype(np.uint16)), "region": _b64(region),
                "cbin": _b64(bins.astype(np.uint8)), "flag": _b64(flag.astype(np.uint8)),
                "mbin": _b64(mbin)}

    k = len(classes)
    counts = np.zeros((k, len(REGIONS)), dtype=np.int64)
    np.add.at(counts, (label, region), 1)
    flagged = np.bincount(label[flag], minlength=k)
    summary = [[str(classes[c]), int(counts[c].sum()), *map(int, counts[c]), int(flagged[c])]
               for c in range(k)]
    payload = {
        "version": __version__, "classes": [str(c) for c in classes], "regions": list(REGIONS),
        "region_titles": [REGION_TITLES[r] for r in REGIONS],
        "correctness_edges": list(CORRECTNESS_EDGES), "correctness_colors": list(CORRECTNESS_COLORS),
        "missing": ({"edges": list(MISSING_EDGES), "colors": list(MISSING_COLORS)}
                    if np.isfinite(mscore).any() else None),
        "epochs": epochs, "has_text": texts is not None, "max_points": int(max_points),
        "mode": "density" if dense else "points",
        "sample": {"size": len(hover), "seed": seed, "suspects": n_top} if dense else None,
        "points": points, "full": full, "summary": summary, "suspects_total": int(flag.sum()),
        "duplicates_total": 0 if reason is None else int(((reason != "") & ~flag).sum()),
        # fit check, epoch window, calibration (and, from `datacarto report`, memorisation):
        # the same lines `datacarto flag` prints
        "notes": list(notes) if notes is not None else
        label_error_notes(metrics.attrs.get("label_errors") or {}),
        "images": {"shown": n_images, "capped": images is not None and len(hover) > max_images},
        # the first view, and the rule of "fit to data" for the page's own fits
        "axes": {"initial": axes, "limits": [list(v) for v in axis_limits(var, conf, axes)],
                 "paper": [list(v) for v in PAPER_LIMITS], "margin": FIT_MARGIN,
                 "min_span": FIT_MIN_SPAN},
    }
    parts = {"TITLE": html.escape(title), "VERSION": html.escape(__version__),
             "CSS": _asset("report.css"), "JS": _asset("report.js"),
             "PLOTLYJS": plotly_offline.get_plotlyjs(), "DATA": script_json(payload)}
    # one pass over the template only, so text inside the data can never be substituted
    # (a ReportPage: a str that a notebook displays inline)
    return ReportPage(_PLACEHOLDER.sub(lambda m: parts[m.group(1)], _asset("template.html")))


def write_report(metrics: pd.DataFrame, out: str | os.PathLike[str], **options: Any) -> Path:
    """Write :func:`build_report` to ``out`` atomically; returns the path."""
    out = Path(out)
    page = build_report(metrics, **options)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)
    return out
