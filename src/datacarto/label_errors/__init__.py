"""Which labels are wrong: label-error score, suggested label and calibrated flag from one
training run (docs/contract.md §2, §4; method and benchmark: docs/label-errors.md).

Default method, ``"noise_posterior"``, one module per question:

1. :mod:`~datacarto.label_errors.window` — which epochs to trust (before memorisation);
2. :mod:`~datacarto.label_errors.noise_model` — window-averaged probabilities
   ``P_i = mean_{e in window} softmax(z_ie)`` and how noisy each class is (the noise matrix
   ``T``); the score is the posterior that the label is wrong,
   ``1 - T[y_i, y_i] P_i[y_i] / sum_k T[y_i, k] P_i[k]``;
3. :mod:`~datacarto.label_errors.flagging` — which rows are flagged (confident learning's
   count of wrong labels, a threshold, the fit check);
4. :mod:`~datacarto.label_errors.detector` — the staged driver (:func:`prepare`,
   :func:`chunk_probs`, :func:`finish`) and :func:`detect_label_errors`;
5. :mod:`~datacarto.label_errors.stability` — agreement across training seeds.

:mod:`~datacarto.label_errors.legacy` holds the deprecated ``method="confident_learning"``.
"""

from __future__ import annotations

from .detector import (DEFAULT_METHOD, LABEL_ERROR_METHODS, OPTIONS, DetectionPlan, check_options,
                       chunk_probs, detect_label_errors, finish, prepare)
from .flagging import ASSESSMENTS, FIT_MARGIN, FIT_Z, FitCheck, check_fit, notes
from .noise_model import (MEMORISED_SHARE, PSEUDO_COUNT, NoiseModel, epoch_averaged_probs,
                          probs_from_stored)
from .stability import seed_stability, stable_flags
from .window import (FITS_EVERYTHING, GAP_GROWTH, HELDOUT_TOLERANCE, LATE_SHARE, MEMORISATION_GAP,
                     WindowChoice, choose_window)

__all__ = ["ASSESSMENTS", "DEFAULT_METHOD", "FITS_EVERYTHING", "FIT_MARGIN", "FIT_Z", "GAP_GROWTH",
           "HELDOUT_TOLERANCE", "LABEL_ERROR_METHODS", "LATE_SHARE", "MEMORISATION_GAP",
           "MEMORISED_SHARE", "OPTIONS", "PSEUDO_COUNT", "DetectionPlan", "FitCheck", "NoiseModel",
           "WindowChoice", "check_fit", "check_options", "choose_window", "chunk_probs",
           "detect_label_errors", "epoch_averaged_probs", "finish", "notes", "prepare",
           "probs_from_stored", "seed_stability", "stable_flags"]
