"""Which epochs to trust: the epoch window the label-error score averages over, chosen so that
it ends before the network memorises the wrong labels (docs/contract.md §4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dynamics import select_epochs
from ..errors import InputError
from ..memorisation import MEMORISATION_GAP
from ..runmeta import RunMeta

#: Train-minus-held-out accuracy growth (after the best held-out epoch) that counts as
#: memorisation: the margin of :mod:`datacarto.memorisation`, defined there.
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


def all_epochs(epochs: np.ndarray) -> WindowChoice:
    """The window of every recorded epoch (``window=None``)."""
    return WindowChoice(int(epochs[0]), int(epochs[-1]), False, "all epochs",
                        "the score uses every recorded epoch")


def user_window(epochs: np.ndarray, window: str | tuple[int | None, int | None]) -> WindowChoice:
    """The recorded epochs inside a window given by hand (``"FIRST:LAST"`` or a pair)."""
    keep = select_epochs(epochs, window)
    kept = epochs[keep]
    return WindowChoice(int(kept[0]), int(kept[-1]), False, "user",
                        f"the score uses epochs {int(kept[0])}..{int(kept[-1])} (window given)")


def _running_mean(x: np.ndarray, width: int = 3) -> np.ndarray:
    out = np.empty(len(x))
    for i in range(len(x)):
        lo, hi = max(0, i - width // 2), min(len(x), i + width // 2 + 1)
        out[i] = x[lo:hi].mean()
    return out


def choose_window(train_accuracy: Any, heldout_accuracy: Any = None, *,
                  epochs: Any = None, n_examples: int | None = None) -> WindowChoice:
    """Pick the epoch window of the label-error score (memorisation awareness).

    A network first learns the patterns shared by the clean examples and later memorises the
    wrong labels one by one (Arpit et al. 2017); once it does, in-sample probabilities stop
    separating wrong labels from right ones. With a held-out accuracy per epoch the window is
    epochs ``1..m``: early stopping applied to the scores. Held-out and training accuracies are
    smoothed (running mean over ``max(3, E // 6)`` epochs); ``m`` is the latest epoch whose
    held-out accuracy is within :data:`HELDOUT_TOLERANCE` (0.01) of the best and whose
    train-minus-held-out gap has grown by at most :data:`GAP_GROWTH` (0.03) since the first
    such epoch. If ``m`` is the last epoch and held-out accuracy still rose by more than 0.01
    over the last third (an underfitting run, nothing memorised yet) the window is the last
    third of the run, ``floor(2E/3) + 1..E``: the latest probabilities are the most
    informative, the early, under-trained epochs only blur them. Without a held-out curve,
    memorisation is read from the training accuracy on the given labels: once the clean
    patterns are learned the rate ``-d log(1 - acc_e) / de`` falls; if it rises again (the
    model fits the remaining disagreements faster and faster) or the model fits (almost) every
    label, the window ends at the knee. Otherwise every epoch is used.

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
        peak = heldout_peak(held, best, width, ep)
        if memorised:
            # the growth of the gap, not a memorisation epoch: that has one definition
            # (datacarto.memorisation) and its own line
            msg = (f"{peak}, so the label-error score uses epochs {first}..{int(ep[best])}; "
                   f"after it training accuracy gains {gap[-1] - gap[best]:+.3f} on held-out "
                   f"accuracy ({acc[-1]:.3f} vs {held[-1]:.3f} at the end), so later epochs are "
                   "left out (possible memorisation)")
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
            msg = (f"{peak}, so the label-error score uses epochs "
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


def heldout_peak(heldout: np.ndarray, best: int, width: int, epochs: np.ndarray) -> str:
    """How the held-out curve peaks, in one wording: the raw best epoch and value, and, where
    the smoothed curve (running mean over ``width`` epochs) stays near its best longer, to
    which epoch (index ``best``) it does.

    Examples
    --------
    >>> heldout_peak(np.array([.70, .721, .718, .715]), 2, 3, np.arange(1, 5))
    'held-out accuracy peaks at epoch 2 (0.721; smoothed over 3 epochs it stays within 0.01 of its best up to epoch 3)'
    >>> heldout_peak(np.array([.70, .72, .71]), 1, 3, np.arange(1, 4))
    'held-out accuracy peaks at epoch 2 (0.720)'
    """
    top = int(np.argmax(heldout))
    if top == best:
        return f"held-out accuracy peaks at epoch {int(epochs[top])} ({heldout[top]:.3f})"
    return (f"held-out accuracy peaks at epoch {int(epochs[top])} ({heldout[top]:.3f}; smoothed "
            f"over {width} epochs it stays within {HELDOUT_TOLERANCE:.2f} of its best up to "
            f"epoch {int(epochs[best])})")


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


def heldout_from_meta(meta: RunMeta | Mapping[str, Any], epochs: np.ndarray) -> np.ndarray | None:
    """Held-out accuracy per recorded epoch from a run's metadata (``curve`` of datacarto run);
    ``meta`` is a run's :class:`~datacarto.runmeta.RunMeta` or its JSON form (a dict)."""
    doc = meta.to_json() if isinstance(meta, RunMeta) else meta
    for source in (doc, doc.get("extra") or {}):
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
