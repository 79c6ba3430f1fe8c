"""Statistics of the class proposals (docs/classes.md), numpy in, numbers out."""

from __future__ import annotations

import numpy as np

from .score import normalized_entropy

__all__ = ["agreement", "binary_entropy", "confusion", "indistinguishability", "label_follows",
           "middle_bump", "split_share"]


def binary_entropy(r: np.ndarray) -> np.ndarray:
    """``h2(r) = -r log2 r - (1 - r) log2 (1 - r)`` (0 at r = 0 or 1)."""
    return normalized_entropy(np.stack([r, 1.0 - r], axis=1))


def split_share(probs: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``P_b / (P_a + P_b)`` per row (0 where both are 0)."""
    rows = np.arange(len(probs))
    pa, pb = probs[rows, a], probs[rows, b]
    return np.divide(pb, pa + pb, out=np.zeros(len(rows)), where=(pa + pb) > 0)


def middle_bump(split: np.ndarray) -> float:
    """``(m + 1) / (f + 1)``: ``m`` rows split nearly evenly (``P_b / (P_a + P_b)`` in
    [0.3, 0.5]), ``f`` rows split 0.1-0.3 (a band of the same width)."""
    middle = int((split >= 0.3).sum())
    flank = int(((split >= 0.1) & (split < 0.3)).sum())
    return (middle + 1) / (flank + 1)


def label_follows(heldout: np.ndarray, labels: np.ndarray, members: np.ndarray, x: int,
                  y: int) -> float:
    """How well the held-out lean ``H_y / (H_x + H_y)`` ranks the members labelled ``y`` above
    those labelled ``x``: the AUC (ties count half); NaN with fewer than 2 of either."""
    rows = members[np.isin(labels[members], (x, y))]
    is_y = labels[rows] == y
    n_y, n_x = int(is_y.sum()), int((~is_y).sum())
    if n_y < 2 or n_x < 2:
        return float("nan")
    h = heldout[rows]
    lean = np.divide(h[:, y], h[:, x] + h[:, y], out=np.full(len(rows), 0.5),
                     where=(h[:, x] + h[:, y]) > 0)
    values, inverse, counts = np.unique(lean, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based, ties share their mean
    ranks = average_rank[inverse]
    return float((ranks[is_y].sum() - n_y * (n_y + 1) / 2.0) / (n_y * n_x))


def agreement(labels: np.ndarray, predicted: np.ndarray, k: int) -> float:
    """Cohen's kappa ``(p_o - p_e) / (1 - p_e)`` of the labels and the predicted classes:
    ``p_o`` the share that agree, ``p_e = sum_c share(label = c) share(predicted = c)``."""
    p_o = float((labels == predicted).mean())
    p_e = float((np.bincount(labels, minlength=k) * np.bincount(predicted, minlength=k)).sum()
                / len(labels) ** 2)
    return 0.0 if p_e >= 1.0 else (p_o - p_e) / (1.0 - p_e)


def confusion(probs: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """``C[a, b]``: mean probability of class ``b`` over the rows labelled ``a`` (K, K)."""
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.zeros((k, k))
    np.add.at(sums, labels, probs)
    return sums / np.maximum(counts, 1.0)[:, None]


def indistinguishability(probs: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(K, K) symmetric ``min(r_ab / e_ab, r_ba / e_ba)`` (module docstring), clipped to [0, 1]."""
    c = confusion(probs, labels, k)
    n = np.bincount(labels, minlength=k).astype(np.float64)
    diag = np.diag(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = c / (diag[:, None] + c)                      # r[a, b]
        e = n[None, :] / (n[:, None] + n[None, :])       # e[a, b]
        d = np.nan_to_num(r / e)
    d = np.minimum(d, d.T)
    np.fill_diagonal(d, 0.0)
    return np.clip(d, 0.0, 1.0)
