"""Which rows are flagged: the calibrated flag (confident learning's count of wrong labels, or a
score threshold), the fit check that can veto it, and the lines that explain both."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .window import WindowChoice

#: The values of the metrics frame's ``assessment`` column (docs/contract.md §2): flagged rows
#: are ``"likely mislabeled"``, the others keep their data-map region.
ASSESSMENTS = ("likely mislabeled", "ambiguous", "hard", "easy")
#: The model "fits" when its balanced accuracy beats chance (1 / classes, what predicting
#: any single class scores) by more than FIT_MARGIN and by FIT_Z standard errors.
FIT_MARGIN = 0.02
FIT_Z = 3.0


# ---------------------------------------------------------------------------------- flag
def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of the n highest scores; ties go to the earlier row (ascending id)."""
    flagged = np.zeros(len(scores), dtype=bool)
    valid = ~np.isnan(scores)
    if n >= int(valid.sum()):  # every score, then NaN rows in row order (as a sort puts them)
        flagged[valid] = True
        flagged[np.flatnonzero(~valid)[:n - int(valid.sum())]] = True
        return flagged
    if n > 0:
        # O(N): the n-th highest score, every score above it, the earliest rows equal to it
        cut = -np.partition(-scores[valid], n - 1)[n - 1]
        above = scores > cut
        flagged[above] = True
        flagged[np.flatnonzero(scores == cut)[:n - int(above.sum())]] = True
    return flagged


def check_threshold(threshold: Any) -> float | None:
    """The ``threshold`` option as a float in (0, 1), or None (flag by the estimated count)."""
    if threshold is None:
        return None
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if not (0.0 < value < 1.0):
        raise InputError(f"The 'threshold' parameter of detect_label_errors must be a float in "
                         f"(0, 1) (flag examples whose label_error_score, the noise-model posterior that the "
                         f"label is wrong, reaches it) or None for the confident-learning count. "
                         f"Got {threshold!r} instead.")
    return value


def flag(score: np.ndarray, n_errors: int, threshold: float | None, fit: FitCheck,
         source: str) -> tuple[np.ndarray, str]:
    """The calibrated flag (N,) bool and the line that says how it was made.

    The ``n_errors`` highest scores (``n_hat`` = the off-diagonal mass of the calibrated
    confident joint, CL's estimate of the number of wrong labels; ties to the earlier row), or
    ``score >= threshold`` when a threshold is given; nothing when the fit check failed.
    ``source`` names the probabilities the count was estimated on.
    """
    if threshold is None:
        flagged = top_n(score, n_errors)
        calibration = (f"confident learning: the {n_errors} highest scores, the number of "
                       f"wrong labels the calibrated confident joint estimates on {source}")
    else:
        flagged = score >= threshold
        calibration = f"label_error_score >= {threshold:g} (user threshold)"
    if not fit.ok:
        flagged = np.zeros(len(score), dtype=bool)
        calibration = "nothing flagged: the fit check failed (scores are still computed)"
    return flagged, calibration


# ------------------------------------------------------------------------------ fit check
@dataclass(frozen=True)
class FitCheck:
    """Whether the model learned enough from the features to tell wrong labels from hard rows.

    ``source`` is ``"held-out"`` (cross-fitted predictions: the real test) or ``"training"``
    (the run's own predictions over the window; weaker, a memorising model passes it).
    """

    ok: bool
    source: str
    accuracy: float
    balanced_accuracy: float
    majority: float
    chance: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"ok": bool(self.ok), "source": self.source, "accuracy": round(self.accuracy, 6),
                "balanced_accuracy": round(self.balanced_accuracy, 6),
                "majority": round(self.majority, 6), "chance": round(self.chance, 6),
                "message": self.message}


def check_fit(probs: np.ndarray, labels: np.ndarray, n_classes: int, *,
              source: str = "held-out") -> FitCheck:
    """Is the balanced accuracy of ``argmax probs`` clearly above chance?

    Balanced accuracy ``b = mean_k P(pred = k | y = k)`` over the C classes present; chance
    (any constant prediction, including the majority class) is ``1/C``. Under no signal each
    recall has standard error about ``sqrt((1/C)(1 - 1/C) / n_k)``, so
    ``se = sqrt(sum_k (1/C)(1 - 1/C) / n_k) / C``. The model fits when
    ``b - 1/C > max(FIT_MARGIN, FIT_Z * se)``.

    Examples
    --------
    >>> y = np.array([0] * 60 + [1] * 40)
    >>> check_fit(np.eye(2)[y], y, 2).ok                  # perfect predictions
    True
    >>> check_fit(np.tile([0.6, 0.4], (100, 1)), y, 2).ok  # always the majority class
    False
    """
    pred = probs.argmax(axis=1)
    counts = np.bincount(labels, minlength=n_classes)
    present = counts > 0
    c = int(present.sum())
    hits = np.bincount(labels[pred == labels], minlength=n_classes)
    bal = float((hits[present] / counts[present]).mean())
    acc = float((pred == labels).mean())
    majority = float(counts.max() / counts.sum())
    chance = 1.0 / c
    se = float(np.sqrt((chance * (1 - chance) / counts[present]).sum()) / c)
    ok = bal - chance > max(FIT_MARGIN, FIT_Z * se)
    figures = (f"{source} balanced accuracy {bal:.3f} vs {chance:.3f} for always predicting one "
               f"class; accuracy {acc:.3f} vs majority share {majority:.3f}")
    if ok:
        message = f"fit check passed: {figures}"
    elif bal - chance > FIT_MARGIN:
        smallest = int(counts[present].min())
        message = (f"fit check failed: the model does better than chance ({figures}), but with so "
                   f"few rows (smallest class: {smallest}) that is within 3 standard errors "
                   f"({FIT_Z * se:.3f}) of chance, so nothing is flagged. More labelled rows per "
                   "class would tell")
    else:
        message = (f"fit check failed: the model predicts the given labels no better than chance "
                   f"({figures}), so nothing is flagged. The labels may carry no signal that these "
                   "features show, or the model is too weak: try other features, --model mlp "
                   "(tabular) or more --epochs")
    return FitCheck(bool(ok), source, acc, bal, majority, chance, message)


# ---------------------------------------------------------------------------- explanation
@dataclass
class Info:
    """How the flags were made: the detector's ``info`` (window, count, calibration, fit)."""

    window: WindowChoice
    n_estimated_errors: int
    calibration: str
    unavailable: list[str] = field(default_factory=list)
    fit: FitCheck | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain Python types only (JSON-serialisable: it goes into ``DataFrame.attrs``)."""
        w = self.window
        return {"fit": None if self.fit is None else self.fit.as_dict(),
                "window": w.spec, "memorisation": bool(w.memorisation),
                "memorisation_epoch": int(w.last) if w.memorisation else None,
                "window_source": str(w.source), "message": str(w.message),
                "n_estimated_errors": int(self.n_estimated_errors),
                "calibration": str(self.calibration),
                "unavailable": [str(u) for u in self.unavailable]}


def notes(info: dict[str, Any]) -> list[str]:
    """One line each: the fit check, the epoch window / memorisation message, the flag
    calibration, and any component the run could not provide (from a detector ``info``).

    Examples
    --------
    >>> notes({"message": "the score uses every recorded epoch", "calibration": "top 3"})
    ['label errors: the score uses every recorded epoch', 'flag calibration: top 3']
    """
    lines = []
    fit = info.get("fit")
    if isinstance(fit, dict) and fit.get("message"):
        lines.append(str(fit["message"]))
    if info.get("message"):
        lines.append(f"label errors: {info['message']}")
    if info.get("calibration"):
        lines.append(f"flag calibration: {info['calibration']}")
    if info.get("unavailable"):
        missing = info["unavailable"]
        missing = ", ".join(missing) if isinstance(missing, (list, tuple)) else str(missing)
        lines.append(f"unavailable from this run: {missing}")
    return lines
