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

__all__ = ["CORRECTNESS_COLORS", "CORRECTNESS_EDGES", "REGION_TITLES", "plot_data_map"]

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
_XLIM = (-0.0125, 0.5125)
_YLIM = (-0.025, 1.025)
_HIST_BINS = 50


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


def _draw_density(ax: Axes, var: np.ndarray, conf: np.ndarray) -> None:
    from matplotlib.colors import ListedColormap, LogNorm

    counts, _, _ = np.histogram2d(var, conf, bins=(150, 300), range=((0.0, 0.5), (0.0, 1.0)))
    grid = np.ma.masked_equal(counts.T, 0)
    greys = np.linspace(0.93, 0.35, 256)  # light grey (1 example) -> dark grey (densest cell)
    cmap = ListedColormap(np.column_stack([greys, greys, greys, np.ones_like(greys)]))
    ax.imshow(grid, origin="lower", extent=(0.0, 0.5, 0.0, 1.0), aspect="auto", cmap=cmap,
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
                    bins: np.ndarray, present: list[int]) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    x_edges = np.linspace(0.0, 0.5, _HIST_BINS + 1)
    y_edges = np.linspace(0.0, 1.0, _HIST_BINS + 1)
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


def _annotate_regions(ax: Axes, var: np.ndarray, conf: np.ndarray, regions: np.ndarray) -> None:
    n = len(regions)
    spots: list[list[float]] = []
    texts: list[str] = []
    for key, name in REGION_TITLES.items():
        sel = regions == key
        k = int(sel.sum())
        if k == 0:
            continue
        x = float(np.median(var[sel]))
        y = float(np.median(conf[sel]))
        # Keep the label box inside the axes.
        spots.append([min(max(x, 0.085), 0.415), min(max(y, 0.07), 0.93)])
        texts.append(f"{name}\n{100.0 * k / n:.1f}% (n={k:,})")
    # Nudge labels apart vertically when two medians nearly coincide (x scaled to [0, 1]).
    for i in range(len(spots)):
        for j in range(i):
            dx = abs(spots[i][0] - spots[j][0]) / 0.5
            dy = spots[i][1] - spots[j][1]
            if dx < 0.3 and abs(dy) < 0.12:
                step = 0.12 - abs(dy)
                spots[i][1] += step if (dy >= 0 and spots[i][1] + step <= 0.93) else -step
    for (x, y), text in zip(spots, texts):
        ax.text(x, y, text, ha="center", va="center", fontsize=10, color="0.1", zorder=6,
                linespacing=1.3, gid="datacarto-region",
                bbox={"boxstyle": "round,pad=0.35", "facecolor": "white", "edgecolor": "0.35",
                      "alpha": 0.88, "linewidth": 0.8})


def _legend(ax: Axes, present: list[int], **kwargs: Any) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], linestyle="none", marker="o", markersize=7,
                      markerfacecolor=CORRECTNESS_COLORS[b], markeredgecolor="none",
                      label=_bin_label(b)) for b in present]
    leg = ax.legend(handles=handles, title="correctness", fontsize=9, title_fontsize=10,
                    framealpha=0.92, edgecolor="0.7", **kwargs)
    leg.set_zorder(7)


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
                  dpi: float = 150) -> Figure:
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
        label at the median (variability, confidence) of its examples with its share and
        count, e.g. ``"easy-to-learn\\n72.1% (n=7,210)"``.
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
        an unknown name, or when ``out`` has an unsupported extension.

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
    * **region labels**: placed at the median point of each region's examples.
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
        _draw_density(main, var, conf)
    size, alpha = _marker_style(n, dense)
    _draw_points(main, var, conf, bins, present, size, alpha, rasterize=dense)
    if reg is not None:
        _annotate_regions(main, var, conf, reg)
    main.set_xlim(*_XLIM)
    main.set_ylim(*_YLIM)
    main.set_xlabel("variability", fontsize=12)
    main.set_ylabel("confidence", fontsize=12)
    _draw_marginals(top, right, var, conf, bins, present)
    if corner is not None:
        _legend(corner, present, loc="center")
    else:
        _legend(main, present, loc="lower right")

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
