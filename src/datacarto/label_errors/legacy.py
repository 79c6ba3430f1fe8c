"""Which labels datacarto 0.1 called wrong (``method="confident_learning"``, deprecated):
``1 - confidence`` over every epoch, flagged by confident learning's per-class thresholds on the
epoch-averaged probabilities; kept as a baseline for ``benchmarks/detection.py``."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..dynamics import TrainingDynamics
from .flagging import Info
from .noise_model import epoch_averaged_probs
from .window import WindowChoice, all_epochs

METHOD = "confident_learning"
DEPRECATION = ("method='confident_learning' is deprecated and will be removed; it remains as a "
               "baseline in benchmarks/detection.py")


def warn_deprecated(stacklevel: int = 3) -> None:
    """The method's DeprecationWarning (once per detector call: :func:`prepare` sends it)."""
    warnings.warn(DEPRECATION, DeprecationWarning, stacklevel=stacklevel)


def vote_counts(labels_2d: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, E) class indices -> (N, K) counts."""
    n = labels_2d.shape[0]
    counts = np.zeros((n, n_classes), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), labels_2d.shape[1]), labels_2d.reshape(-1)), 1)
    return counts


def chunk_votes(dynamics: TrainingDynamics, n_classes: int) -> dict[str, np.ndarray]:
    """Without logits, per example of a row range: ``suggested_label`` (n,), the most frequent
    runner-up, and ``vote_majority`` (n,) bool, that class is the argmax in more than half the
    epochs."""
    suggested = vote_counts(dynamics.runner_up, n_classes).argmax(axis=1)
    pred_votes = vote_counts(dynamics.pred, n_classes)
    return {"suggested_label": suggested.astype(np.int64),
            "vote_majority": (pred_votes[np.arange(dynamics.n_examples), suggested] * 2
                              > dynamics.n_epochs)}


def finish(stats: dict[str, np.ndarray], labels: np.ndarray, confidence: np.ndarray, *,
           n_classes: int, window: WindowChoice) -> dict[str, Any]:
    """Score ``1 - confidence``, suggestion and flag of every example, as datacarto 0.1 made them.

    With the epoch-averaged probabilities ``P`` (``stats["probs"]``): per-class thresholds
    ``t_k = mean_{i: y_i = k} P_ik``; flagged when the most probable above-threshold class is
    not the given label, which it then suggests (else the most probable other class). Without
    them (``stats`` from :func:`chunk_votes`): flagged when another class wins the majority
    vote and ``confidence < 0.5``.
    """
    k = n_classes
    unavailable: list[str] = []
    if "probs" in stats:
        avg = stats["probs"]
        rows = np.arange(len(labels))
        masked = avg.copy()
        masked[rows, labels] = -np.inf
        suggested = masked.argmax(axis=1)
        thresholds = np.array([avg[labels == c, c].mean() if (labels == c).any() else 1.0
                               for c in range(k)])
        above = avg >= thresholds[None, :]
        best_above = np.where(above, avg, -np.inf).argmax(axis=1)
        flagged = above.any(axis=1) & (best_above != labels)
        suggested = np.where(flagged, best_above, suggested)
    else:
        suggested = stats["suggested_label"]
        flagged = stats["vote_majority"] & (confidence < 0.5)
        unavailable = ["logits", "entropy"]
    info = Info(window, int(flagged.sum()), "confident learning per-class thresholds on "
                "epoch-averaged probabilities", unavailable)
    return {"label_error_score": 1.0 - confidence, "suggested_label": suggested.astype(np.int64),
            "is_label_error": flagged, "info": info.as_dict()}


def detect(dynamics: TrainingDynamics, *, confidence: np.ndarray | None = None) -> dict[str, Any]:
    """datacarto 0.1's detector over a whole run, without the deprecation warning (a baseline).

    Equals ``detect_label_errors(dynamics, method="confident_learning")``.
    """
    window = all_epochs(np.asarray(dynamics.epochs, dtype=np.int64))
    stats = ({"probs": epoch_averaged_probs(dynamics.logits)} if dynamics.logits is not None
             else chunk_votes(dynamics, dynamics.n_classes))
    conf = dynamics.gold_prob.astype(np.float64).mean(axis=1) if confidence is None else confidence
    return finish(stats, dynamics.labels, conf, n_classes=dynamics.n_classes, window=window)
