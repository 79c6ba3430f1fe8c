"""How stable the label-error findings are across training runs (seeds) of the same data."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_fraction
from ..errors import InputError


def seed_stability(scores: list[Any]) -> dict[str, Any]:
    """Spearman rank correlation of label-error scores between runs (seeds) of the same data.

    Returns ``{"mean": mean pairwise correlation, "matrix": (R, R) array}``.

    Examples
    --------
    >>> seed_stability([[0.1, 0.5, 0.9], [0.2, 0.4, 0.8], [0.9, 0.5, 0.1]])["mean"]
    -0.3333333333333333
    """
    from ..evaluation import rank_correlation

    if len(scores) < 2:
        raise InputError(f"seed_stability needs the scores of at least 2 runs; got {len(scores)}.")
    r = len(scores)
    mat = np.eye(r)
    for a in range(r):
        for b in range(a + 1, r):
            mat[a, b] = mat[b, a] = rank_correlation(scores[a], scores[b])
    return {"mean": float(mat[np.triu_indices(r, 1)].mean()), "matrix": mat}


def stable_flags(flags: list[Any], *, min_fraction: float = 1.0) -> np.ndarray:
    """Flag only what is stable: examples flagged in at least ``min_fraction`` of the runs.

    Examples
    --------
    >>> stable_flags([[True, True, False], [True, False, False]]).tolist()
    [True, False, False]
    >>> stable_flags([[True, True, False], [True, False, False]], min_fraction=0.5).tolist()
    [True, True, False]
    """
    if not flags:
        raise InputError("stable_flags needs the flags of at least 1 run; got none.")
    frac = check_fraction(min_fraction, name="min_fraction", where="stable_flags")
    stack = np.stack([np.asarray(f, dtype=bool) for f in flags])
    return stack.sum(axis=0) >= np.ceil(frac * len(flags) - 1e-9)
