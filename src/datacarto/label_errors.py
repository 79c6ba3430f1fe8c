"""Label-error score, suggested label and calibrated flag (VISION.md §2, §4).

Inputs come from a :class:`~datacarto.dynamics.TrainingDynamics` (N examples, E epochs,
K classes); results are (N,) in the same order.

Default method (``"confident_learning"``), from one training run:

* ``avg_probs[i] = mean_e softmax(z_ie)``: the epoch-averaged predicted distribution.
* ``suggested_label = argmax_{k != y_i} avg_probs[i, k]``: the class the model prefers most,
  across all epochs, after the gold one. Without stored logits: the most frequent runner-up.
* ``label_error_score = 1 - confidence``, i.e. ``1 - mean_e p_ie``. One run of training
  dynamics ranks injected flips about as well as cleanlab's cross-validated scores.
* ``is_label_error``: confident learning (Northcutt et al. 2021) on ``avg_probs``: class k's
  threshold ``t_k`` is the mean ``avg_probs[:, k]`` over examples labelled k; an example is
  flagged when some other class reaches its own threshold and, among the classes above
  threshold, the most probable is not the gold one. Without logits: flagged when the
  suggested class wins a majority of epochs' argmax and confidence < 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .dynamics import TrainingDynamics

LABEL_ERROR_METHODS = ("confident_learning",)


def epoch_averaged_probs(logits: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """``mean_e softmax(z_ie)`` for logits (N, E, K) -> (N, K) float64, in bounded memory."""
    out = np.empty((logits.shape[0], logits.shape[2]))
    for start in range(0, logits.shape[0], chunk):
        z = logits[start:start + chunk].astype(np.float64)
        z = np.exp(z - z.max(axis=2, keepdims=True))
        out[start:start + chunk] = (z / z.sum(axis=2, keepdims=True)).mean(axis=1)
    return out


def _vote_counts(labels_2d: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, E) class indices -> (N, K) counts."""
    n = labels_2d.shape[0]
    counts = np.zeros((n, n_classes), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), labels_2d.shape[1]), labels_2d.reshape(-1)), 1)
    return counts


def detect_label_errors(dynamics: TrainingDynamics, *, confidence: np.ndarray | None = None,
                        variability: np.ndarray | None = None,
                        method: str = "confident_learning") -> dict[str, Any]:
    """Score, suggested label and flag for every example (see the module docstring)."""
    from ._validation import check_option

    check_option(method, LABEL_ERROR_METHODS, name="method", where="detect_label_errors")
    labels = dynamics.labels
    n, k = dynamics.n_examples, dynamics.n_classes
    conf = dynamics.gold_prob.astype(np.float64).mean(axis=1) if confidence is None else confidence
    rows = np.arange(n)
    if dynamics.logits is not None:
        avg = epoch_averaged_probs(dynamics.logits)
        masked = avg.copy()
        masked[rows, labels] = -np.inf
        suggested = masked.argmax(axis=1)
        thresholds = np.array([avg[labels == c, c].mean() if (labels == c).any() else 1.0
                               for c in range(k)])
        above = avg >= thresholds[None, :]
        best_above = np.where(above, avg, -np.inf).argmax(axis=1)
        flagged = above.any(axis=1) & (best_above != labels)
        # the suggestion for a flagged example is the class that crossed its threshold
        suggested = np.where(flagged, best_above, suggested)
    else:
        votes = _vote_counts(dynamics.runner_up, k)
        suggested = votes.argmax(axis=1)
        pred_votes = _vote_counts(dynamics.pred, k)
        flagged = (pred_votes[rows, suggested] * 2 > dynamics.n_epochs) & (conf < 0.5)
    return {"label_error_score": 1.0 - conf, "suggested_label": suggested.astype(np.int64),
            "is_label_error": flagged}
