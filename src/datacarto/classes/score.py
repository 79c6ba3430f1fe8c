"""``missing_class_score``: how strongly an example belongs to no given class (docs/contract.md §2).

Two entropies, both divided by ``log K`` so that they lie in [0, 1]:

* ``H(P_i) / log K``, the entropy of the label-error detector's probabilities ``P_i`` (the
  window-averaged softmax, mixed with the held-out softmax of a ``datacarto run``; §4). An
  example whose predictions swing between two classes over the epochs, or that every class fits
  badly, has its mass spread; a plainly mislabeled example is predicted confidently as another
  class by models that did not train on it, so ``P_i`` is peaked.
* ``Hbar_i / log K``, the ``entropy`` column: the mean over epochs of the in-sample predictive
  entropy. A group labelled at random among the given classes keeps the model undecided while it
  trains; a clean example is learned and its entropy falls.

``missing_class_score = sqrt(H(P_i)/log K * Hbar_i/log K)``: high only when both are, so it is
low for clean examples and for confident disagreements (mislabeled rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_float_array
from ..errors import InputError

__all__ = ["missing_class_score", "normalized_entropy"]


def normalized_entropy(probs: np.ndarray) -> np.ndarray:
    """``-sum_k p_k log p_k / log K`` per row of (n, K) probabilities (0 log 0 = 0), float64."""
    # classes on the first axis: the sum over them is element-wise on contiguous rows;
    # p = 0 meets log(tiny), a finite number, so its term is 0 (no 0 * -inf)
    p = np.ascontiguousarray(np.asarray(probs, dtype=np.float64).T)
    terms = np.maximum(p, np.finfo(np.float64).tiny)
    np.log(terms, out=terms)
    terms *= p
    return np.clip(-np.add.reduce(terms, axis=0) / np.log(p.shape[0]), 0.0, 1.0)


def missing_class_score(probs: Any, mean_entropy: Any, /) -> np.ndarray:
    """``sqrt(H(P_i)/log K * Hbar_i/log K)`` (docs/contract.md §2), in [0, 1].

    Parameters
    ----------
    probs : array-like (n, K)
        ``P_i``, each row a probability vector (the label-error detector's probabilities).
    mean_entropy : array-like (n,)
        ``Hbar_i``, the mean over epochs of the predictive entropy in nats (the ``entropy``
        column); NaN gives NaN.

    Examples
    --------
    >>> missing_class_score([[0.5, 0.5], [1.0, 0.0]], [np.log(2), 0.3]).round(3).tolist()
    [1.0, 0.0]
    """
    p = check_float_array(probs, name="probs", ndim=2, low=0.0, high=1.0)
    if p.shape[1] < 2:
        raise InputError(f"missing_class_score needs at least 2 classes; probs has {p.shape[1]}.")
    h = np.asarray(mean_entropy, dtype=np.float64)
    if h.shape != (p.shape[0],):
        raise InputError(f"mean_entropy must have shape ({p.shape[0]},) like probs' rows; got "
                         f"{h.shape}.")
    return _missing_class_score(p, h)


def _missing_class_score(p: np.ndarray, mean_entropy: np.ndarray) -> np.ndarray:
    inside = np.clip(mean_entropy / np.log(p.shape[1]), 0.0, 1.0)  # NaN stays NaN
    return np.sqrt(normalized_entropy(p) * inside)

