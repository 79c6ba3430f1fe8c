"""Measures of label-error detection against known errors. numpy only.

Arrays are (N,): ``is_error_true`` (bool: the label is known to be wrong, e.g. an injected
flip), ``scores`` (float: higher = more likely wrong), ``flagged`` (bool: the detector's
flag). Ties in ``scores`` are handled exactly, never by the order of the rows: AUROC and
average precision treat tied scores as one threshold (as scikit-learn does), precision@k
takes the expected value over the tied examples at the cut.

Examples
--------
>>> truth = [True, False, True, False, False]
>>> scores = [0.9, 0.8, 0.7, 0.1, 0.2]
>>> float(auroc(truth, scores))
0.8333333333333334
>>> round(float(average_precision(truth, scores)), 4)
0.8333
>>> float(precision_at_k(truth, scores))
0.5
>>> flag_scores(truth, [True, False, False, False, False])
{'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'n_flagged': 1}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_float_array, check_labels, to_numpy
from .errors import InputError

__all__ = ["auroc", "average_precision", "detection_report", "flag_scores", "precision_at_k",
           "rank_correlation", "suggested_label_accuracy"]


def _truth(x: Any, name: str = "is_error_true", where: str = "evaluation") -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{where}: {name} must be a non-empty 1-D boolean array; got shape "
                         f"{arr.shape}.")
    if arr.dtype != bool:
        if arr.dtype.kind not in "iufb" or not np.isin(arr, (0, 1)).all():
            raise InputError(f"{where}: {name} must hold booleans (or 0/1).")
        arr = arr.astype(bool)
    return arr


def _pair(truth: Any, scores: Any, where: str, *, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    t = _truth(truth, where=where)
    s = check_float_array(scores, name="scores", ndim=1, where=where)
    if len(s) != len(t):
        raise InputError(f"{where}: is_error_true has {len(t)} entries but scores has {len(s)}; "
                         "they must match.")
    if need_both and (t.all() or not t.any()):
        raise InputError(f"{where}: is_error_true must contain both errors and non-errors; got "
                         f"{int(t.sum())} errors among {len(t)} examples.")
    return t, s


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` with ties given their average rank."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(xs)]
    avg = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def auroc(is_error_true: Any, scores: Any) -> float:
    """Area under the ROC curve: P(score of an error > score of a non-error), ties count 1/2.

    Computed from the Mann-Whitney U statistic on average ranks:
    ``(R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``. 0.5 is chance, 1.0 is perfect.
    """
    t, s = _pair(is_error_true, scores, "auroc")
    n_pos = int(t.sum())
    n_neg = len(t) - n_pos
    r_pos = _average_ranks(s)[t].sum()
    return float((r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(is_error_true: Any, scores: Any) -> float:
    """Average precision: ``sum_n (R_n - R_{n-1}) P_n`` over descending distinct score thresholds.

    The same definition as scikit-learn's ``average_precision_score`` (no interpolation; tied
    scores form one threshold). Chance level is the error rate.
    """
    t, s = _pair(is_error_true, scores, "average_precision")
    order = np.argsort(-s, kind="stable")
    ss, ts = s[order], t[order]
    last_of_group = np.r_[ss[1:] != ss[:-1], True]
    tp = np.cumsum(ts)[last_of_group]
    seen = np.flatnonzero(last_of_group) + 1
    precision = tp / seen
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision_at_k(is_error_true: Any, scores: Any, k: int | None = None) -> float:
    """Share of errors among the k highest scores (default k = number of true errors).

    At k = number of errors this equals recall@k ("R-precision"). Examples tied with the k-th
    score count with their expected share, so row order never matters.
    """
    t, s = _pair(is_error_true, scores, "precision_at_k", need_both=False)
    if k is None:
        k = int(t.sum())
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not (1 <= k <= len(t)):
        raise InputError(f"The 'k' parameter of precision_at_k must be an int in [1, {len(t)}]. "
                         f"Got {k!r} instead." + (" (is_error_true has no errors: pass k.)"
                                                   if k == 0 else ""))
    cut = np.sort(s)[::-1][k - 1]
    above = s > cut
    tied = s == cut
    take = k - int(above.sum())
    hits = t[above].sum() + t[tied].sum() * take / tied.sum()
    return float(hits / k)


def flag_scores(is_error_true: Any, flagged: Any) -> dict[str, float]:
    """Precision, recall and F1 of boolean flags; 0.0 where undefined (no flags / no errors).

    Returns ``{"precision", "recall", "f1", "n_flagged"}``.
    """
    t = _truth(is_error_true, where="flag_scores")
    f = _truth(flagged, name="flagged", where="flag_scores")
    if len(f) != len(t):
        raise InputError(f"flag_scores: is_error_true has {len(t)} entries but flagged has "
                         f"{len(f)}; they must match.")
    tp = float((t & f).sum())
    precision = tp / f.sum() if f.any() else 0.0
    recall = tp / t.sum() if t.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "n_flagged": int(f.sum())}


def suggested_label_accuracy(original_labels: Any, suggested_labels: Any,
                             is_error_true: Any) -> float:
    """Share of the known errors whose suggested label is their original (true) label.

    Examples
    --------
    >>> suggested_label_accuracy([0, 1, 2], [1, 1, 2], [True, False, True])
    0.5
    """
    where = "suggested_label_accuracy"
    orig = check_labels(original_labels, n_classes=None, name="original_labels", where=where)
    sugg = check_labels(suggested_labels, n_classes=None, name="suggested_labels", where=where)
    t = _truth(is_error_true, where=where)
    if not (len(orig) == len(sugg) == len(t)):
        raise InputError(f"{where}: original_labels ({len(orig)}), suggested_labels ({len(sugg)}) "
                         f"and is_error_true ({len(t)}) must have the same length.")
    if not t.any():
        raise InputError(f"{where}: is_error_true has no errors; the accuracy of suggestions is "
                         "measured on known errors only.")
    return float((orig[t] == sugg[t]).mean())


def rank_correlation(a: Any, b: Any) -> float:
    """Spearman rank correlation of two score vectors (Pearson correlation of average ranks).

    Examples
    --------
    >>> rank_correlation([1.0, 2.0, 3.0], [10.0, 30.0, 20.0])
    0.5
    """
    x = check_float_array(a, name="a", ndim=1, where="rank_correlation")
    y = check_float_array(b, name="b", ndim=1, where="rank_correlation")
    if len(x) != len(y) or len(x) < 2:
        raise InputError(f"rank_correlation: a and b must have the same length >= 2; got "
                         f"{len(x)} and {len(y)}.")
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else 0.0


def detection_report(is_error_true: Any, scores: Any, flagged: Any = None, *,
                     original_labels: Any = None, suggested_labels: Any = None) -> dict[str, float]:
    """Every measure at once: auroc, ap, p_at_k, and when given flag_precision / flag_recall /
    flag_f1 / n_flagged and suggestion_accuracy."""
    out = {"auroc": auroc(is_error_true, scores), "ap": average_precision(is_error_true, scores),
           "p_at_k": precision_at_k(is_error_true, scores)}
    if flagged is not None:
        fs = flag_scores(is_error_true, flagged)
        out.update({"flag_precision": fs["precision"], "flag_recall": fs["recall"],
                    "flag_f1": fs["f1"], "n_flagged": fs["n_flagged"]})
    if original_labels is not None and suggested_labels is not None:
        out["suggestion_accuracy"] = suggested_label_accuracy(original_labels, suggested_labels,
                                                              is_error_true)
    return out
