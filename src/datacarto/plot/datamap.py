"""Data maps: the dataset-cartography figure of Swayamdipta et al. (2020).

matplotlib is imported only inside :func:`plot_data_map`, so importing this module (or
``datacarto``) stays cheap: matplotlib's import cost is paid only when a map is drawn.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import to_numpy
from ..errors import InputError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["AXES", "CORRECTNESS_COLORS", "CORRECTNESS_EDGES", "FIT_MARGIN", "FIT_MIN_SPAN",
           "PAPER_LIMITS", "REGION_TITLES", "axis_limits", "plot_data_map"]

#: Fixed correctness bin edges; the last bin is closed ([0.8, 1.0]).
CORRECTNESS_EDGES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: One fixed colour per correctness bin (low -> high), sampled once from a sequential
#: colour ramp and written out so that every run and matplotlib version uses the same ones.
CORRECTNESS_COLORS: tuple[str, ...] = ("#b2182b", "#ef8a62", "#e6c229", "#67a9cf", "#2166ac")
#: Display name of each region, in drawing order.
REGION_TITLES: dict[str, str] = {
    "easy": "easy-to-learn",
    "ambiguous": "ambiguous",
    "hard": "hard-to-learn",
}

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
_METADATA: dict[str, dict[str, None]] = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None},
    "svg": {"Date": None},
}
_TOL = 1e-9
#: Axis choices: ``"fit"`` (limits from the data) or ``"paper"`` (the paper's fixed axes).
AXES = ("fit", "paper")
#: The paper's fixed limits, (x = variability, y = confidence), with a 2.5 % margin.
PAPER_LIMITS: tuple[tuple[float, float], tuple[float, float]] = ((-0.0125, 0.5125), (-0.025, 1.025))
#: Margin around the data in "fit" axes, as a fraction of the span on each side.
FIT_MARGIN = 0.06
#: Smallest span of a "fit" axis as a fraction of the paper's, so a point cloud of
#: identical values still gets a readable axis.
FIT_MIN_SPAN = 0.05
_HIST_BINS = 50


# ----------------------------------------------------------------------------------- axes
def _fit_axis(values: np.ndarray, paper: tuple[float, float]) -> tuple[float, float]:
    # the report's page applies the same rule to filtered points (report.js, fitAxis)
    lo, hi = float(values.min()), float(values.max())
    span = max(hi - lo, FIT_MIN_SPAN * (paper[1] - paper[0]))
    mid = (lo + hi) / 2.0
    lo, hi = mid - span / 2.0, mid + span / 2.0
    pad = FIT_MARGIN * span
    # never wider than the paper's axes: those already show every possible value
    return max(lo - pad, paper[0]), min(hi + pad, paper[1])


def axis_limits(variability: Any, confidence: Any, axes: str = "fit",
                ) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (x, y) limits of a data map: x = variability, y = confidence.

    ``"paper"``: :data:`PAPER_LIMITS`, [0, 0.5] x [0, 1] with a 2.5 % margin, the same for
    every run so maps can be compared. ``"fit"``: per axis, from the data's
    ``[min, max]`` widened (about its middle) to a span of at least ``FIT_MIN_SPAN`` of the
    paper's axis, plus ``FIT_MARGIN`` of the span on each side, and never beyond the paper's
    limits.

    Raises
    ------
    datacarto.errors.InputError
        When ``axes`` is not one of :data:`AXES`.
    """
    if axes not in AXES:
        raise InputError(f"axes must be one of {', '.join(repr(a) for a in AXES)}; got {axes!r}")
    if axes == "paper":
        return PAPER_LIMITS
    var = np.asarray(variability, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    if var.size == 0:
        return PAPER_LIMITS
    return _fit_axis(var, PAPER_LIMITS[0]), _fit_axis(conf, PAPER_LIMITS[1])


# ----------------------------------------------------------------------------------- checks
def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _check_unit(values: Any, name: str, high: float) -> np.ndarray:
    """1-D finite float array within [0, high] (± _TOL), clipped into the range."""
    arr = to_numpy(values)
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D; got shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise InputError(f"{name} must hold numbers; got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr)
    bad = ~finite
    bad[finite] = (arr[finite] < -_TOL) | (arr[finite] > high + _TOL)
    if bad.any():
        i = int(np.argmax(bad))
        what = "is not finite" if not finite[i] else f"is outside [0, {high:g}]"
        raise InputError(f"{name}[{i}] = {_fmt(arr[i])} {what}")
    return np.clip(arr, 0.0, high)


def _check_regions(regions: Any, n: int) -> np.ndarray | None:
    if regions is None:
        return None
    arr = to_numpy(regions)
    if arr.ndim != 1:
        raise InputError(f"regions must be 1-D; got shape {arr.shape}")
    if len(arr) != n:
        raise InputError(f"regions has length {len(arr)} but confidence has length {n}")
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    arr = arr.astype(str) if arr.dtype.kind != "U" else arr
    bad = ~np.isin(arr, list(REGION_TITLES))
    if bad.any():
        i = int(np.argmax(bad))
        allowed = ", ".join(repr(r) for r in REGION_TITLES)
        raise InputError(f"regions[{i}] = {str(arr[i])!r} is not one of {allowed}")
    return arr


def _n_classes(labels: Any, class_names: Any, n: int) -> int | None:
    if labels is not None:
        arr = to_numpy(labels)
        if arr.ndim != 1:
            raise InputError(f"labels must be 1-D; got shape {arr.shape}")
        if len(arr) != n:
            raise InputError(f"labels has length {len(arr)} but confidence has length {n}")
        if class_names is not None:
            return max(len(class_names), len(np.unique(arr)))
        return len(np.unique(arr))
    if class_names is not None:
        return len(class_names)
    return None


def _check_out(out: Any) -> tuple[Path, str] | None:
    if out is None:
        return None
    try:
        path = Path(os.fspath(out))
    except TypeError:
        raise InputError(f"out must be a path (str or os.PathLike); got {type(out).__name__}") from None
    ext = path.suffix.lower()
    if ext not in _FORMATS:
        raise InputError(f"out: unsupported extension {path.suffix!r}; use .png, .svg or .pdf")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"out: directory {str(parent)!r} does not exist")
    return path, _FORMATS[ext]


# --------------------------------------------------------------------------------- drawing
def _correctness_bins(correctness: np.ndarray) -> np.ndarray:
    """Bin index 0..4 per example; [0,.2) [.2,.4) [.4,.6) [.6,.8) [.8,1]."""
    inner = np.asarray(CORRECTNESS_EDGES[1:-1])
    # A hair of tolerance so 0.6 computed as 0.6000000000000001 or 0.59999999999 lands in
    # the bin its fraction-of-epochs value belongs to.
    return np.searchsorted(inner, correctness + _TOL, side="right")


def _bin_label(b: int) -> str:
    return f"{CORRECTNESS_EDGES[b]:.1f}\u2013{CORRECTNESS_EDGES[b + 1]:.1f}"


def _count_fmt(v: float, _pos: Any = None) -> str:
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _marker_style(n: int, dense: bool) -> tuple[float, float]:
    """Marker area (pt^2) and alpha: large and opaque for few points, tiny and faint for many."""
    size = float(np.clip(18.0 * np.sqrt(1000.0 / n), 0.4, 18.0))
    alpha = float(np.clip(0.9 * (2000.0 / n) ** 0.3, 0.12, 0.85))
    if dense:
        size, alpha = min(size, 1.5), min(alpha, 0.35)
    return size, alpha


def _value_range(limits: tuple[float, float], high: float) -> tuple[float, float]:
    """The part of the axis where values can lie, [0, high], within its limits: bins span it."""
    return max(limits[0], 0.0), min(limits[1], high)


def _draw_density(ax: Axes, var: np.ndarray, conf: np.ndarray,
                  limits: tuple[tuple[float, float], tuple[float, float]]) -> None:
    from matplotlib.colors import ListedColormap, LogNorm

    xr, yr = _value_range(limits[0], 0.5), _value_range(limits[1], 1.0)
    counts, _, _ = np.histogram2d(var, conf, bins=(150, 300), range=(xr, yr))
    grid = np.ma.masked_equal(counts.T, 0)
    greys = np.linspace(0.93, 0.35, 256)  # light grey (1 example) -> dark grey (densest cell)
    cmap = ListedColormap(np.column_stack([greys, greys, greys, np.ones_like(greys)]))
    ax.imshow(grid, origin="lower", extent=(*xr, *yr), aspect="auto", cmap=cmap,
              norm=LogNorm(vmin=1.0, vmax=max(float(counts.max()), 2.0)),
              interpolation="nearest", rasterized=True, zorder=1.2)


def _draw_points(ax: Axes, var: np.ndarray, conf: np.ndarray, bins: np.ndarray,
                 present: list[int], size: float, alpha: float, rasterize: bool) -> None:
    # One scatter per colour bin: a single colour and size lets Agg stamp one cached marker
    # per point (fast at 10^6). The most populous bin is drawn first so rare bins stay visible.
    counts = np.bincount(bins, minlength=5)
    for b in sorted(present, key=lambda k: (-counts[k], k)):
        sel = bins == b
        ax.scatter(var[sel], conf[sel], s=size, color=CORRECTNESS_COLORS[b], alpha=alpha,
                   linewidths=0, marker="o", rasterized=rasterize, zorder=2)


def _draw_marginals(ax_top: Axes, ax_right: Axes, var: np.ndarray, conf: np.ndarray,
                    bins: np.ndarray, present: list[int],
                    limits: tuple[tuple[float, float], tuple[float, float]]) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    # the bins span what the axes show, so a cloud in a corner still gets _HIST_BINS bins
    x_edges = np.linspace(*_value_range(limits[0], 0.5), _HIST_BINS + 1)
    y_edges = np.linspace(*_value_range(limits[1], 1.0), _HIST_BINS + 1)
    base_x = np.zeros(_HIST_BINS)
    base_y = np.zeros(_HIST_BINS)
    for b in present:  # stacked by correctness bin, low correctness at the bottom
        sel = bins == b
        hx = np.histogram(var[sel], bins=x_edges)[0].astype(float)
        hy = np.histogram(conf[sel], bins=y_edges)[0].astype(float)
        ax_top.stairs(base_x + hx, x_edges, baseline=base_x, fill=True,
                      color=CORRECTNESS_COLORS[b], alpha=0.9, linewidth=0)
        ax_right.stairs(base_y + hy, y_edges, baseline=base_y, fill=True,
                        color=CORRECTNESS_COLORS[b], alpha=0.9, linewidth=0,
                        orientation="horizontal")
        base_x += hx
        base_y += hy
    ax_top.stairs(base_x, x_edges, color="0.25", linewidth=0.7)
    ax_right.stairs(base_y, y_edges, color="0.25", linewidth=0.7, orientation="horizontal")

    ax_top.set_ylim(0, max(base_x.max(), 1.0) * 1.08)
    ax_right.set_xlim(0, max(base_y.max(), 1.0) * 1.08)
    ax_top.set_ylabel("count")
    ax_right.set_xlabel("count")
    fmt = FuncFormatter(_count_fmt)
    ax_top.yaxis.set_major_formatter(fmt)
    ax_right.xaxis.set_major_formatter(fmt)
    ax_top.yaxis.set_major_locator(MaxNLocator(3, integer=True))
    ax_right.xaxis.set_major_locator(MaxNLocator(3, integer=True))
    ax_top.tick_params(labelbottom=False)
    ax_right.tick_params(labelleft=False)
    for a in (ax_top, ax_right):
        a.spines[["top", "right"]].set_visible(False)
        a.set_facecolor("white")


#: Points sampled (evenly, deterministic) to count what a label box would cover.
_COVER_SAMPLE = 20_000
#: Candidate label centres per axis (a grid over the axes) besides the region's median.
_GRID = 15


def _renderer(fig: Figure) -> Any:
    return fig.canvas.get_renderer()


def _box_cover(pts: np.ndarray, centres: np.ndarray, w: float, h: float) -> np.ndarray:
    """How many of ``pts`` (display coordinates) lie in a w x h box around each centre."""
    inside_x = np.abs(pts[None, :, 0] - centres[:, None, 0]) <= w / 2
    inside_y = np.abs(pts[None, :, 1] - centres[:, None, 1]) <= h / 2
    return (inside_x & inside_y).sum(axis=1)


def _overlap(centres: np.ndarray, w: float, h: float, boxes: list[Any]) -> np.ndarray:
    hit = np.zeros(len(centres), dtype=bool)
    for b in boxes:  # the boxes already placed, and the legend
        hit |= ((np.abs(centres[:, 0] - (b.x0 + b.x1) / 2) < (w + b.width) / 2 + 2)
                & (np.abs(centres[:, 1] - (b.y0 + b.y1) / 2) < (h + b.height) / 2 + 2))
    return hit


def _region_label(ax: Axes, text: str, median: tuple[float, float], spot: tuple[float, ...],
                  leader: bool) -> Any:
    """A region's label box centred on ``spot``; with ``leader``, a thin line to its median."""
    arrow = {"arrowstyle": "-", "color": "0.35", "linewidth": 0.8, "shrinkA": 0,
             "shrinkB": 2} if leader else None
    return ax.annotate(text, xy=median, xytext=spot, ha="center", va="center", fontsize=10,
                       color="0.1", zorder=6, linespacing=1.3, gid="datacarto-region",
                       annotation_clip=False, arrowprops=arrow,
                       bbox={"boxstyle": "round,pad=0.35", "facecolor": "white", "edgecolor": "0.35",
                             "alpha": 0.88, "linewidth": 0.8})


def _annotate_regions(ax: Axes, var: np.ndarray, conf: np.ndarray, regions: np.ndarray,
                      obstacles: list[Any]) -> None:
    """Label each region where its box covers the fewest points, near its median.

    After the limits are set, each label is measured (display pixels); candidate centres are
    its region's median and a grid over the axes. Among those overlapping no other label (nor
    ``obstacles``, e.g. the legend) and covering at most ``min + max(2, 0.2 %)`` of the
    sampled points, the one nearest the median wins; a label moved away from its region
    gets a thin leader line to the median.
    """
    from matplotlib.transforms import Bbox

    fig = ax.get_figure()
    renderer = _renderer(fig)
    locator = ax.get_axes_locator()
    if locator is not None:  # axes placed by a divider get their position at draw time
        ax.apply_aspect(locator(ax, renderer))
    n = len(regions)
    step = max(1, n // _COVER_SAMPLE)
    pts = ax.transData.transform(np.column_stack([var[::step], conf[::step]]))
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = list(obstacles)
    for key, name in REGION_TITLES.items():
        sel = regions == key
        k = int(sel.sum())
        if k == 0:
            continue
        median = (float(np.median(var[sel])), float(np.median(conf[sel])))
        text = f"{name}\n{100.0 * k / n:.1f}% (n={k:,})"
        probe = _region_label(ax, text, median, median, leader=False)
        probe.update_bbox_position_size(renderer)
        box = probe.get_bbox_patch().get_window_extent(renderer)
        probe.remove()
        w, h = box.width, box.height
        home = ax.transData.transform(median)
        xs = np.linspace(frame.x0 + w / 2 + 3, frame.x1 - w / 2 - 3, _GRID)
        ys = np.linspace(frame.y0 + h / 2 + 3, frame.y1 - h / 2 - 3, _GRID)
        inside = np.clip(home, [xs[0], ys[0]], [xs[-1], ys[-1]])
        centres = np.vstack([inside[None, :], np.array(np.meshgrid(xs, ys)).reshape(2, -1).T])
        cover = _box_cover(pts, centres, w, h).astype(np.float64)
        cover[_overlap(centres, w, h, placed)] = np.inf
        if not np.isfinite(cover).any():  # no free spot: accept overlaps, still cover few points
            cover = _box_cover(pts, centres, w, h).astype(np.float64)
        ok = cover <= cover.min() + max(2.0, 0.002 * len(pts))
        dist = np.hypot(*(centres - home).T)
        best = int(np.flatnonzero(ok)[np.argmin(dist[ok])])
        spot = tuple(ax.transData.inverted().transform(centres[best]))
        _region_label(ax, text, median, spot, leader=bool(dist[best] > max(w, h) / 2))
        placed.append(Bbox.from_bounds(centres[best][0] - w / 2, centres[best][1] - h / 2, w, h))


def _legend(ax: Axes, present: list[int], **kwargs: Any) -> Any:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], linestyle="none", marker="o", markersize=7,
                      markerfacecolor=CORRECTNESS_COLORS[b], markeredgecolor="none",
                      label=_bin_label(b)) for b in present]
    leg = ax.legend(handles=handles, title="correctness", fontsize=9, title_fontsize=10,
                    framealpha=0.92, edgecolor="0.7", **kwargs)
    leg.set_zorder(7)
    return leg


def _save(fig: Figure, path: Path, fmt: str, dpi: float) -> None:
    """Render to a hidden temp file beside ``path`` then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        if fmt == "svg":
            import matplotlib

            # svg.hashsalt makes the element ids deterministic instead of random.
            with matplotlib.rc_context({"svg.hashsalt": "datacarto"}):
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
        else:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------------ API
def plot_data_map(confidence: Any, variability: Any, correctness: Any, /, *,
                  regions: Any = None, out: str | os.PathLike[str] | None = None,
                  title: str | None = None, labels: Any = None, class_names: Any = None,
                  density_threshold: int = 20_000, ax: Axes | None = None,
                  dpi: float = 150, axes: str = "fit") -> Figure:
    """Draw a data map (Swayamdipta et al., 2020) and optionally save it.

    Parameters
    ----------
    confidence : array-like, shape (N,)
        Mean probability of the gold label across epochs, in [0, 1].
    variability : array-like, shape (N,)
        Standard deviation of that probability across epochs, in [0, 0.5].
    correctness : array-like, shape (N,)
        Fraction of epochs in which the example was predicted correctly, in [0, 1].
    regions : array-like of str, shape (N,), optional
        ``'easy'``, ``'ambiguous'`` or ``'hard'`` per example. Each region present gets a
        label with its share and count, e.g. ``"easy-to-learn\\n72.1% (n=7,210)"``, placed
        near the median (variability, confidence) of its examples where it covers the fewest
        points (with a thin line to the median when it had to move away).
    out : str or os.PathLike, optional
        Where to save the figure. The format follows the extension: ``.png``, ``.svg`` or
        ``.pdf``. The file is written atomically (temp file in the same directory, then
        renamed), so a failed save leaves any previous file untouched. Output is
        byte-for-byte reproducible for identical inputs (no timestamps, fixed SVG ids).
    title : str, optional
        Figure title. Default: ``"Data map"`` with the number of examples (and of classes
        when ``labels`` or ``class_names`` is given).
    labels : array-like of int, shape (N,), optional
        Gold labels; only used for the class count in the default title.
    class_names : sequence of str, optional
        Class names; only their number is used, for the default title.
    density_threshold : int, default 20_000
        Above this many examples, a log-scaled 2-D histogram is drawn under the points and
        the points become small, faint and rasterized so that dense areas stay readable.
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (the marginal histograms are appended next to it and the
        correctness legend goes in its lower-right corner). Default: a new 9 x 7 inch figure
        that is independent of pyplot's global state (safe in threads and without a display).
    dpi : float, default 150
        Resolution of the figure and of the saved file (and of rasterized layers in SVG/PDF).
    axes : {"fit", "paper"}, default "fit"
        ``"fit"``: limits from the data with a small margin (:func:`axis_limits`), so a cloud
        squeezed into a corner fills the map. ``"paper"``: the paper's fixed
        [0, 0.5] x [0, 1], the same for every run, to compare maps side by side. The
        histograms' bins span what the axes show.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (the one holding ``ax`` when ``ax`` was given).

    Raises
    ------
    datacarto.errors.InputError
        When the arrays differ in length, are not 1-D, are empty, hold non-finite or
        out-of-range values (the message names the parameter, the first bad index and its
        value, e.g. ``"variability[17] = 0.73 is outside [0, 0.5]"``), when ``regions`` holds
        an unknown name, when ``out`` has an unsupported extension, or when ``axes`` is not
        ``"fit"`` or ``"paper"``.

    Notes
    -----
    Encodings:

    * **x = variability**, **y = confidence**. Every example is one point; none is
      subsampled. The dashed curve is the largest possible variability for a given
      confidence, ``sqrt(c (1 - c))``; all points lie left of it.
    * **colour = correctness**, in fixed bins ``[0, .2) [.2, .4) [.4, .6) [.6, .8) [.8, 1]``
      with a fixed colour each (:data:`CORRECTNESS_COLORS`, red = rarely correct,
      blue = almost always correct), so colours mean the same in every figure. The legend
      lists only the bins present, in that fixed order.
    * **grey background** (only above ``density_threshold`` examples): number of examples per
      cell on a log scale; it shows where the mass is when points overlap.
    * **top / right histograms**: counts of examples per variability / confidence bin
      (not densities), stacked by correctness bin with the same colours.
    * **region labels**: near the median point of each region's examples, where the label
      box covers the fewest points.
    """
    conf = _check_unit(confidence, "confidence", 1.0)
    var = _check_unit(variability, "variability", 0.5)
    corr = _check_unit(correctness, "correctness", 1.0)
    n = len(conf)
    for name, arr in (("variability", var), ("correctness", corr)):
        if len(arr) != n:
            raise InputError(f"{name} has length {len(arr)} but confidence has length {n}")
    if n == 0:
        raise InputError("confidence, variability and correctness are empty; "
                         "a data map needs at least one example")
    reg = _check_regions(regions, n)
    n_classes = _n_classes(labels, class_names, n)
    if isinstance(density_threshold, bool) or not isinstance(density_threshold, (int, np.integer)) \
            or density_threshold < 0:
        raise InputError(f"density_threshold must be a non-negative integer; got {density_threshold!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float, np.number)) \
            or not np.isfinite(dpi) or dpi <= 0:
        raise InputError(f"dpi must be a positive number; got {dpi!r}")
    target = _check_out(out)
    limits = axis_limits(var, conf, axes)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    bins = _correctness_bins(corr)
    present = [b for b in range(5) if np.any(bins == b)]
    dense = n > density_threshold
    if title is None:
        title = f"Data map \u2014 {n:,} examples"
        if n_classes is not None:
            title += f", {n_classes} classes"

    if ax is None:
        fig = Figure(figsize=(9.0, 7.0), dpi=dpi, facecolor="white")
        FigureCanvasAgg(fig)
        gs = fig.add_gridspec(2, 2, width_ratios=(4.2, 1.0), height_ratios=(1.0, 4.0),
                              left=0.085, right=0.975, bottom=0.08, top=0.91,
                              wspace=0.035, hspace=0.035)
        main = fig.add_subplot(gs[1, 0])
        top = fig.add_subplot(gs[0, 0], sharex=main)
        right = fig.add_subplot(gs[1, 1], sharey=main)
        corner = fig.add_subplot(gs[0, 1])
        corner.set_axis_off()
        fig.suptitle(title, fontsize=14, x=0.085 + 0.89 * 4.2 / 5.2 / 2, y=0.965)
    else:
        from mpl_toolkits.axes_grid1 import make_axes_locatable

        fig = ax.get_figure(root=True) if _has_root_kw(ax) else ax.get_figure()
        main = ax
        divider = make_axes_locatable(main)
        top = divider.append_axes("top", size="25%", pad=0.08, sharex=main)
        right = divider.append_axes("right", size="25%", pad=0.08, sharey=main)
        top.set_title(title, fontsize=12)
        corner = None

    main.set_facecolor("white")
    main.grid(True, color="0.9", linewidth=0.6, zorder=0)
    main.set_axisbelow(True)
    c_grid = np.linspace(0.0, 1.0, 401)
    main.plot(np.sqrt(c_grid * (1.0 - c_grid)), c_grid, color="0.55", linewidth=0.9,
              linestyle=(0, (4, 3)), alpha=0.7, zorder=1.1)
    if dense:
        _draw_density(main, var, conf, limits)
    size, alpha = _marker_style(n, dense)
    _draw_points(main, var, conf, bins, present, size, alpha, rasterize=dense)
    main.set_xlim(*limits[0])
    main.set_ylim(*limits[1])
    main.set_xlabel("variability", fontsize=12)
    main.set_ylabel("confidence", fontsize=12)
    _draw_marginals(top, right, var, conf, bins, present, limits)
    if corner is not None:
        legend = _legend(corner, present, loc="center")
    else:
        legend = _legend(main, present, loc="lower right")
    if reg is not None:  # last: the labels avoid the points and the legend as drawn
        in_main = [legend.get_window_extent(_renderer(fig))] if corner is None else []
        _annotate_regions(main, var, conf, reg, in_main)

    if target is not None:
        _save(fig, target[0], target[1], dpi)
    return fig


def _has_root_kw(ax: Axes) -> bool:
    """``Axes.get_figure(root=True)`` exists from matplotlib 3.10 on (subfigures)."""
    import inspect

    try:
        return "root" in inspect.signature(ax.get_figure).parameters
    except (TypeError, ValueError):
        return False
