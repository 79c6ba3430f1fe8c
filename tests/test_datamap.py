"""Tests for datacarto.plot.plot_data_map (the data-map figure)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from datacarto.errors import InputError  # noqa: E402
from datacarto.plot import plot_data_map  # noqa: E402
from datacarto.plot.datamap import CORRECTNESS_COLORS  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<?xml", "pdf": b"%PDF-"}


def synth(n: int, seed: int = 0, epochs: int = 6):
    """Plausible training dynamics: confidence, variability, correctness, regions."""
    rng = np.random.default_rng(seed)
    ease = rng.normal(1.0, 1.5, n)
    speed = rng.normal(2.0, 1.5, n)
    t = np.linspace(0.0, 1.0, epochs)
    logits = ease[:, None] + speed[:, None] * t + rng.normal(0.0, 1.0, (n, epochs))
    p = 1.0 / (1.0 + np.exp(-logits))
    conf, var, corr = p.mean(1), p.std(1), (p > 0.5).mean(1)
    regions = np.where(var > np.quantile(var, 0.67), "ambiguous",
                       np.where(conf >= 0.5, "easy", "hard"))
    return conf, var, corr, regions


@pytest.fixture(scope="module")
def data():
    return synth(400)


def main_axes(fig):
    return next(a for a in fig.axes if a.get_xlabel() == "variability")


# ------------------------------------------------------------------------------ outputs
@pytest.mark.parametrize("ext", ["png", "svg", "pdf"])
def test_writes_each_format(tmp_path, data, ext):
    out = tmp_path / f"map.{ext}"
    fig = plot_data_map(*data[:3], regions=data[3], out=out)
    blob = out.read_bytes()
    assert blob.startswith(MAGIC[ext])
    assert len(blob) > 1000
    assert fig.__class__.__name__ == "Figure"
    assert sorted(os.listdir(tmp_path)) == [f"map.{ext}"]  # no temp file left behind


def test_extension_is_case_insensitive_and_str_paths_work(tmp_path, data):
    out = tmp_path / "MAP.PNG"
    plot_data_map(*data[:3], out=str(out))
    assert out.read_bytes().startswith(MAGIC["png"])


@pytest.mark.parametrize("ext", ["png", "svg", "pdf"])
def test_output_is_byte_identical_across_runs(tmp_path, data, ext):
    a, b = tmp_path / f"a.{ext}", tmp_path / f"b.{ext}"
    plot_data_map(*data[:3], regions=data[3], out=a, density_threshold=100)
    plot_data_map(*data[:3], regions=data[3], out=b, density_threshold=100)
    assert a.read_bytes() == b.read_bytes()


def test_concurrent_renders_in_threads_match(tmp_path, data):
    outs = [tmp_path / f"t{i}.png" for i in range(3)]
    errors = []

    def work(path):
        try:
            plot_data_map(*data[:3], regions=data[3], out=path)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({p.read_bytes() for p in outs}) == 1


def test_unsupported_extension_raises_before_writing(tmp_path, data):
    out = tmp_path / "map.jpg"
    with pytest.raises(InputError, match=r"out: unsupported extension '\.jpg'; use \.png, \.svg or \.pdf"):
        plot_data_map(*data[:3], out=out)
    with pytest.raises(ValueError, match="unsupported extension ''"):
        plot_data_map(*data[:3], out=tmp_path / "map")
    assert os.listdir(tmp_path) == []


def test_missing_directory_is_an_input_error(tmp_path, data):
    with pytest.raises(InputError, match="does not exist"):
        plot_data_map(*data[:3], out=tmp_path / "nope" / "map.png")


def test_failed_save_keeps_existing_file(tmp_path, data, monkeypatch):
    from matplotlib.figure import Figure

    out = tmp_path / "map.png"
    out.write_bytes(b"previous figure")

    def broken_savefig(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"half a png")  # partial write, then failure
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plot_data_map(*data[:3], out=out)
    assert out.read_bytes() == b"previous figure"
    assert os.listdir(tmp_path) == ["map.png"]


# ------------------------------------------------------------------------------ validation
def _inputs(n=30):
    conf = np.linspace(0.05, 0.95, n)
    var = np.full(n, 0.1)
    corr = np.linspace(0.0, 1.0, n)
    return conf, var, corr


def _with(arr, i, v):
    arr = arr.copy()
    arr[i] = v
    return arr


@pytest.mark.parametrize("change, pattern", [
    (lambda c, v, k: (c, _with(v, 17, 0.73), k), r"^variability\[17\] = 0\.73 is outside \[0, 0\.5\]$"),
    (lambda c, v, k: (_with(c, 3, np.nan), v, k), r"^confidence\[3\] = nan is not finite$"),
    (lambda c, v, k: (_with(c, 5, 1.2), _with(v, 2, np.inf), k), r"^confidence\[5\] = 1\.2 is outside \[0, 1\]$"),
    (lambda c, v, k: (c, v, _with(k, 9, -0.25)), r"^correctness\[9\] = -0\.25 is outside \[0, 1\]$"),
    (lambda c, v, k: (c, v[:-1], k), r"variability has length 29 but confidence has length 30"),
    (lambda c, v, k: (c, v, k[:-2]), r"correctness has length 28 but confidence has length 30"),
    (lambda c, v, k: (c.reshape(5, 6), v, k), r"confidence must be 1-D; got shape \(5, 6\)"),
    (lambda c, v, k: ([], [], []), r"empty"),
    (lambda c, v, k: (c, v.astype(str), k), r"variability must hold numbers"),
])
def test_bad_arrays_raise_input_error(change, pattern):
    with pytest.raises(InputError, match=pattern):
        plot_data_map(*change(*_inputs()))


def test_bad_keyword_arguments_raise_input_error():
    c, v, k = _inputs()
    regions = np.array(["easy"] * 30, dtype=object)
    regions[4] = "medium"
    with pytest.raises(InputError, match=r"regions\[4\] = 'medium' is not one of 'easy', 'ambiguous', 'hard'"):
        plot_data_map(c, v, k, regions=regions)
    with pytest.raises(InputError, match="regions has length 2"):
        plot_data_map(c, v, k, regions=["easy", "hard"])
    with pytest.raises(InputError, match="labels has length 3"):
        plot_data_map(c, v, k, labels=[0, 1, 2])
    with pytest.raises(InputError, match="density_threshold"):
        plot_data_map(c, v, k, density_threshold=-1)
    with pytest.raises(InputError, match="dpi"):
        plot_data_map(c, v, k, dpi=0)


def test_values_within_tolerance_of_bounds_are_accepted():
    c, v, k = _inputs()
    fig = plot_data_map(_with(c, 0, 1.0 + 1e-12), _with(v, 0, 0.5 + 1e-12), _with(k, 0, -1e-12))
    assert main_axes(fig) is not None


def test_accepts_lists_and_pandas():
    pd = pytest.importorskip("pandas")
    c, v, k = _inputs()
    plot_data_map(list(c), pd.Series(v), k.tolist())


# ------------------------------------------------------------------------------ content
def test_density_layer_only_above_threshold():
    from matplotlib.collections import PathCollection, QuadMesh
    from matplotlib.image import AxesImage

    conf, var, corr, _ = synth(30_000, seed=1)
    fig = plot_data_map(conf, var, corr, density_threshold=1000)
    ax = main_axes(fig)
    assert any(isinstance(a, (AxesImage, QuadMesh)) for a in ax.get_children())
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in points) == 30_000  # every point drawn
    assert all(c.get_rasterized() for c in points)

    fig = plot_data_map(conf[:500], var[:500], corr[:500], density_threshold=1000)
    ax = main_axes(fig)
    assert not any(isinstance(a, (AxesImage, QuadMesh)) for a in ax.get_children())
    assert sum(len(c.get_offsets()) for c in ax.collections) == 500


def test_region_annotations_show_share_and_count(data):
    conf, var, corr, regions = data
    fig = plot_data_map(conf, var, corr, regions=regions)
    texts = {t.get_text() for t in main_axes(fig).texts}
    n = len(regions)
    for key, name in [("easy", "easy-to-learn"), ("ambiguous", "ambiguous"), ("hard", "hard-to-learn")]:
        k = int((regions == key).sum())
        assert f"{name}\n{100 * k / n:.1f}% (n={k:,})" in texts


def test_only_present_regions_are_annotated():
    c, v, k = _inputs()
    regions = ["easy"] * 20 + ["hard"] * 10
    fig = plot_data_map(c, v, k, regions=regions)
    texts = sorted(t.get_text() for t in main_axes(fig).texts)
    assert texts == ["easy-to-learn\n66.7% (n=20)", "hard-to-learn\n33.3% (n=10)"]


def test_correctness_bins_colours_and_legend_are_fixed():
    from matplotlib.colors import to_hex

    conf = np.array([0.9, 0.8, 0.3, 0.2, 0.6])
    var = np.array([0.05, 0.1, 0.2, 0.1, 0.3])
    corr = np.array([1.0, 0.8, 0.2, 0.0, 0.85])  # bins: 4, 4, 1, 0, 4 (last bin closed)
    fig = plot_data_map(conf, var, corr)
    legends = [lg for a in fig.axes if (lg := a.get_legend()) is not None]
    assert len(legends) == 1
    assert legends[0].get_title().get_text() == "correctness"
    assert [t.get_text() for t in legends[0].get_texts()] == ["0.0\u20130.2", "0.2\u20130.4", "0.8\u20131.0"]
    by_colour = {to_hex(c.get_facecolor()[0], keep_alpha=False): len(c.get_offsets())
                 for c in main_axes(fig).collections}
    assert by_colour == {CORRECTNESS_COLORS[0]: 1, CORRECTNESS_COLORS[1]: 1, CORRECTNESS_COLORS[4]: 3}


def test_layout_labels_and_marginals(data):
    fig = plot_data_map(*data[:3], title="My map", axes="paper")
    ax = main_axes(fig)
    assert ax.get_ylabel() == "confidence"
    assert ax.get_xlim()[0] < 0 < 0.5 < ax.get_xlim()[1]
    assert ax.get_ylim()[0] < 0 < 1 < ax.get_ylim()[1]
    labels = [a.get_ylabel() for a in fig.axes] + [a.get_xlabel() for a in fig.axes]
    assert labels.count("count") == 2
    assert [t.get_text() for t in fig.texts] == ["My map"]
    assert tuple(fig.get_size_inches()) == (9.0, 7.0)

    default = plot_data_map(*data[:3], labels=np.arange(len(data[0])) % 3)
    assert [t.get_text() for t in default.texts] == ["Data map \u2014 400 examples, 3 classes"]


def test_draws_into_given_axes(tmp_path, data):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    out = tmp_path / "given.png"
    got = plot_data_map(*data[:3], regions=data[3], ax=ax, out=out)
    assert got is fig
    assert len(fig.axes) == 3  # main + two marginal histograms
    assert ax.get_xlabel() == "variability" and ax.get_legend() is not None
    assert out.read_bytes().startswith(MAGIC["png"])


def test_importing_does_not_import_matplotlib(tmp_path):
    code = textwrap.dedent("""
        import sys
        import datacarto
        import datacarto.plot
        import datacarto.plot.datamap
        assert "matplotlib" not in sys.modules, "imported at module level"
        datacarto.plot.plot_data_map([0.5, 0.9], [0.1, 0.05], [0.5, 1.0])
        assert "matplotlib" in sys.modules
        assert "matplotlib.pyplot" not in sys.modules, "pyplot global state used"
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# ------------------------------------------------------------------------------ axes, labels
def corner_cloud(n: int, seed: int = 3):
    """Everything squeezed into the easy corner: variability < 0.04, confidence > 0.9."""
    rng = np.random.default_rng(seed)
    conf = 1.0 - rng.beta(1.2, 30.0, n) * 0.9
    var = np.clip(rng.gamma(2.0, 0.006, n), 0, 0.04)
    corr = np.where(conf > 0.95, 1.0, 0.8)
    regions = np.where(var > np.quantile(var, 0.9), "ambiguous",
                       np.where(conf < np.quantile(conf, 0.05), "hard", "easy"))
    return conf, var, corr, regions


def three_clouds(n: int, seed: int = 4):
    """Three tight clouds, one per region, as with a well separated dataset."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 3, n)
    centre = np.array([[0.05, 0.9], [0.3, 0.5], [0.08, 0.15]])[k]
    var = np.clip(centre[:, 0] + rng.normal(0, 0.02, n), 0, 0.5)
    conf = np.clip(centre[:, 1] + rng.normal(0, 0.05, n), 0, 1)
    regions = np.array(["easy", "ambiguous", "hard"])[k]
    return conf, var, (conf > 0.5).astype(float), regions


def label_cover(fig, var, conf):
    """Per region label: the fraction of all points inside its box (display coordinates)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = main_axes(fig)
    pts = ax.transData.transform(np.column_stack([var, conf]))
    out = {}
    for t in ax.texts:
        assert t.get_gid() == "datacarto-region"
        box = t.get_bbox_patch().get_window_extent(renderer)
        inside = ((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0)
                  & (pts[:, 1] <= box.y1))
        out[t.get_text().split("\n")[0]] = (inside.mean(), box)
    return out


@pytest.mark.parametrize("axes", ["fit", "paper"])
@pytest.mark.parametrize("cloud", [lambda: synth(3000), lambda: corner_cloud(3000),
                                   lambda: three_clouds(3000), lambda: corner_cloud(30_000)],
                         ids=["training-dynamics", "corner", "three-clouds", "corner-dense"])
def test_region_labels_cover_few_points(tmp_path, cloud, axes):
    conf, var, corr, regions = cloud()
    fig = plot_data_map(conf, var, corr, regions=regions, axes=axes, out=tmp_path / "map.png")
    cover = label_cover(fig, var, conf)
    assert len(cover) == len(set(regions))
    frame = main_axes(fig).get_window_extent(fig.canvas.get_renderer())
    boxes = [box for _, box in cover.values()]
    for name, (fraction, box) in cover.items():
        assert fraction <= 0.02, f"{name} label covers {fraction:.1%} of the points"
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    for i in range(len(boxes)):
        for j in range(i):
            assert not boxes[i].overlaps(boxes[j]), "two region labels overlap"


def test_labels_at_the_medians_would_cover_the_corner_cloud():
    """The case the placement exists for: at its median, the easy label hides many points."""
    conf, var, corr, regions = corner_cloud(3000)
    fig = plot_data_map(conf, var, corr, regions=regions)
    ax = main_axes(fig)
    cover = label_cover(fig, var, conf)
    fraction, box = cover["easy-to-learn"]
    sel = regions == "easy"
    home = ax.transData.transform((np.median(var[sel]), np.median(conf[sel])))
    pts = ax.transData.transform(np.column_stack([var, conf]))
    at_median = ((np.abs(pts[:, 0] - home[0]) <= box.width / 2)
                 & (np.abs(pts[:, 1] - home[1]) <= box.height / 2)).mean()
    assert at_median > 0.05 > fraction


def test_fit_axes_hug_a_corner_cloud_and_paper_axes_stay_fixed():
    from datacarto.plot.datamap import FIT_MARGIN, PAPER_LIMITS, axis_limits

    conf, var, corr, regions = corner_cloud(2000)
    fit = main_axes(plot_data_map(conf, var, corr, regions=regions))  # fit is the default
    x0, x1 = fit.get_xlim()
    y0, y1 = fit.get_ylim()
    assert ((x0, x1), (y0, y1)) == axis_limits(var, conf, "fit")
    assert x0 < var.min() and var.max() < x1 and y0 < conf.min() and conf.max() < y1
    # margins: FIT_MARGIN of the span on each side (or the paper's edge)
    assert x1 - var.max() == pytest.approx(FIT_MARGIN * (var.max() - var.min()))
    assert conf.max() < 1.0 and y1 == pytest.approx(min(1.025, conf.max() + FIT_MARGIN * (
        conf.max() - conf.min())))
    assert x1 - x0 < 0.1 and y1 - y0 < 0.3  # the cloud fills the map
    paper = main_axes(plot_data_map(conf, var, corr, regions=regions, axes="paper"))
    assert (paper.get_xlim(), paper.get_ylim()) == PAPER_LIMITS
    # the histograms' bins span what the axes show
    top = next(a for a in fit.get_figure().axes if a.get_ylabel() == "count" and a is not fit
               and a.get_xlim() == fit.get_xlim())
    from matplotlib.patches import StepPatch

    edges = np.concatenate([p.get_data().edges for p in top.patches if isinstance(p, StepPatch)])
    assert edges.min() >= x0 and edges.max() <= x1


def test_fit_axes_of_identical_points_still_have_a_span():
    from datacarto.plot.datamap import FIT_MIN_SPAN, axis_limits

    (x0, x1), (y0, y1) = axis_limits(np.full(5, 0.1), np.full(5, 0.5))
    assert x1 - x0 >= FIT_MIN_SPAN * 0.525 and y1 - y0 >= FIT_MIN_SPAN * 1.05
    assert x0 < 0.1 < x1 and y0 < 0.5 < y1


def test_unknown_axes_is_an_input_error(data):
    with pytest.raises(InputError, match="axes must be one of 'fit', 'paper'; got 'tight'"):
        plot_data_map(*data[:3], axes="tight")


def test_cli_map_axes_option(tmp_path, monkeypatch):
    from builders import make_run

    from datacarto.cli import main
    from datacarto.plot import datamap

    run = make_run(tmp_path / "run", n=80)
    seen = []
    real = datamap.plot_data_map
    monkeypatch.setattr(datamap, "plot_data_map", lambda *a, **kw: seen.append(kw["axes"]) or real(*a, **kw))
    assert main(["map", str(run), "-o", str(tmp_path / "fit.png")]) == 0
    assert main(["map", str(run), "-o", str(tmp_path / "paper.png"), "--axes", "paper"]) == 0
    assert seen == ["fit", "paper"]
    assert (tmp_path / "fit.png").read_bytes() != (tmp_path / "paper.png").read_bytes()
