"""How noisy each class is: the window-averaged class probabilities and the confident-learning
noise model ``T[given, true]`` estimated from them, whose posterior is the label-error score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dynamics import TrainingDynamics
from ..errors import InputError
from ..probability import epoch_softmax_summary
from ..store import HeldOut
from .window import WindowChoice

#: The window's in-sample predictions have memorised the labels when they miss at most this
#: share of what the held-out predictions miss (e.g. 2 % against 35 %); the score then reads
#: the held-out probabilities alone.
MEMORISED_SHARE = 0.1
#: Pseudo-count added to every off-diagonal cell of the noise matrix (a Laplace prior): it
#: keeps the posterior informative when the confident joint finds no errors at all.
PSEUDO_COUNT = 1.0


# --------------------------------------------------------------------------- probabilities
def epoch_averaged_probs(logits: np.ndarray) -> np.ndarray:
    """``mean_e softmax(z_ie)`` for logits (N, E, K) -> (N, K) float64, in bounded memory
    (:func:`datacarto.probability.epoch_softmax_summary`)."""
    return epoch_softmax_summary(logits)[1]


def probs_from_stored(dynamics: TrainingDynamics) -> np.ndarray:
    """Window-averaged probabilities (N, K) rebuilt from gold / runner-up / margin (no logits).

    Per epoch: ``p_gold``, ``p_runner_up = p_gold exp(-margin)`` and the remaining mass spread
    evenly over the K - 2 other classes (all of it on the runner-up when K = 2).
    """
    n, k = dynamics.n_examples, dynamics.n_classes
    rows = np.arange(n)
    out = np.zeros((n, k))
    for e in range(dynamics.n_epochs):
        pg = dynamics.gold_prob[:, e].astype(np.float64)
        pr = pg * np.exp(-dynamics.margin[:, e].astype(np.float64))
        if k == 2:
            pr = 1.0 - pg
        rest = np.clip(1.0 - pg - pr, 0.0, None) / max(k - 2, 1)
        if k > 2:
            out += rest[:, None]
            out[rows, dynamics.labels] -= rest
            out[rows, dynamics.runner_up[:, e]] -= rest
        out[rows, dynamics.labels] += pg
        out[rows, dynamics.runner_up[:, e]] += pr
    return out / dynamics.n_epochs


def heldout_probs(heldout: HeldOut, window: WindowChoice, ids: np.ndarray | None) -> np.ndarray:
    """Mean held-out probabilities (N, K) over the window's epochs (all if none overlap).

    ``ids`` (N,) are the run's example ids: the held-out rows must be the same examples.
    """
    if ids is None or len(ids) != len(heldout.ids) or not np.array_equal(
            np.asarray(ids).astype(str), np.asarray(heldout.ids).astype(str)):
        raise InputError("detect_label_errors: the held-out logits list other examples than the "
                         "run (ids differ); they belong to another run.")
    keep = (heldout.epochs >= window.first) & (heldout.epochs <= window.last)
    z = heldout.logits[keep] if keep.any() else heldout.logits
    return epoch_averaged_probs(np.swapaxes(z, 0, 1))


def mix_heldout(probs: np.ndarray, held: np.ndarray, labels: np.ndarray
                ) -> tuple[np.ndarray, str]:
    """The probabilities the noise model reads when cross-fitted ones exist, and their source.

    ``P_i = (in-sample_i + held-out_i) / 2``, or the held-out probabilities alone when the
    in-sample argmax misses at most :data:`MEMORISED_SHARE` of what the held-out argmax misses.
    The source is ``"in-sample and held-out"`` or ``"held-out only"``.
    """
    missed_in = float((probs.argmax(axis=1) != labels).mean())
    missed_held = float((held.argmax(axis=1) != labels).mean())
    if missed_in <= MEMORISED_SHARE * missed_held:
        # in-sample, the window already fits (almost) every label that unseen-data
        # predictions get wrong, wrong labels included: its in-sample probabilities
        # cannot tell them apart any more
        return held, "held-out only"
    # in-sample dynamics and cross-fitted predictions fail differently (memorised
    # labels vs. a model trained on part of the rows): their average ranks better
    # than either alone on every benchmark family (docs/label-errors.md)
    return 0.5 * (probs + held), "in-sample and held-out"


# ---------------------------------------------------------------------------- noise model
@dataclass(frozen=True)
class NoiseModel:
    """Confident-learning estimate of label noise (Northcutt et al. 2021).

    Per-class thresholds ``t_k = mean_{i: y_i = k} P_ik``; the calibrated confident joint
    ``C[g, k]`` counts examples labelled ``g`` whose most probable above-threshold class is
    ``k``, rows rescaled to the class counts. Confusion that goes both ways (``min(C, C^T)``)
    is what ambiguous classes produce; wrong labels add one-way excess. The noise matrix keeps
    the excess, a uniform background (the mean symmetric part) and one pseudo-count::

        D = C - C^T,   excess = max(D, 0) * max(0, 1 - (C + C^T) / D^2)   (shrunk by its noise)
        M[g, k] = excess[g, k] + b + 1   (g != k),   M[k, k] = C[k, k]
        T[g, k] = M[g, k] / sum_g' M[g', k]           # P(given label g | true class k)

    ``thresholds`` (K,), ``joint`` (K, K) calibrated confident joint (rows: given label,
    columns: confident true class), ``noise`` (K, K) ``T[given, true]``, and ``n_errors``
    (CL's estimate of the number of wrong labels, ``sum_{g != k} C[g, k]``).
    """

    thresholds: np.ndarray
    joint: np.ndarray
    noise: np.ndarray
    n_errors: int

    @classmethod
    def fit(cls, probs: np.ndarray, labels: np.ndarray, n_classes: int) -> NoiseModel:
        """Estimate from averaged probabilities (N, K) and given labels (N,)."""
        k = n_classes
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        thresholds = np.array([probs[labels == c, c].mean() if counts[c] else 1.0
                               for c in range(k)])
        above = probs >= thresholds[None, :]
        confident = np.where(above, probs, -np.inf).argmax(axis=1)
        has = above.any(axis=1)
        raw = np.bincount(labels[has] * k + confident[has], minlength=k * k
                          ).reshape(k, k).astype(np.float64)
        row = raw.sum(axis=1, keepdims=True)
        joint = np.where(row > 0, raw / np.where(row > 0, row, 1.0), np.eye(k)) * counts[:, None]
        off = ~np.eye(k, dtype=bool)
        n_errors = int(round(float(joint[off].sum())))
        # one-way excess, shrunk by its sampling noise (positive-part James-Stein; the
        # difference of two counts has variance ~ their sum): chance asymmetries of uniform
        # noise vanish, real class-conditional flows stay
        diff = joint - joint.T
        excess = np.clip(diff, 0.0, None) * np.clip(
            1.0 - (joint + joint.T) / np.maximum(diff * diff, 1e-12), 0.0, None)
        background = float(np.minimum(joint, joint.T)[off].mean()) if k > 1 else 0.0
        m = np.where(off, excess + background + PSEUDO_COUNT, joint)
        # a class with no examples keeps a diagonal so that its column stays a distribution
        m[np.diag_indices(k)] = np.maximum(np.diag(m), PSEUDO_COUNT)
        noise = m / m.sum(axis=0, keepdims=True)
        return cls(thresholds=thresholds, joint=joint, noise=noise, n_errors=n_errors)

    def score(self, probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(posterior probability that the label is wrong, most probable true class), each (N,).

        Treating ``P_i`` as the class posterior (a ranking score: ``P_i`` is not calibrated, so
        neither is the score)::

            label_error_score_i = 1 - T[y_i, y_i] P_i[y_i] / sum_k T[y_i, k] P_i[k]
            suggested_label_i   = argmax_{k != y_i} T[y_i, k] P_i[k]

        With uniform noise this ranks like ``1 - P_i[y_i]``; with class-conditional noise it
        weighs the class the wrong labels come from.
        """
        rows = np.arange(len(labels))
        weighted = self.noise[labels, :] * probs  # T[y_i, k] P_ik  ∝ P(true = k | given y_i)
        total = weighted.sum(axis=1)
        clean = weighted[rows, labels] / np.where(total > 0, total, 1.0)
        score = np.clip(np.where(total > 0, 1.0 - clean, 0.0), 0.0, 1.0)
        weighted[rows, labels] = -np.inf
        return score, weighted.argmax(axis=1).astype(np.int64)
