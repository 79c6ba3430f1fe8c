"""Notebook use: the report page and the data map display inline from the Python API."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from datacarto import plot_data_map
from datacarto.run import load

from builders import CLASSES, make_run

pytest.importorskip("plotly", reason="the report extra is not installed")


def test_report_page_shows_itself_in_an_iframe(tmp_path: Path) -> None:
    from datacarto.report import ReportPage, build_report

    metrics = load(make_run(tmp_path / "run")).metrics()
    page = build_report(metrics, classes=CLASSES, title="<b>t</b>")
    assert isinstance(page, ReportPage) and isinstance(page, str)
    shown = page._repr_html_()
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" style="[^"]*"></iframe>', shown, flags=re.S)
    assert match is not None
    assert html.unescape(match.group(1)) == page  # the whole page, escaped once


def test_plot_data_map_returns_a_figure_a_notebook_shows(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    metrics = load(make_run(tmp_path / "run")).metrics()
    fig = plot_data_map(metrics["confidence"], metrics["variability"], metrics["correctness"])
    assert isinstance(fig, Figure) and fig.axes
    plt.close(fig)
