"""Label-error score, suggested label and calibrated flag (docs/contract.md §2, §4).

Inputs come from a :class:`~datacarto.dynamics.TrainingDynamics` (N examples, E epochs,
K classes); per-example results are (N,) in the same order. The method was chosen by
measurement (``benchmarks/detection.py``, ``docs/label-errors.md``).

Default method, ``"noise_posterior"``, from ONE training run:

1. **Epoch window** (memorisation awareness). A network first learns the patterns shared by
   the clean examples and later memorises the wrong labels one by one (Arpit et al. 2017);
   once it does, in-sample probabilities stop separating wrong labels from right ones. With a
   held-out accuracy per epoch (``heldout_accuracy=``, or the ``curve`` a ``datacarto run``
   stores in the run's metadata) the window is epochs ``1..m``: early stopping applied to the
   scores. Held-out and training accuracies are smoothed (running mean over
   ``max(3, E // 6)`` epochs); ``m`` is the latest epoch whose held-out accuracy is within
   0.01 of the best and whose train-minus-held-out gap has grown by at most 0.03 since the
   first such epoch. If ``m`` is the last epoch and held-out accuracy still rose by more
   than 0.01 over the last third (an underfitting run, nothing memorised yet) the window is
   the last third of the run,
   ``floor(2E/3) + 1..E``: the latest probabilities are the most informative, the early,
   under-trained epochs only blur them. Without a held-out curve, memorisation is
   read from the training accuracy on the given labels: once the clean patterns are learned
   the rate ``-d log(1 - acc_e) / de`` falls; if it rises again (the model fits the remaining
   disagreements faster and faster) or the model fits (almost) every label, the window ends
   at the knee. Otherwise every epoch is used.
2. **Window-averaged probabilities** ``P_i = mean_{e in window} softmax(z_ie)``.
3. **Noise model** (confident learning, Northcutt et al. 2021). Per-class thresholds
   ``t_k = mean_{i: y_i = k} P_ik``; the calibrated confident joint ``C[g, k]`` counts
   examples labelled ``g`` whose most probable above-threshold class is ``k``, rows rescaled
   to the class counts. Confusion that goes both ways (``min(C, C^T)``) is what ambiguous
   classes produce; wrong labels add one-way excess. The noise matrix keeps the excess, a
   uniform background (the mean symmetric part) and one pseudo-count::

       D = C - C^T,   excess = max(D, 0) * max(0, 1 - (C + C^T) / D^2)   (shrunk by its noise)
       M[g, k] = excess[g, k] + b + 1   (g != k),   M[k, k] = C[k, k]
       T[g, k] = M[g, k] / sum_g' M[g', k]           # P(given label g | true class k)

4. **Score** = posterior probability that the given label is wrong under the noise model,
   treating ``P_i`` as the class posterior (a ranking score: ``P_i`` is not calibrated, so
   neither is the score; the flag is calibrated by step 6)::

       label_error_score_i = 1 - T[y_i, y_i] P_i[y_i] / sum_k T[y_i, k] P_i[k]

   With uniform noise this ranks like ``1 - P_i[y_i]``; with class-conditional noise it
   weighs the class the wrong labels come from.
5. **Suggested label** ``argmax_{k != y_i} T[y_i, k] P_i[k]``: the most probable true class.
6. **Flag** (calibrated by confident learning): the ``n_hat`` highest scores are flagged,
   ``n_hat`` = the off-diagonal mass of the calibrated confident joint (CL's estimate of the
   number of wrong labels). ``threshold=t`` flags ``score >= t`` instead.
7. **Assessment**: flagged -> ``"likely mislabeled"``; others by data-map region
   (``"ambiguous"``, ``"hard"`` = hard but not flagged, ``"easy"``).

Without stored logits (large K) the probabilities come from what was stored: the gold and
runner-up probabilities (``p_r = p_gold * exp(-margin)``), the rest spread evenly over the
other classes; ``info["unavailable"]`` says so.

Other methods: ``"confident_learning"`` (version 0.1: ``1 - confidence`` over all epochs,
confident-learning flags on epoch-averaged probabilities) and ``"confidence"``
(``1 - confidence`` over the window, with the same flags as the default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import check_fraction
from .dynamics import TrainingDynamics, parse_epoch_window
from .errors import InputError
from .store import HeldOut

__all__ = ["ASSESSMENTS", "DEFAULT_METHOD", "LABEL_ERROR_METHODS", "DetectionPlan", "NoiseModel",
           "WindowChoice", "check_options", "check_fit", "choose_window", "chunk_probs",
           "detect_label_errors", "notes",
           "epoch_averaged_probs", "finish", "prepare", "seed_stability", "softmax_stats",
           "stable_flags"]

LABEL_ERROR_METHODS = ("noise_posterior", "confident_learning", "confidence")
DEFAULT_METHOD = "noise_posterior"
ASSESSMENTS = ("likely mislabeled", "ambiguous", "hard", "easy")
#: Train-minus-held-out accuracy growth (after the best held-out epoch) that counts as
#: memorisation; the same margin as ``datacarto run`` (train.loop.MEMORISATION_GAP).
MEMORISATION_GAP = 0.05
#: Held-out accuracies within this of the best count as equally good (about the standard
#: error of accuracy on 1,000-2,000 held-out examples).
HELDOUT_TOLERANCE = 0.01
#: ... unless the train-minus-held-out gap has grown by more than this since the first of them.
GAP_GROWTH = 0.03
#: Share of the run (its latest epochs) the score averages over when held-out accuracy is still
#: at its best at the last epoch (an underfitting run: nothing memorised yet).
LATE_SHARE = 1.0 / 3.0
#: Training accuracy on the given labels from which a run has fitted (almost) every label.
FITS_EVERYTHING = 0.99
#: The window's in-sample predictions have memorised the labels when they miss at most this
#: share of what the held-out predictions miss (e.g. 2 % against 35 %); the score then reads
#: the held-out probabilities alone.
MEMORISED_SHARE = 0.1
#: Pseudo-count added to every off-diagonal cell of the noise matrix (a Laplace prior): it
#: keeps the posterior informative when the confident joint finds no errors at all.
PSEUDO_COUNT = 1.0


# --------------------------------------------------------------------------- probabilities
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


# --------------------------------------------------------------------------------- window
@dataclass(frozen=True)
class WindowChoice:
    """The epochs the score averages over, and whether the run memorised its labels.

    ``first`` / ``last`` are 1-based epoch numbers (inclusive); ``source`` is
    ``"held-out accuracy"``, ``"training dynamics"``, ``"user"`` or ``"all epochs"``.
    """

    first: int
    last: int
    memorisation: bool
    source: str
    message: str

    @property
    def spec(self) -> str:
        return f"{self.first}:{self.last}"


def _running_mean(x: np.ndarray, width: int = 3) -> np.ndarray:
    out = np.empty(len(x))
    for i in range(len(x)):
        lo, hi = max(0, i - width // 2), min(len(x), i + width // 2 + 1)
        out[i] = x[lo:hi].mean()
    return out


def choose_window(train_accuracy: Any, heldout_accuracy: Any = None, *,
                  epochs: Any = None, n_examples: int | None = None) -> WindowChoice:
    """Pick the epoch window of the label-error score (module docstring, step 1).

    Parameters
    ----------
    train_accuracy : array-like (E,)
        Per recorded epoch, the share of examples whose argmax is their given label.
    heldout_accuracy : array-like (E,), optional
        Accuracy on held-out examples (with labels as noisy as the training ones) per epoch.
    epochs : array-like (E,), optional
        Epoch numbers (default 1..E).
    n_examples : int, optional
        N, to bound ``log(1 - acc)`` at accuracy 1.

    Examples
    --------
    >>> w = choose_window([.6, .8, .85, .9, .95, .99], [.55, .7, .72, .7, .66, .62])
    >>> (w.spec, w.memorisation, w.source)
    ('1:3', True, 'held-out accuracy')
    """
    acc = np.asarray(train_accuracy, dtype=np.float64)
    n_ep = len(acc)
    ep = np.arange(1, n_ep + 1) if epochs is None else np.asarray(epochs, dtype=np.int64)
    first = int(ep[0])
    if heldout_accuracy is not None:
        held = np.asarray(heldout_accuracy, dtype=np.float64)
        if held.shape != acc.shape:
            raise InputError(f"detect_label_errors: heldout_accuracy has {held.shape[0]} values "
                             f"but the run has {n_ep} recorded epochs; give one per epoch.")
        # smoothing over ~1/6 of the run keeps a noisy late spike from ending the window late
        width = max(3, n_ep // 6) | 1
        smooth = _running_mean(held, width)
        gap = _running_mean(acc, width) - smooth
        # epochs as good as the best within the noise of a held-out estimate: prefer the
        # latest (more learned) one unless the model has started to run ahead of held-out
        # accuracy there (a flat held-out curve does not prove the absence of memorisation)
        top = np.flatnonzero(smooth >= smooth.max() - HELDOUT_TOLERANCE)
        calm = top[gap[top] <= gap[top[0]] + GAP_GROWTH]
        best = int(calm[-1])
        gap = acc - held
        memorised = best < n_ep - 1 and gap[-1] - gap[best] > MEMORISATION_GAP
        if memorised:
            msg = (f"memorisation: from epoch {int(ep[best])} training accuracy on the given labels "
                   f"({acc[-1]:.3f} at the end) runs ahead of held-out accuracy ({held[-1]:.3f}); "
                   f"the label-error score uses epochs {first}..{int(ep[best])} (best held-out "
                   "accuracy)")
        else:
            # the gap may still grow while held-out accuracy improves: say both, so this
            # agrees with a memorisation curve printed beside it
            ahead = (f"; training accuracy ends {gap[-1]:+.3f} ahead of held-out accuracy"
                     if gap[-1] > MEMORISATION_GAP else "")
            still = ""
            late = n_ep - int(np.ceil(n_ep * LATE_SHARE))
            rising = smooth[-1] - smooth[max(late - 1, 0)] > HELDOUT_TOLERANCE
            if best == n_ep - 1 and rising:
                # held-out accuracy still rising over the last third (beyond the noise of its
                # estimate), not on a plateau: the model is still learning the clean patterns
                # (underfitting, no memorisation yet), so its latest probabilities are the
                # most informative; early, under-trained epochs only blur them (benchmark: AP
                # +0.02-0.06 on underfitting runs, no change elsewhere)
                first = int(ep[late])
                still = " (the last third: the model is still learning)"
            msg = (f"held-out accuracy is still at its best by epoch {int(ep[best])} "
                   f"({held[best]:.3f}), so the label-error score uses epochs "
                   f"{first}..{int(ep[best])}{still}{ahead}")
        return WindowChoice(first, int(ep[best]), bool(memorised), "held-out accuracy", msg)
    knee = _fit_knee(acc, n_examples)
    if knee is not None:
        m = int(ep[knee])
        return WindowChoice(first, m, True, "training dynamics",
                            f"memorisation: after epoch {m} the model fits the remaining labels "
                            f"faster and faster (training accuracy {acc[-1]:.3f} at the end); the "
                            f"label-error score uses epochs {first}..{m}. Record a held-out "
                            "accuracy per epoch for a sharper choice")
    return WindowChoice(first, int(ep[-1]), False, "all epochs",
                        "no memorisation detected from the training dynamics; the score uses "
                        "every recorded epoch")


def _fit_knee(acc: np.ndarray, n_examples: int | None) -> int | None:
    """Index of the epoch where memorisation starts, read from training accuracy alone; or None."""
    n_ep = len(acc)
    w = max(3, n_ep // 10)
    fitted = np.flatnonzero(acc >= FITS_EVERYTHING)
    # once (almost) every label is fitted the rate is meaningless: look for the knee before
    end = int(fitted[0]) if len(fitted) else n_ep
    if end < 2 * w:
        return None
    floor = 0.5 / n_examples if n_examples else 1e-4
    fit = -np.log(np.maximum(1.0 - acc, floor))
    x = np.arange(w) - (w - 1) / 2.0
    # least-squares slope of -log(1 - acc) over each run of w epochs (robust to SGD noise)
    rate = np.array([x @ fit[e - w + 1:e + 1] / (x @ x) for e in range(w - 1, end)])
    j = int(np.argmin(rate[:-1]))
    knee = j + (w - 1) // 2  # the centre epoch of the slowest stretch
    if acc[-1] - acc[knee] < 0.02:
        return None
    if len(fitted) or rate[-1] >= max(1.5 * rate[j], rate[j] + 0.01):
        return knee
    return None


def _heldout_from_meta(meta: dict[str, Any], epochs: np.ndarray) -> np.ndarray | None:
    """Held-out accuracy per recorded epoch from a run's metadata (``curve`` of datacarto run)."""
    for source in (meta, meta.get("extra") or {}):
        if not isinstance(source, dict):
            continue
        direct = source.get("heldout_accuracy")
        if direct is not None and len(direct) == len(epochs):
            return np.asarray(direct, dtype=np.float64)
        curve = source.get("curve")
        if isinstance(curve, list) and curve:
            by_epoch = {int(p["epoch"]): p.get("heldout_acc") for p in curve
                        if isinstance(p, dict) and "epoch" in p}
            values = [by_epoch.get(int(e)) for e in epochs]
            if all(v is not None for v in values):
                return np.asarray(values, dtype=np.float64)
    return None


# ---------------------------------------------------------------------------- noise model
@dataclass(frozen=True)
class NoiseModel:
    """Confident-learning estimate of label noise (module docstring, step 3).

    ``thresholds`` (K,), ``joint`` (K, K) calibrated confident joint (rows: given label,
    columns: confident true class), ``noise`` (K, K) ``T[given, true]``, and ``n_errors``
    (CL's estimate of the number of wrong labels).
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
        raw = np.zeros((k, k))
        np.add.at(raw, (labels[has], confident[has]), 1.0)
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
        """(posterior probability that the label is wrong, most probable true class), each (N,)."""
        rows = np.arange(len(labels))
        weighted = self.noise[labels, :] * probs  # T[y_i, k] P_ik  ∝ P(true = k | given y_i)
        total = weighted.sum(axis=1)
        clean = weighted[rows, labels] / np.where(total > 0, total, 1.0)
        score = np.clip(np.where(total > 0, 1.0 - clean, 0.0), 0.0, 1.0)
        weighted[rows, labels] = -np.inf
        return score, weighted.argmax(axis=1).astype(np.int64)


def _top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of the n highest scores; ties go to the earlier row (ascending id)."""
    flagged = np.zeros(len(scores), dtype=bool)
    if n > 0:
        order = np.lexsort((np.arange(len(scores)), -scores))
        flagged[order[:n]] = True
    return flagged


def _check_threshold(threshold: Any) -> float | None:
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


# ------------------------------------------------------------------------------ fit check
#: The model "fits" when its balanced accuracy beats chance (1 / classes, what predicting
#: any single class scores) by more than FIT_MARGIN and by FIT_Z standard errors.
FIT_MARGIN = 0.02
FIT_Z = 3.0


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


def _heldout_probs(plan: DetectionPlan, ids: np.ndarray | None) -> np.ndarray | None:
    """Mean held-out probabilities (N, K) over the window's epochs (all if none overlap)."""
    held = plan.heldout
    if held is None:
        return None
    if ids is None or len(ids) != len(held.ids) or not np.array_equal(
            np.asarray(ids).astype(str), np.asarray(held.ids).astype(str)):
        raise InputError("detect_label_errors: the held-out logits list other examples than the "
                         "run (ids differ); they belong to another run.")
    keep = (held.epochs >= plan.window.first) & (held.epochs <= plan.window.last)
    z = held.logits[keep] if keep.any() else held.logits
    return epoch_averaged_probs(np.swapaxes(z, 0, 1))


# ------------------------------------------------------------------------------- detector
@dataclass
class _Info:
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


#: Keyword options of :func:`detect_label_errors` (and :func:`prepare`) besides the inputs.
OPTIONS = ("method", "window", "heldout_accuracy", "heldout", "threshold", "regions")
_UNAVAILABLE_LOGITS = ["logits: the probabilities of classes other than the gold and runner-up "
                       "are spread evenly (noise model and suggestions are approximate)", "entropy"]
#: Rows per softmax slice in :func:`chunk_probs` (8192 x E=10 x K=10 float64 = 6.5 MB).
_SOFTMAX_ROWS = 8192
#: Rows per slice when scoring in :func:`finish` (bounds the (n, K) temporaries).
_SCORE_ROWS = 1 << 17


@dataclass(frozen=True)
class DetectionPlan:
    """What the detector decides before it sees any example's probabilities (:func:`prepare`).

    Small and picklable: the streaming engine sends it to its workers.
    """

    method: str
    threshold: float | None
    n_examples: int
    n_classes: int
    epochs: np.ndarray  # (E,) the recorded epoch numbers the chunks cover
    window: WindowChoice  # the epochs the score averages over
    logits: bool  # whether the chunks carry full logits
    regions: dict[str, Any] | None = None
    heldout: HeldOut | None = None  # cross-fitted logits (datacarto run's side models)

    @property
    def keep(self) -> np.ndarray:
        """(E,) bool: the epochs of the window."""
        return (self.epochs >= self.window.first) & (self.epochs <= self.window.last)


def check_options(*, method: str = DEFAULT_METHOD, threshold: float | None = None,
                  **_: Any) -> tuple[str, float | None]:
    """Validate the options that need no data (method, threshold); returns them normalised."""
    from ._validation import check_option

    method = check_option(method, LABEL_ERROR_METHODS, name="method", where="detect_label_errors")
    return method, _check_threshold(threshold)


def prepare(n_examples: int, epochs: Any, train_accuracy: Any = None,
            meta: dict[str, Any] | None = None, *, n_classes: int, logits: bool,
            method: str = DEFAULT_METHOD,
            window: str | tuple[int | None, int | None] | None = "auto",
            heldout_accuracy: Any = None, threshold: float | None = None,
            regions: dict[str, Any] | None = None, heldout: HeldOut | None = None
            ) -> DetectionPlan:
    """Stage 1 of :func:`detect_label_errors`: validate the options and choose the epoch window.

    Parameters
    ----------
    n_examples, n_classes : int
        N and K of the run.
    epochs : array-like (E,)
        The recorded epoch numbers.
    train_accuracy : array-like (E,), optional
        Per epoch, the share of examples whose argmax is their given label
        (``mean_i 1[pred_ie = y_i]``); needed only for ``window="auto"``.
    meta : dict, optional
        The run's metadata (its ``curve`` gives the held-out accuracy when none is passed).
    logits : bool
        Whether full logits are stored (else the probabilities are rebuilt, approximately).
    method, window, heldout_accuracy, threshold, regions, heldout
        As for :func:`detect_label_errors`.
    """
    where = "detect_label_errors"
    method, thr = check_options(method=method, threshold=threshold)
    if heldout is not None and not isinstance(heldout, HeldOut):
        raise InputError(f"{where}: heldout must be a datacarto.store.HeldOut (as read by "
                         f"datacarto.store.read_heldout) or None; got {type(heldout).__name__}.")
    if heldout is not None and heldout.logits.shape[1:] != (n_examples, n_classes):
        raise InputError(f"{where}: the held-out logits cover {heldout.logits.shape[1]} examples "
                         f"x {heldout.logits.shape[2]} classes but the run has {n_examples} x "
                         f"{n_classes}; they belong to another run.")
    if n_classes < 2:
        raise InputError(f"{where}: the run has {n_classes} class; label errors need at "
                         "least 2 classes.")
    ep = np.asarray(epochs, dtype=np.int64)
    if method == "confident_learning" or window is None:
        choice = WindowChoice(int(ep[0]), int(ep[-1]), False, "all epochs",
                              "the score uses every recorded epoch")
    elif not (isinstance(window, str) and window == "auto"):
        lo, hi = parse_epoch_window(window)
        keep = np.ones(len(ep), dtype=bool)
        if lo is not None:
            keep &= ep >= lo
        if hi is not None:
            keep &= ep <= hi
        if not keep.any():
            raise InputError(f"epochs window {(lo, hi)!r} selects none of the recorded epochs "
                             f"{ep.tolist()}.")
        kept = ep[keep]
        choice = WindowChoice(int(kept[0]), int(kept[-1]), False, "user",
                              f"the score uses epochs {int(kept[0])}..{int(kept[-1])} "
                              "(window given)")
    else:
        if train_accuracy is None:
            raise InputError(f"{where}: window='auto' needs the training accuracy per epoch; "
                             "pass train_accuracy= to prepare().")
        held = heldout_accuracy
        if held is None:
            held = _heldout_from_meta(meta or {}, ep)
        choice = choose_window(np.asarray(train_accuracy, dtype=np.float64), held, epochs=ep,
                               n_examples=n_examples)
    return DetectionPlan(method=method, threshold=thr, n_examples=int(n_examples),
                         n_classes=int(n_classes), epochs=ep, window=choice, logits=bool(logits),
                         regions=dict(regions) if regions else None, heldout=heldout)


def softmax_stats(logits: np.ndarray, keep: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Mean predictive entropy (n,) and averaged probabilities (n, K) of logits (n, E, K).

    One softmax pass for both. The probabilities are those of :func:`epoch_averaged_probs`
    (operation for operation: bit-identical) over the epochs in ``keep`` (all when None); the
    entropy agrees with :func:`datacarto.metrics.entropy` to ~1e-15 (it shares the softmax).
    """
    b = logits.astype(np.float64)
    m = b.max(axis=2, keepdims=True)
    e = np.exp(b - m)
    s = e.sum(axis=2, keepdims=True)
    q = e / s
    entropy = -(q * ((b - m) - np.log(s))).sum(axis=2).mean(axis=1)
    if keep is not None and not keep.all():
        q = q[:, keep]
    return entropy, q.mean(axis=1)


def chunk_probs(plan: DetectionPlan, dynamics: TrainingDynamics, *,
                entropy: bool = False) -> dict[str, np.ndarray]:
    """Stage 2 of :func:`detect_label_errors`: the per-example inputs of any row range.

    ``dynamics`` holds some examples (a chunk of rows) over every epoch of ``plan.epochs``.
    Every result is row-wise, so the chunks' results, concatenated, equal the whole run's.

    Returns
    -------
    dict
        ``probs`` (n, K) float64: the window-averaged probabilities
        ``P_i = mean_{e in window} softmax(z_ie)`` (all epochs for ``"confident_learning"``),
        rebuilt by :func:`probs_from_stored` without logits. ``"confident_learning"`` without
        logits instead gives ``suggested_label`` (n,) (the most frequent runner-up) and
        ``vote_majority`` (n,) bool (that class is the argmax in more than half the epochs).
        With ``entropy=True`` and logits, also ``entropy`` (n,): the mean predictive entropy
        from the same softmax pass.
    """
    legacy = plan.method == "confident_learning"
    keep = None if legacy else plan.keep
    out: dict[str, np.ndarray] = {}
    if dynamics.logits is not None:
        if entropy:
            # row-wise, so slicing changes no value; small slices keep temporaries in cache
            parts = [softmax_stats(dynamics.logits[s:s + _SOFTMAX_ROWS], keep)
                     for s in range(0, dynamics.n_examples, _SOFTMAX_ROWS)]
            empty = (np.zeros(0), np.zeros((0, dynamics.n_classes)))
            out["entropy"] = np.concatenate([h for h, _ in parts] or [empty[0]])
            out["probs"] = np.concatenate([q for _, q in parts] or [empty[1]])
        else:
            dyn = dynamics if keep is None else dynamics.window(plan.window.spec)
            assert dyn.logits is not None
            out["probs"] = epoch_averaged_probs(dyn.logits)
    elif legacy:
        votes = _vote_counts(dynamics.runner_up, plan.n_classes)
        suggested = votes.argmax(axis=1)
        pred_votes = _vote_counts(dynamics.pred, plan.n_classes)
        out["suggested_label"] = suggested.astype(np.int64)
        out["vote_majority"] = (pred_votes[np.arange(dynamics.n_examples), suggested] * 2
                                > dynamics.n_epochs)
    else:
        out["probs"] = probs_from_stored(dynamics.window(plan.window.spec))
    return out


def finish(plan: DetectionPlan, stats: dict[str, np.ndarray], labels: np.ndarray,
           confidence: np.ndarray, variability: np.ndarray,
           ids: np.ndarray | None = None) -> dict[str, Any]:
    """Stage 3 of :func:`detect_label_errors`: noise model, scores, flags and assessment.

    Needs every example at once (the noise model's per-class thresholds, the flag count).
    ``stats`` holds :func:`chunk_probs`' results for all N examples (chunks concatenated in
    row order); ``labels``, ``confidence`` and ``variability`` are (N,); ``ids`` (N,), needed
    with ``plan.heldout``, checks that the held-out rows are the same examples. Returns what
    :func:`detect_label_errors` returns.
    """
    from .regions import assign_regions

    k = plan.n_classes
    n = len(labels)
    if plan.method == "confident_learning":
        result = _finish_legacy(plan, stats, labels, confidence)
    else:
        probs = stats["probs"]
        held = _heldout_probs(plan, ids)
        sources = "in-sample"
        if held is not None:
            missed_in = float((probs.argmax(axis=1) != labels).mean())
            missed_held = float((held.argmax(axis=1) != labels).mean())
            if missed_in <= MEMORISED_SHARE * missed_held:
                # in-sample, the window already fits (almost) every label that unseen-data
                # predictions get wrong, wrong labels included: its in-sample probabilities
                # cannot tell them apart any more
                probs, sources = held, "held-out only"
            else:
                # in-sample dynamics and cross-fitted predictions fail differently (memorised
                # labels vs. a model trained on part of the rows): their average ranks better
                # than either alone on every benchmark family (docs/label-errors.md)
                probs, sources = 0.5 * (probs + held), "in-sample and held-out"
        fit = check_fit(held if held is not None else probs, labels, k,
                        source="held-out" if held is not None else "training")
        model = NoiseModel.fit(probs, labels, k)
        score = np.empty(n)
        suggested = np.empty(n, dtype=np.int64)
        for a in range(0, n, _SCORE_ROWS):  # row-wise: slices only bound the temporaries
            b = min(n, a + _SCORE_ROWS)
            score[a:b], suggested[a:b] = model.score(probs[a:b], labels[a:b])
            if plan.method == "confidence":
                score[a:b] = 1.0 - probs[a:b][np.arange(b - a), labels[a:b]]
        spec = plan.window.spec
        source = {"in-sample": f"epochs {spec}",
                  "in-sample and held-out": f"epochs {spec} averaged with the held-out "
                                            "(cross-fitted) probabilities",
                  }.get(sources, f"the held-out (cross-fitted) probabilities of epochs {spec}: "
                                 "in-sample, the window already fits (almost) every label the "
                                 "held-out predictions get wrong")
        if plan.threshold is None:
            flagged = _top_n(score, model.n_errors)
            calibration = (f"confident learning: the {model.n_errors} highest scores, the number of "
                           f"wrong labels the calibrated confident joint estimates on {source}")
        else:
            flagged = score >= plan.threshold
            calibration = f"label_error_score >= {plan.threshold:g} (user threshold)"
        if not fit.ok:
            flagged = np.zeros(n, dtype=bool)
            calibration = "nothing flagged: the fit check failed (scores are still computed)"
        unavailable = [] if plan.logits else list(_UNAVAILABLE_LOGITS)
        info = _Info(plan.window, model.n_errors, calibration, unavailable, fit)
        result = {"label_error_score": score, "suggested_label": suggested,
                  "is_label_error": flagged, "info": info.as_dict()}
    region = assign_regions(np.asarray(confidence, dtype=np.float64),
                            np.asarray(variability, dtype=np.float64), **(plan.regions or {}))
    result["assessment"] = np.where(result["is_label_error"], "likely mislabeled",
                                    region).astype(object)
    return result


def detect_label_errors(dynamics: TrainingDynamics, *, confidence: np.ndarray | None = None,
                        variability: np.ndarray | None = None, method: str = DEFAULT_METHOD,
                        window: str | tuple[int | None, int | None] | None = "auto",
                        heldout_accuracy: Any = None, threshold: float | None = None,
                        regions: dict[str, Any] | None = None,
                        heldout: HeldOut | None = None) -> dict[str, Any]:
    """Score, suggested label, flag and assessment for every example (see the module docstring).

    The three stages :func:`prepare`, :func:`chunk_probs` (here over one chunk: every example)
    and :func:`finish`, in sequence; the streaming engine runs the same stages over chunks.

    Parameters
    ----------
    dynamics : TrainingDynamics
    confidence, variability : ndarray (N,), optional
        Whole-run confidence and variability if already computed (for the assessment).
    method : {"noise_posterior", "confident_learning", "confidence"}
    window : "auto", "FIRST:LAST" or None
        ``"auto"`` chooses the window (memorisation aware); None uses every epoch.
    heldout_accuracy : array-like (E,), optional
        Held-out accuracy per recorded epoch; default: the run's metadata ``curve``, if any.
    threshold : float in (0, 1), optional
        Flag ``label_error_score >= threshold`` instead of the confident-learning count.
    regions : dict, optional
        Options of :func:`datacarto.regions.assign_regions` for the assessment.
    heldout : datacarto.store.HeldOut, optional
        Cross-fitted logits of every example (``datacarto run`` stores them in
        ``heldout.parquet``; :meth:`datacarto.Run.metrics` passes them). With them the score
        averages the window's in-sample probabilities with the held-out ones over the same
        epochs, and the fit check reads the held-out predictions.

    Returns
    -------
    dict
        ``label_error_score`` (N,) float in [0, 1], ``suggested_label`` (N,) int64,
        ``is_label_error`` (N,) bool, ``assessment`` (N,) object (one of
        :data:`ASSESSMENTS`), and ``info`` (plain, JSON-serialisable types): window,
        memorisation, memorisation_epoch, window_source, message, n_estimated_errors,
        calibration, unavailable.
    """
    method, _ = check_options(method=method, threshold=threshold)
    auto = method != "confident_learning" and isinstance(window, str) and window == "auto"
    acc = (dynamics.pred == dynamics.labels[:, None]).mean(axis=0) if auto else None
    plan = prepare(dynamics.n_examples, dynamics.epochs, acc, dynamics.meta,
                   n_classes=dynamics.n_classes, logits=dynamics.logits is not None,
                   method=method, window=window, heldout_accuracy=heldout_accuracy,
                   threshold=threshold, regions=regions, heldout=heldout)
    conf = dynamics.gold_prob.astype(np.float64).mean(axis=1) if confidence is None else confidence
    var = dynamics.gold_prob.astype(np.float64).std(axis=1) if variability is None else variability
    return finish(plan, chunk_probs(plan, dynamics), dynamics.labels, conf, var,
                  ids=dynamics.ids)


def _finish_legacy(plan: DetectionPlan, stats: dict[str, np.ndarray], labels: np.ndarray,
                   conf: np.ndarray) -> dict[str, Any]:
    """Version 0.1's detector (kept for comparison)."""
    k = plan.n_classes
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
        flagged = stats["vote_majority"] & (conf < 0.5)
        unavailable = ["logits", "entropy"]
    info = _Info(plan.window, int(flagged.sum()), "confident learning per-class thresholds on "
                 "epoch-averaged probabilities", unavailable)
    return {"label_error_score": 1.0 - conf, "suggested_label": suggested.astype(np.int64),
            "is_label_error": flagged, "info": info.as_dict()}


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


# ------------------------------------------------------------------------------ stability
def seed_stability(scores: list[Any]) -> dict[str, Any]:
    """Spearman rank correlation of label-error scores between runs (seeds) of the same data.

    Returns ``{"mean": mean pairwise correlation, "matrix": (R, R) array}``.

    Examples
    --------
    >>> seed_stability([[0.1, 0.5, 0.9], [0.2, 0.4, 0.8], [0.9, 0.5, 0.1]])["mean"]
    -0.3333333333333333
    """
    from .evaluation import rank_correlation

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
