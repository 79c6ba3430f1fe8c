"""The report's map view (fit to data, paper axes, reset) and the pictures of image data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from datacarto.plot.datamap import PAPER_LIMITS, axis_limits
from datacarto.report import write_report
from datacarto.thumbnails import ImageSource

pytest.importorskip("plotly")


def corner_metrics(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A run squeezed into the easy corner, two classes; class 1 sits higher than class 0."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    conf = np.clip(0.86 + 0.08 * label + rng.normal(0, 0.015, n), 0, 1)
    var = np.clip(rng.gamma(2.0, 0.006, n), 0, 0.5)
    flag = np.zeros(n, dtype=bool)
    flag[:12] = True
    return pd.DataFrame({"id": np.arange(n), "label": label, "confidence": conf, "variability": var,
                         "correctness": np.where(conf > 0.9, 1.0, 0.8), "region": "easy",
                         "label_error_score": np.linspace(1, 0, n), "suggested_label": 1 - label,
                         "is_label_error": flag})


def pixel_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.integers(0, 256, (n, 64)), columns=[f"px_{j}" for j in range(64)])


@pytest.fixture(scope="module")
def loaded(browser: Any, tmp_path_factory: pytest.TempPathFactory, watch_page: Any
           ) -> Iterator[tuple[Any, Any, pd.DataFrame]]:
    metrics = corner_metrics()
    images = ImageSource.find(pixel_frame(len(metrics)))
    assert images is not None
    out = write_report(metrics, tmp_path_factory.mktemp("view") / "report.html", classes=["a", "b"],
                       images=images.uris, max_images=100)
    context = browser.new_context(viewport={"width": 1300, "height": 950})
    page = context.new_page()
    watch = watch_page(page, out.as_uri())
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    yield page, watch, metrics
    context.close()


def ranges(page: Any) -> tuple[list[float], list[float]]:
    r = page.evaluate("() => { const l = document.getElementById('dc-map')._fullLayout; "
                      "return [l.xaxis.range, l.yaxis.range]; }")
    return r[0], r[1]


def click_view(page: Any, button: str, name: str) -> None:
    page.click(button)
    page.wait_for_selector(f"body[data-view='{name}']")


def test_map_opens_fitted_and_the_buttons_switch_axes(loaded) -> None:
    page, watch, metrics = loaded
    fit = axis_limits(metrics["variability"].round(4), metrics["confidence"].round(4), "fit")
    x, y = ranges(page)
    assert x == pytest.approx(fit[0], abs=1e-3) and y == pytest.approx(fit[1], abs=1e-3)
    click_view(page, "#dc-paper", "paper")
    assert ranges(page) == (pytest.approx(PAPER_LIMITS[0]), pytest.approx(PAPER_LIMITS[1]))
    # fit to data: only the examples that match the filters
    page.select_option("#dc-class", "1")
    click_view(page, "#dc-fit", "fit")
    sel = metrics[metrics["label"] == 1]
    fit1 = axis_limits(sel["variability"].round(4), sel["confidence"].round(4), "fit")
    x, y = ranges(page)
    assert x == pytest.approx(fit1[0], abs=1e-3) and y == pytest.approx(fit1[1], abs=1e-3)
    assert y[0] > fit[1][0] + 0.03  # class 1 sits higher: the view moved up to it
    # a redraw after another filter keeps the chosen view
    page.select_option("#dc-class", "-1")
    page.wait_for_function("document.getElementById('dc-count').textContent.startsWith('300 of')")
    assert ranges(page)[1] == pytest.approx(fit1[1], abs=1e-3)
    click_view(page, "#dc-reset", "reset")
    x, y = ranges(page)
    assert x == pytest.approx(fit[0], abs=1e-3) and y == pytest.approx(fit[1], abs=1e-3)
    assert watch.errors == []


def test_hover_and_detail_show_the_picture(loaded) -> None:
    page, watch, metrics = loaded
    pictures = page.evaluate("window.dcReport.data.points.image")
    assert sum(p is not None for p in pictures) == 100  # max_images, the highest scores first
    assert all(p is not None for p in pictures[:100]) and all(p is None for p in pictures[100:])
    assert page.is_visible("#dc-images")  # says that only some examples have pictures
    page.evaluate("window.dcReport.select(0)")
    src = page.get_attribute("#dc-detail-body img.dc-picture", "src")
    assert src == pictures[0] and src.startswith("data:image/png;base64,")
    assert page.locator("#dc-detail-body .dc-text").count() == 0  # no "(no text)" under a picture
    # the pictured point farthest (in pixels) from every other one, so the hover is unambiguous
    target = page.evaluate("""() => {
        const r = window.dcReport, n = r.data.points.id.length, px = [];
        for (let i = 0; i < n; i++) px.push(r.pixelOf(i));
        let best = -1, bestGap = -1;
        for (let a = 0; a < 100; a++) {
            let gap = Infinity;
            for (let b = 0; b < n; b++) if (b !== a)
                gap = Math.min(gap, Math.hypot(px[a].x - px[b].x, px[a].y - px[b].y));
            if (gap > bestGap) { bestGap = gap; best = a; }
        }
        return best; }""")
    xy = page.evaluate(f"window.dcReport.pixelOf({target})")
    page.mouse.move(xy["x"] - 40, xy["y"] - 40)
    page.mouse.move(xy["x"], xy["y"], steps=5)
    page.wait_for_selector("#dc-tooltip:not([hidden]) img.dc-picture", timeout=5_000)
    index = int(page.get_attribute("#dc-tooltip", "data-index"))
    assert page.get_attribute("#dc-tooltip img.dc-picture", "src") == pictures[index]
    assert watch.errors == [] and watch.foreign() == []
