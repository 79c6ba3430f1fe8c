"""The interactive HTML report (``datacarto report``): see :mod:`datacarto.report.html`.

plotly is imported only when a report is built, so importing this package stays cheap.
"""

from __future__ import annotations

from .html import build_report, write_report
from .page import ReportPage
from .source import DataSource, load_source, resolve_source

__all__ = ["DataSource", "ReportPage", "build_report", "load_source", "resolve_source", "write_report"]
