"""Label-noise injection for evaluating label-error detection.

Arrays are (N,) integer class indices 0..K-1; results are (N,) in the same order.

Two noise models, both flipping an exact, seeded number of labels:

* ``"uniform"`` (symmetric): ``round(rate * N)`` examples chosen uniformly at random each get a
  label drawn uniformly from the K - 1 other classes.
* ``"pair"`` (class-conditional, Han et al. 2018): within every class c, ``round(rate * n_c)``
  examples are moved to one fixed other class ``pairs[c]`` (default ``(c + 1) mod K``), so
  the errors concentrate on one confusion per class, as with real annotators.

Examples
--------
>>> noisy, flipped = inject_label_noise([0, 0, 1, 1, 2, 2, 0, 1, 2, 0], 0.2, seed=0)
>>> int(flipped.sum())
2
>>> bool(((noisy != [0, 0, 1, 1, 2, 2, 0, 1, 2, 0]) == flipped).all())
True
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ._validation import check_labels, check_option
from .errors import InputError

__all__ = ["NOISE_KINDS", "check_noise_rate", "inject_label_noise"]

NOISE_KINDS = ("uniform", "pair")


def check_noise_rate(rate: Any, *, where: str = "inject_label_noise") -> float:
    """Return ``rate`` as a float in [0, 1) or raise :class:`~datacarto.errors.InputError`."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        value = float("nan")
    if not (0.0 <= value < 1.0):
        raise InputError(f"The 'rate' parameter of {where} must be a noise rate in [0, 1) "
                         f"(the fraction of labels to flip). Got {rate!r} instead.")
    return value


def inject_label_noise(labels: Any, rate: float, *, kind: Literal["uniform", "pair"] = "uniform",
                       n_classes: int | None = None, pairs: Any = None,
                       seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flip a seeded fraction of labels; return ``(noisy_labels, is_flipped)``.

    Parameters
    ----------
    labels : array-like (N,)
        True class indices 0..K-1.
    rate : float in [0, 1)
        Fraction of labels to flip (of all labels for ``"uniform"``, of each class for
        ``"pair"``).
    kind : {"uniform", "pair"}
        The noise model (see the module docstring).
    n_classes : int, optional
        K; defaults to ``max(labels) + 1``. Must be at least 2.
    pairs : array-like (K,), optional
        For ``"pair"``: the class each class is flipped to (``pairs[c] != c``).
    seed : int, optional
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    noisy_labels : ndarray (N,) int64
    is_flipped : ndarray (N,) bool
        ``noisy_labels != labels``.
    """
    where = "inject_label_noise"
    rate = check_noise_rate(rate, where=where)
    check_option(kind, NOISE_KINDS, name="kind", where=where)
    y = check_labels(labels, n_classes=n_classes, where=where)
    if y.size == 0:
        raise InputError(f"{where}: labels is empty; expected at least one example.")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    present = len(np.unique(y))
    if k < 2 or (n_classes is None and present < 2):
        raise InputError(f"{where}: labels hold a single class (K = {k if k < 2 else present}); "
                         "label noise needs at least 2 classes. Pass n_classes= if some classes "
                         "are absent from labels.")
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    if kind == "uniform":
        n_flip = int(round(rate * len(y)))
        chosen = rng.choice(len(y), size=n_flip, replace=False)
        # an offset in 1..K-1 lands uniformly on one of the other classes
        noisy[chosen] = (y[chosen] + rng.integers(1, k, size=n_flip)) % k
    else:
        target = _check_pairs(pairs, k, where)
        for c in range(k):
            members = np.flatnonzero(y == c)
            n_flip = int(round(rate * len(members)))
            chosen = rng.choice(members, size=n_flip, replace=False)
            noisy[chosen] = target[c]
    return noisy, noisy != y


def _check_pairs(pairs: Any, k: int, where: str) -> np.ndarray:
    if pairs is None:
        return (np.arange(k) + 1) % k
    target = check_labels(pairs, n_classes=k, name="pairs", where=where)
    if len(target) != k:
        raise InputError(f"{where}: pairs must give one target class per class (K = {k}); "
                         f"got {len(target)} entries.")
    same = target == np.arange(k)
    if same.any():
        c = int(np.argmax(same))
        raise InputError(f"{where}: pairs[{c}] = {c} maps class {c} to itself; every class must be "
                         "flipped to a different class.")
    return target
