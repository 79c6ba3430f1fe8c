"""How the label-error detector runs: its options and its three stages (choose the window,
average each row range's probabilities, then score and flag every example at once), which the
streaming metrics engine runs over chunks."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dynamics import TrainingDynamics
from ..errors import InputError
from ..store import HeldOut
from ..probability import epoch_softmax_summary
from . import legacy
from .flagging import Info, check_fit, check_threshold, flag
from .noise_model import (NoiseModel, epoch_averaged_probs, heldout_probs, mix_heldout,
                          probs_from_stored)
from .window import WindowChoice, all_epochs, choose_window, heldout_from_meta, user_window

LABEL_ERROR_METHODS = ("noise_posterior", legacy.METHOD, "confidence")
DEFAULT_METHOD = "noise_posterior"
#: Keyword options of :func:`detect_label_errors` (and :func:`prepare`) besides the inputs.
OPTIONS = ("method", "window", "heldout_accuracy", "heldout", "threshold", "regions")
REGIONS_DEPRECATION = ("the label-error option 'regions' is deprecated and has no effect: the "
                       "assessment is made with the metrics frame's own regions (pass regions= "
                       "to compute_metrics or Run.metrics)")
_UNAVAILABLE_LOGITS = ["logits: the probabilities of classes other than the gold and runner-up "
                       "are spread evenly (noise model and suggestions are approximate)", "entropy"]
#: Rows per softmax slice in :func:`chunk_probs` (8192 x E=10 x K=10 float64 = 6.5 MB).
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
    heldout: HeldOut | None = None  # cross-fitted logits (datacarto run's side models)

    @property
    def keep(self) -> np.ndarray:
        """(E,) bool: the epochs of the window."""
        return (self.epochs >= self.window.first) & (self.epochs <= self.window.last)


def check_options(*, method: str = DEFAULT_METHOD, threshold: float | None = None,
                  **_: Any) -> tuple[str, float | None]:
    """Validate the options that need no data (method, threshold); returns them normalised."""
    from .._validation import check_option

    method = check_option(method, LABEL_ERROR_METHODS, name="method", where="detect_label_errors")
    return method, check_threshold(threshold)


def prepare(n_examples: int, epochs: Any, train_accuracy: Any = None,
            meta: dict[str, Any] | None = None, *, n_classes: int, logits: bool,
            method: str = DEFAULT_METHOD,
            window: str | tuple[int | None, int | None] | None = "auto",
            heldout_accuracy: Any = None, threshold: float | None = None,
            regions: dict[str, Any] | None = None, heldout: HeldOut | None = None
            ) -> DetectionPlan:
    """Stage 1 of :func:`detect_label_errors`: validate the options and choose the epoch window.

    Sends the deprecation warnings of ``method="confident_learning"`` and of ``regions`` (once
    per detector call: every path runs this stage once).

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
    if method == legacy.METHOD:
        legacy.warn_deprecated()
    if regions is not None:
        warnings.warn(REGIONS_DEPRECATION, DeprecationWarning, stacklevel=2)
    if method == legacy.METHOD or window is None:
        choice = all_epochs(ep)
    elif not (isinstance(window, str) and window == "auto"):
        choice = user_window(ep, window)
    else:
        if train_accuracy is None:
            raise InputError(f"{where}: window='auto' needs the training accuracy per epoch; "
                             "pass train_accuracy= to prepare().")
        held = heldout_accuracy
        if held is None:
            held = heldout_from_meta(meta or {}, ep)
        choice = choose_window(np.asarray(train_accuracy, dtype=np.float64), held, epochs=ep,
                               n_examples=n_examples)
    return DetectionPlan(method=method, threshold=thr, n_examples=int(n_examples),
                         n_classes=int(n_classes), epochs=ep, window=choice, logits=bool(logits),
                         heldout=heldout)


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
        rebuilt by :func:`~datacarto.label_errors.noise_model.probs_from_stored` without
        logits. ``"confident_learning"`` without logits instead gives
        :func:`~datacarto.label_errors.legacy.chunk_votes`. With ``entropy=True`` and logits,
        also ``entropy`` (n,): the mean predictive entropy from the same softmax pass.
    """
    is_legacy = plan.method == legacy.METHOD
    keep = None if is_legacy else plan.keep
    out: dict[str, np.ndarray] = {}
    if dynamics.logits is not None:
        if entropy:
            out["entropy"], out["probs"] = epoch_softmax_summary(dynamics.logits, keep)
        else:
            dyn = dynamics if keep is None else dynamics.window(plan.window.spec)
            assert dyn.logits is not None
            out["probs"] = epoch_averaged_probs(dyn.logits)
    elif is_legacy:
        out.update(legacy.chunk_votes(dynamics, plan.n_classes))
    else:
        out["probs"] = probs_from_stored(dynamics.window(plan.window.spec))
    return out


def finish(plan: DetectionPlan, stats: dict[str, np.ndarray], labels: np.ndarray,
           confidence: np.ndarray, variability: np.ndarray | None = None,
           ids: np.ndarray | None = None) -> dict[str, Any]:
    """Stage 3 of :func:`detect_label_errors`: noise model, scores, flags and fit check.

    Needs every example at once (the noise model's per-class thresholds, the flag count).
    ``stats`` holds :func:`chunk_probs`' results for all N examples (chunks concatenated in
    row order); ``labels`` and ``confidence`` are (N,) (``confidence`` is the score of
    ``"confident_learning"`` only); ``variability`` is not used (the assessment, which needed
    it, is the metrics frame's); ``ids`` (N,), needed with ``plan.heldout``, checks that the
    held-out rows are the same examples. Returns what :func:`detect_label_errors` returns.

    With held-out probabilities ``H_i`` the noise model reads ``(P_i + H_i) / 2`` (or ``H_i``
    alone when the window has memorised the labels:
    :func:`~datacarto.label_errors.noise_model.mix_heldout`) and the fit check reads ``H_i``.
    """
    if plan.method == legacy.METHOD:
        return legacy.finish(stats, labels, confidence, n_classes=plan.n_classes,
                             window=plan.window)
    k = plan.n_classes
    n = len(labels)
    probs = stats["probs"]
    held = None if plan.heldout is None else heldout_probs(plan.heldout, plan.window, ids)
    sources = "in-sample"
    if held is not None:
        probs, sources = mix_heldout(probs, held, labels)
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
    flagged, calibration = flag(score, model.n_errors, plan.threshold, fit, source)
    unavailable = [] if plan.logits else list(_UNAVAILABLE_LOGITS)
    info = Info(plan.window, model.n_errors, calibration, unavailable, fit)
    return {"label_error_score": score, "suggested_label": suggested,
            "is_label_error": flagged, "info": info.as_dict(), "probs": probs}


def detect_label_errors(dynamics: TrainingDynamics, *, confidence: np.ndarray | None = None,
                        variability: np.ndarray | None = None, method: str = DEFAULT_METHOD,
                        window: str | tuple[int | None, int | None] | None = "auto",
                        heldout_accuracy: Any = None, threshold: float | None = None,
                        regions: dict[str, Any] | None = None,
                        heldout: HeldOut | None = None) -> dict[str, Any]:
    """Score, suggested label and calibrated flag for every example (docs/label-errors.md).

    The three stages :func:`prepare`, :func:`chunk_probs` (here over one chunk: every example)
    and :func:`finish`, in sequence; the streaming engine runs the same stages over chunks.

    Parameters
    ----------
    dynamics : TrainingDynamics
    confidence : ndarray (N,), optional
        Whole-run confidence if already computed (the score of ``"confident_learning"``).
    variability : ndarray (N,), optional
        Not used (kept so that existing calls work): the ``assessment`` is a column of the
        metrics frame (:func:`datacarto.compute_metrics`), made from its own regions.
    method : {"noise_posterior", "confident_learning", "confidence"}
        ``"confidence"``: ``1 - P_i[y_i]`` over the window, with the default's flags.
        ``"confident_learning"`` (deprecated: a ``DeprecationWarning``): datacarto 0.1's
        ``1 - confidence`` over all epochs with confident-learning per-class thresholds
        (:mod:`datacarto.label_errors.legacy`).
    window : "auto", "FIRST:LAST" or None
        ``"auto"`` chooses the window (memorisation aware); None uses every epoch.
    heldout_accuracy : array-like (E,), optional
        Held-out accuracy per recorded epoch; default: the run's metadata ``curve``, if any.
    threshold : float in (0, 1), optional
        Flag ``label_error_score >= threshold`` instead of the confident-learning count.
    regions : dict, optional
        Deprecated, no effect (a ``DeprecationWarning``): pass ``regions=`` to
        :func:`datacarto.compute_metrics` or :meth:`datacarto.Run.metrics`.
    heldout : datacarto.store.HeldOut, optional
        Cross-fitted logits of every example (``datacarto run`` stores them in
        ``heldout.parquet``; :meth:`datacarto.Run.metrics` passes them). With them the score
        averages the window's in-sample probabilities with the held-out ones over the same
        epochs, and the fit check reads the held-out predictions.

    Returns
    -------
    dict
        ``label_error_score`` (N,) float in [0, 1], ``suggested_label`` (N,) int64,
        ``is_label_error`` (N,) bool, ``probs`` (N, K) float64 (the probabilities ``P_i``
        the noise model read; absent for the deprecated ``"confident_learning"``), and
        ``info`` (plain, JSON-serialisable types): fit, window, memorisation,
        memorisation_epoch, window_source, message, n_estimated_errors, calibration,
        unavailable.
    """
    method, _ = check_options(method=method, threshold=threshold)
    auto = method != legacy.METHOD and isinstance(window, str) and window == "auto"
    acc = (dynamics.pred == dynamics.labels[:, None]).mean(axis=0) if auto else None
    plan = prepare(dynamics.n_examples, dynamics.epochs, acc, dynamics.meta,
                   n_classes=dynamics.n_classes, logits=dynamics.logits is not None,
                   method=method, window=window, heldout_accuracy=heldout_accuracy,
                   threshold=threshold, regions=regions, heldout=heldout)
    conf = dynamics.gold_prob.astype(np.float64).mean(axis=1) if confidence is None else confidence
    return finish(plan, chunk_probs(plan, dynamics), dynamics.labels, conf, variability,
                  ids=dynamics.ids)
