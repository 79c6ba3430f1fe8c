"""The report page as a string that Jupyter displays inline (:class:`ReportPage`)."""

from __future__ import annotations

import html

__all__ = ["ReportPage"]

#: Height of the inline frame in a notebook (the page scrolls inside it).
NOTEBOOK_HEIGHT_PX = 820


class ReportPage(str):
    """The report's HTML page (a ``str``: write it, compare it, slice it as before) that a
    notebook shows inline. The page carries its own CSS and scripts, so it is shown in an
    ``<iframe srcdoc=...>``, isolated from the notebook's styles.

    >>> page = ReportPage("<html><body>hi</body></html>")
    >>> page._repr_html_().startswith('<iframe srcdoc="&lt;html&gt;')
    True
    """

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(str(self), quote=True)}" '
                f'style="width: 100%; height: {NOTEBOOK_HEIGHT_PX}px; border: 0"></iframe>')
