"""The report in a real browser: loads offline, hover shows the tooltip, filters work, no xss."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import datacarto
from datacarto.report import write_report

pytest.importorskip("plotly")


@pytest.fixture(scope="module")
def report(dataset: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    run, data = dataset
    metrics = datacarto.load(run).metrics()
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report(metrics, out, classes=["neg", "neu", "pos"],
                 texts=pd.read_csv(data)["text"].tolist(), title="browser test")
    return out, metrics


@pytest.fixture(scope="module")
def loaded(browser: Any, report: tuple[Path, pd.DataFrame], watch_page: Any) -> Iterator[tuple[Any, Any]]:
    path, _ = report
    context = browser.new_context(viewport={"width": 1300, "height": 950})
    page = context.new_page()
    watch = watch_page(page, path.as_uri())
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    yield page, watch
    context.close()


def test_report_loads_nothing_from_the_network(loaded) -> None:
    page, watch = loaded
    assert watch.foreign() == []
    assert watch.errors == []
    assert page.evaluate("typeof Plotly") == "object"


def test_hover_shows_the_tooltip_of_that_point(loaded, report) -> None:
    page, _ = loaded
    _, metrics = report
    # the point farthest (in pixels) from every other one, so the hover is unambiguous
    i = page.evaluate("""() => {
        const r = window.dcReport, n = r.data.points.id.length;
        let best = -1, bestGap = -1;
        for (let a = 0; a < n; a++) {
            const pa = r.pixelOf(a); let gap = Infinity;
            for (let b = 0; b < n; b++) if (b !== a) {
                const pb = r.pixelOf(b); gap = Math.min(gap, Math.hypot(pa.x - pb.x, pa.y - pb.y));
            }
            if (gap > bestGap) { bestGap = gap; best = a; }
        }
        return best; }""")
    xy = page.evaluate(f"window.dcReport.pixelOf({i})")
    page.mouse.move(xy["x"] - 30, xy["y"] - 30)
    page.mouse.move(xy["x"], xy["y"], steps=5)
    page.wait_for_selector("#dc-tooltip:not([hidden])", timeout=5_000)
    tip = page.text_content("#dc-tooltip")
    row = metrics.iloc[i]
    assert f"id{row['id']}given label{row['label_name']}" in tip
    assert f"suggested{row['suggested_label_name']}" in tip
    assert f"confidence{row['confidence']:.3f}" in tip and f"variability{row['variability']:.3f}" in tip
    page.mouse.move(5, 5)


def test_filter_by_class_and_region(loaded, report) -> None:
    page, _ = loaded
    _, metrics = report
    count_points = "() => document.getElementById('dc-map').data.filter(t => t.type === 'scattergl')" \
                   ".reduce((a, t) => a + t.x.length, 0)"
    assert page.evaluate(count_points) == 60
    page.select_option("#dc-class", "1")
    n_neu = int((metrics["label"] == 1).sum())
    page.wait_for_function(f"({count_points})() === {n_neu}")
    assert page.text_content("#dc-count").startswith(f"{n_neu} of 60 examples match")
    given = page.eval_on_selector_all("#dc-suspects tbody tr td:nth-child(3)", "els => els.map(e => e.textContent)")
    assert set(given) <= {"neu"}
    page.select_option("#dc-region", "0")
    n_both = int(((metrics["label"] == 1) & (metrics["region"] == "easy")).sum())
    page.wait_for_function(f"({count_points})() === {n_both}")
    page.select_option("#dc-class", "-1")
    page.select_option("#dc-region", "-1")
    page.wait_for_function(f"({count_points})() === 60")
    page.select_option("#dc-colour", "class")
    names = page.evaluate("() => document.getElementById('dc-map').data"
                          ".filter(t => t.type === 'scattergl').map(t => t.name.split(' (')[0])")
    assert sorted(names) == ["neg", "neu", "pos"]
    page.select_option("#dc-colour", "correctness")


def test_suspects_table_search_sort_and_select(loaded, report) -> None:
    page, _ = loaded
    _, metrics = report
    rows = page.locator("#dc-suspects tbody tr")
    assert rows.count() == min(50, int(metrics["is_label_error"].sum()))
    scores = [float(s) for s in page.eval_on_selector_all(
        "#dc-suspects tbody td:first-child", "els => els.map(e => e.textContent)")]
    assert scores == sorted(scores, reverse=True)
    page.click("#dc-suspects th[data-key='score']")  # toggles to ascending
    first = float(page.text_content("#dc-suspects tbody tr:first-child td:first-child"))
    assert first == min(scores)
    page.click("#dc-suspects th[data-key='score']")
    page.fill("#dc-search", "example 14")
    page.wait_for_function("document.querySelectorAll('#dc-suspects tbody tr').length <= 1")
    page.fill("#dc-search", "")
    page.click("#dc-suspects tbody tr:first-child")
    assert page.is_visible("#dc-detail-body")


def test_payloads_in_text_show_as_text_and_run_nothing(loaded, report, xss) -> None:
    page, watch = loaded
    _, metrics = report
    flagged_payloads = [xss[k] for k in range(len(xss)) if metrics["is_label_error"].iloc[7 * k]]
    assert flagged_payloads, "the fixture should flag at least one payload example"
    page.fill("#dc-search", "<")
    page.wait_for_function("document.querySelectorAll('#dc-suspects tbody tr').length >= 1")
    cells = page.eval_on_selector_all("#dc-suspects tbody td.text", "els => els.map(e => e.textContent)")
    for payload in flagged_payloads:
        assert payload in cells
    for k in range(len(xss)):  # every payload, flagged or not, through the detail panel too
        page.evaluate(f"window.dcReport.select(window.dcReport.index('{7 * k}'))")
        assert page.text_content("#dc-detail-body .dc-text") == xss[k]
    page.fill("#dc-search", "")
    for selector in ("img", "svg[onload]", "i", "b"):
        found = page.evaluate(f"document.querySelectorAll('#dc-suspects-section {selector}, "
                              f"#dc-detail {selector}, #dc-tooltip {selector}').length")
        assert found == 0, selector
    assert page.evaluate("window.__xss") is None
    assert watch.dialogs == [] and watch.errors == [] and watch.foreign() == []
