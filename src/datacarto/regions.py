"""Data-map regions: easy-to-learn, ambiguous, hard-to-learn (docs/contract.md §4).

Inputs are (N,) confidence and variability arrays; the result is an (N,) array of region names.

Methods
-------
``"corners"`` (default)
    Each example goes to the nearest of three anchors in the map, after scaling variability
    by ``scale = max(q99(variability), min_scale)`` so the map's own spread sets the axis:
    easy = (0, 1), hard = (0, 0), ambiguous = (1, 0.5) in (variability / scale, confidence).
    Most examples of a trained model sit near (0, 1), so most are easy; hard = low confidence
    and low variability; ambiguous = high variability. ``min_scale`` (0.3, about the
    variability of a row that a run learns halfway through) keeps a map whose variability is
    all small mostly easy instead of splitting it by noise.

    Then the paper's order is enforced (:func:`keep_paper_order`): in a short or
    under-trained run variability measures how *fast* a row is being learned, so the
    best-learned rows can have the highest variability and land nearest the ambiguous
    anchor. Ambiguous rows more confident than the easy region's mean move to easy, rows less
    confident than the hard region's mean move to hard, and rows whose variability is not
    above the easy or hard region's mean move to the nearer of the two, until mean
    confidence is easy > ambiguous > hard and mean variability of ambiguous is above both.
``"quantile"``
    The paper's selection view: ambiguous = top ``ambiguous_fraction`` (0.33) by variability;
    of the rest, hard = bottom ``hard_fraction`` (0.33) of all examples by confidence; the rest easy.
``"threshold"``
    Fixed cut-offs: ambiguous if variability >= ``variability_threshold`` (0.2); else hard if
    confidence < ``confidence_threshold`` (0.5); else easy.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ._validation import check_float_array, check_option

REGIONS = ("easy", "ambiguous", "hard")
REGION_METHODS = ("corners", "quantile", "threshold")
_EASY, _AMBIGUOUS, _HARD = (REGIONS.index(r) for r in ("easy", "ambiguous", "hard"))
#: The sort that ranks examples "most easy / ambiguous / hard first" (paper and allenai):
#: (metric, ascending).
REGION_ORDER = {"easy": ("confidence", False), "ambiguous": ("variability", False),
                "hard": ("confidence", True)}


def assign_regions(confidence: np.ndarray, variability: np.ndarray, *,
                   method: Literal["corners", "quantile", "threshold"] = "corners",
                   min_scale: float = 0.3, ambiguous_fraction: float = 0.33,
                   hard_fraction: float = 0.33, variability_threshold: float = 0.2,
                   confidence_threshold: float = 0.5) -> np.ndarray:
    """Region name for every example (see the module docstring for the methods and defaults).

    Examples
    --------
    >>> assign_regions(np.array([0.95, 0.1, 0.5]), np.array([0.02, 0.03, 0.3])).tolist()
    ['easy', 'hard', 'ambiguous']
    """
    codes = region_codes(confidence, variability, method=method, min_scale=min_scale,
                         ambiguous_fraction=ambiguous_fraction, hard_fraction=hard_fraction,
                         variability_threshold=variability_threshold,
                         confidence_threshold=confidence_threshold)
    return np.array(REGIONS, dtype=object)[codes]


def region_codes(confidence: np.ndarray, variability: np.ndarray, *,
                 method: Literal["corners", "quantile", "threshold"] = "corners",
                 min_scale: float = 0.3, ambiguous_fraction: float = 0.33,
                 hard_fraction: float = 0.33, variability_threshold: float = 0.2,
                 confidence_threshold: float = 0.5) -> np.ndarray:
    """:func:`assign_regions` as (N,) int8 indices into :data:`REGIONS` (no N Python strings)."""
    check_option(method, REGION_METHODS, name="method", where="assign_regions")
    conf = check_float_array(confidence, name="confidence", ndim=1, low=0.0, high=1.0)
    var = check_float_array(variability, name="variability", ndim=1, low=0.0)
    if method == "corners":
        scale = max(float(np.quantile(var, 0.99)), min_scale)
        x = var / scale
        dist = np.stack([x**2 + (1 - conf) ** 2,          # easy
                         (x - 1) ** 2 + (conf - 0.5) ** 2,  # ambiguous
                         x**2 + conf**2])                   # hard
        return _keep_paper_order(conf, var, dist.argmin(axis=0).astype(np.int8))
    n = len(conf)
    out = np.full(n, _EASY, dtype=np.int8)
    if method == "quantile":
        n_amb = int(np.floor(ambiguous_fraction * n))
        order_var = np.lexsort((np.arange(n), -var))
        n_hard = int(np.floor(hard_fraction * n))
        order_conf = np.lexsort((np.arange(n), conf))
        out[order_conf[:n_hard]] = _HARD
        out[order_var[:n_amb]] = _AMBIGUOUS
        return out
    out[conf < confidence_threshold] = _HARD
    out[var >= variability_threshold] = _AMBIGUOUS
    return out


def paper_order_holds(confidence: np.ndarray, variability: np.ndarray,
                      region: np.ndarray) -> bool:
    """Mean confidence easy > ambiguous > hard and mean variability of ambiguous above both
    others, over the regions that are not empty.

    Examples
    --------
    >>> paper_order_holds(np.array([0.9, 0.5, 0.1]), np.array([0.0, 0.3, 0.0]),
    ...                   np.array(["easy", "ambiguous", "hard"], dtype=object))
    True
    """
    conf = {r: confidence[region == r].mean() for r in REGIONS if (region == r).any()}
    var = {r: variability[region == r].mean() for r in REGIONS if (region == r).any()}
    chain = [r for r in ("easy", "ambiguous", "hard") if r in conf]
    ordered = all(conf[a] > conf[b] for a, b in zip(chain, chain[1:]))
    spread = "ambiguous" not in var or all(var["ambiguous"] > var[r] for r in var if r != "ambiguous")
    return bool(ordered and spread)


def keep_paper_order(confidence: np.ndarray, variability: np.ndarray,
                     region: np.ndarray) -> np.ndarray:
    """Move ambiguous rows that break the paper's order to easy or hard.

    Per round, an ambiguous row moves when its confidence is at least the easy region's mean
    (to easy), at most the hard region's mean (to hard), or its variability is at most the
    easy or the hard region's mean variability (to easy if its confidence is nearer the easy
    mean, else hard). Rows only ever leave the ambiguous region, so the rounds end; when they
    do, every ambiguous row lies strictly between the easy and hard means in confidence and
    above both in variability, so the region means are in the paper's order.

    Examples
    --------
    >>> conf = np.array([0.95, 0.9, 0.97, 0.5, 0.1])
    >>> var = np.array([0.01, 0.02, 0.30, 0.25, 0.02])
    >>> r = np.array(["easy", "easy", "ambiguous", "ambiguous", "hard"], dtype=object)
    >>> keep_paper_order(conf, var, r).tolist()
    ['easy', 'easy', 'easy', 'ambiguous', 'hard']
    """
    names = np.array(REGIONS, dtype=object)
    codes = np.full(len(region), _EASY, dtype=np.int8)
    for code, name in enumerate(REGIONS):
        codes[np.asarray(region, dtype=object) == name] = code
    return names[_keep_paper_order(confidence, variability, codes)]


def _keep_paper_order(confidence: np.ndarray, variability: np.ndarray,
                      region: np.ndarray) -> np.ndarray:
    """:func:`keep_paper_order` on int8 region codes (indices into :data:`REGIONS`)."""
    region = region.copy()
    while True:
        amb, easy, hard = (region == r for r in (_AMBIGUOUS, _EASY, _HARD))
        if not amb.any():
            return region
        c_easy = confidence[easy].mean() if easy.any() else np.inf
        c_hard = confidence[hard].mean() if hard.any() else -np.inf
        v_max = max(variability[easy].mean() if easy.any() else -np.inf,
                    variability[hard].mean() if hard.any() else -np.inf)
        up = amb & (confidence >= c_easy)
        down = amb & ~up & (confidence <= c_hard)
        flat = amb & ~up & ~down & (variability <= v_max)
        if not (up.any() or down.any() or flat.any()):
            return region
        region[up] = _EASY
        region[down] = _HARD
        if flat.any():
            # nearer the easy mean in confidence -> easy (with one region empty: that side)
            to_easy = (np.abs(confidence - c_easy) <= np.abs(confidence - c_hard)
                       if np.isfinite(c_easy) and np.isfinite(c_hard)
                       else np.full(len(region), np.isfinite(c_easy)))
            region[flat & to_easy] = _EASY
            region[flat & ~to_easy] = _HARD
