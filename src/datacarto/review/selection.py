"""Selections for bulk actions: which rows a filter, a score threshold or a lasso covers.

Pure numpy in, boolean mask out; the session (:mod:`datacarto.review.session`) turns a
page's request into these calls and the rows into decisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["filter_mask", "in_polygon"]


def in_polygon(x: np.ndarray, y: np.ndarray, polygon: Sequence[Sequence[float]]) -> np.ndarray:
    """Points (x_i, y_i) inside the closed polygon (even-odd rule, ray cast to +x).

    A point is inside when a ray from it towards +x crosses an odd number of edges; an edge
    (a, b) is crossed when ``(a_y > y) != (b_y > y)`` and ``x < a_x + (y - a_y)(b_x - a_x)/(b_y - a_y)``.

    >>> in_polygon(np.array([0.5, 2.0]), np.array([0.5, 0.5]), [(0, 0), (1, 0), (1, 1), (0, 1)]).tolist()
    [True, False]
    """
    px, py = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    inside = np.zeros(px.shape, dtype=bool)
    pts = np.asarray(polygon, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < 3 or pts.shape[1] != 2:
        return inside
    ax, ay = pts[:, 0], pts[:, 1]
    bx, by = np.roll(ax, -1), np.roll(ay, -1)
    for x0, y0, x1, y1 in zip(ax, ay, bx, by):
        if y0 == y1:
            continue  # a horizontal edge is never crossed by a horizontal ray
        crosses = (y0 > py) != (y1 > py)
        at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (px < at)
    return inside


def filter_mask(n: int, *, labels: Sequence[str | None] | None = None, label: str | None = None,
                regions: Sequence[str] | None = None, region: str | None = None,
                assessments: Sequence[str] | None = None, assessment: str | None = None,
                score: np.ndarray | None = None, score_min: float | None = None,
                score_max: float | None = None) -> np.ndarray:
    """Rows matching every given condition: current label, region, assessment, and
    ``score_min <= score <= score_max`` (either bound may be left out).

    >>> filter_mask(3, labels=["a", "b", "a"], label="a", score=np.array([.1, .9, .8]), score_min=.5).tolist()
    [False, False, True]
    """
    mask = np.ones(n, dtype=bool)
    for values, wanted in ((labels, label), (regions, region), (assessments, assessment)):
        if wanted is not None and values is not None:
            mask &= np.array([v == wanted for v in values], dtype=bool)
    if score is not None:
        s = np.asarray(score, dtype=np.float64)
        if score_min is not None:
            mask &= s >= score_min
        if score_max is not None:
            mask &= s <= score_max
    return mask
