"""Per-example training-dynamics metrics (docs/contract.md §2).

Arrays are (n_examples, n_epochs[, n_classes]); results are (n_examples,) in the input's row
order (for a run: ascending id). Public functions validate their input once and call a private
twin that assumes valid input; pipelines call the twins. Everything is computed in float64.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_float_array, check_labels, to_numpy
from .dynamics import TrainingDynamics
from .errors import InputError
from .options import LabelErrorOptions, MetricsOptions, RegionOptions
from .probability import epoch_softmax_summary
from .regions import REGIONS, region_codes

__all__ = ["ASSESSMENT_NAMES", "MetricsState", "aggregate_runs", "assessment_codes", "aum",
           "chunk_stats", "compute_metrics", "confidence", "correctness", "entropy",
           "first_learned_epoch", "forgetting_events", "never_learned", "threshold_closeness",
           "variability"]

#: Columns that are averaged (and get a ``_std``) when aggregating several runs.
NUMERIC_COLUMNS = ("confidence", "variability", "correctness", "forgetting_events",
                   "threshold_closeness", "aum", "entropy", "mean_loss", "label_error_score",
                   "missing_class_score")


def _probs(x: Any, name: str = "gold_probs") -> np.ndarray:
    return check_float_array(x, name=name, ndim=2, low=0.0, high=1.0)


def _bool2d(x: Any, name: str = "correct") -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"{name} must be a non-empty 2-D (n_examples, n_epochs) array; got shape "
                         f"{arr.shape}.")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise InputError(f"{name} must hold booleans (or 0/1).")
        arr = arr.astype(bool)
    return arr


def confidence(gold_probs: Any, /) -> np.ndarray:
    """Mean gold-label probability across epochs: ``mu_i = (1/E) sum_e p_ie``.

    Examples
    --------
    >>> confidence([[0.2, 0.6], [0.9, 0.9]])
    array([0.4, 0.9])
    """
    return _confidence(_probs(gold_probs))


def _confidence(p: np.ndarray) -> np.ndarray:
    return p.mean(axis=1)


def variability(gold_probs: Any, /, *, include_ci: bool = False) -> np.ndarray:
    """Spread of the gold-label probability across epochs.

    ``sigma_i = sqrt((1/E) sum_e (p_ie - mu_i)^2)``: the population std (ddof=0), as in
    Swayamdipta et al. (2020). With ``include_ci`` the Active-Bias variant (allenai's
    ``--include_ci``): ``sqrt(v + v^2 / (E - 1))`` with ``v = sigma_i^2``.

    Examples
    --------
    >>> variability([[0.2, 0.6], [0.9, 0.9]])
    array([0.2, 0. ])
    """
    p = _probs(gold_probs)
    if include_ci and p.shape[1] < 2:
        raise InputError("variability(include_ci=True) needs at least 2 epochs; got 1.")
    return _variability(p, include_ci=include_ci)


def _variability(p: np.ndarray, *, include_ci: bool = False) -> np.ndarray:
    v = p.var(axis=1)
    if include_ci and p.shape[1] > 1:
        return np.sqrt(v + v * v / (p.shape[1] - 1))
    return np.sqrt(v)


def correctness(preds: Any, labels: Any, /) -> np.ndarray:
    """Fraction of epochs whose argmax equals the gold label: ``(1/E) sum_e 1[yhat_ie = y_i]``.

    Examples
    --------
    >>> correctness([[1, 0, 0], [2, 2, 2]], [0, 1])
    array([0.66666667, 0.        ])
    """
    pred = to_numpy(preds)
    if pred.ndim != 2 or pred.size == 0:
        raise InputError(f"preds must be a non-empty 2-D (n_examples, n_epochs) array; got shape "
                         f"{pred.shape}.")
    lab = check_labels(labels, n_classes=None)
    if len(lab) != pred.shape[0]:
        raise InputError(f"labels has {len(lab)} entries but preds has {pred.shape[0]} rows.")
    return _correctness(pred == lab[:, None])


def _correctness(correct: np.ndarray) -> np.ndarray:
    return correct.mean(axis=1, dtype=np.float64)


def forgetting_events(correct: Any, /) -> np.ndarray:
    """Count of epochs e >= 2 with ``correct[e-1] and not correct[e]`` (Toneva et al. 2019).

    Examples
    --------
    >>> forgetting_events([[True, False, True, False], [False, False, False, False]])
    array([2, 0])
    """
    return _forgetting_events(_bool2d(correct))


def _forgetting_events(c: np.ndarray) -> np.ndarray:
    return (c[:, :-1] & ~c[:, 1:]).sum(axis=1).astype(np.int64)


def never_learned(correct: Any, /) -> np.ndarray:
    """True for examples never predicted correctly in any epoch (allenai writes forgetfulness 1000)."""
    return ~_bool2d(correct).any(axis=1)


def first_learned_epoch(correct: Any, /, epochs: Any = None) -> np.ndarray:
    """First epoch from which the example stays correct to the end; NaN if wrong at the last epoch.

    Examples
    --------
    >>> first_learned_epoch([[False, True, True], [True, False, True], [True, True, False]])
    array([ 2.,  3., nan])
    """
    c = _bool2d(correct)
    ep = np.arange(1, c.shape[1] + 1) if epochs is None else to_numpy(epochs)
    if len(ep) != c.shape[1]:
        raise InputError(f"epochs has {len(ep)} entries but correct has {c.shape[1]} columns.")
    return _first_learned_epoch(c, np.asarray(ep, dtype=np.float64))


def _first_learned_epoch(c: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    n_epochs = c.shape[1]
    rev = c[:, ::-1]
    # length of the run of correct epochs at the end of training
    trailing = np.where(rev.all(axis=1), n_epochs, np.argmin(rev, axis=1))
    out = np.full(c.shape[0], np.nan)
    learned = trailing > 0
    out[learned] = epochs[n_epochs - trailing[learned]]
    return out


def threshold_closeness(confidence: Any, /) -> np.ndarray:
    """``mu_i (1 - mu_i)``: largest (0.25) for examples at the decision threshold.

    Examples
    --------
    >>> threshold_closeness([0.5, 1.0])
    array([0.25, 0.  ])
    """
    mu = check_float_array(confidence, name="confidence", ndim=1, low=0.0, high=1.0)
    return mu * (1.0 - mu)


def aum(margins: Any, /, *, skip_first: bool = True) -> np.ndarray:
    """Area under the margin (Pleiss et al. 2020): mean over epochs of ``z[y] - max_{k != y} z[k]``.

    Computed on logits. With ``skip_first`` (the default; docs/contract.md §2) the first recorded epoch
    is left out when there is more than one.

    Examples
    --------
    >>> aum([[-5.0, 1.0, 3.0]])
    array([2.])
    """
    return _aum(check_float_array(margins, name="margins", ndim=2), skip_first=skip_first)


def _aum(m: np.ndarray, *, skip_first: bool = True) -> np.ndarray:
    if skip_first and m.shape[1] > 1:
        m = m[:, 1:]
    return m.mean(axis=1, dtype=np.float64)


def entropy(logits: Any, /) -> np.ndarray:
    """Mean over epochs of the predictive entropy ``-sum_k q_k log q_k``, ``q = softmax(z)`` (nats).

    ``logits`` is (n_examples, n_epochs, n_classes).

    Examples
    --------
    >>> entropy([[[0.0, 0.0]]]).round(4)
    array([0.6931])
    """
    return _entropy(check_float_array(logits, name="logits", ndim=3))


def _entropy(z: np.ndarray) -> np.ndarray:
    return epoch_softmax_summary(z)[0]


def _row_metrics(dynamics: TrainingDynamics, *, include_ci: bool = False) -> dict[str, np.ndarray]:
    """The per-example columns of :func:`compute_metrics` that need only the row's own epochs.

    Every column is a row-wise reduction, so a run computed chunk by chunk gives
    bit-identical results. Returns (n,) arrays: confidence, variability, correctness,
    forgetting_events, never_learned, first_learned_epoch (float, NaN = never), aum, mean_loss.
    """
    p = dynamics.gold_prob.astype(np.float64)
    correct = dynamics.pred == dynamics.labels[:, None]
    return {
        "confidence": _confidence(p),
        "variability": _variability(p, include_ci=include_ci),
        "correctness": _correctness(correct),
        "forgetting_events": _forgetting_events(correct),
        "never_learned": ~correct.any(axis=1),
        "first_learned_epoch": _first_learned_epoch(correct, dynamics.epochs.astype(float)),
        "aum": _aum(dynamics.margin.astype(np.float64)),
        "mean_loss": dynamics.loss.astype(np.float64).mean(axis=1),
    }


@dataclass(frozen=True)
class ChunkPlan:
    """What one chunk's statistics need (small and picklable: it travels to dask workers)."""

    include_ci: bool
    detector: Any  # datacarto.label_errors.DetectionPlan


def chunk_stats(plan: ChunkPlan, dynamics: TrainingDynamics) -> dict[str, np.ndarray]:
    """Per-example statistics of any row range of a run (all its epochs): a pure function.

    ``id``, ``label``, the columns of :func:`_row_metrics` and the label-error detector's
    per-example inputs (:func:`datacarto.label_errors.chunk_probs`), whose one softmax pass
    over the logits also gives the ``entropy``. Row-wise, so chunks concatenated in row order
    equal the whole run.
    """
    from . import label_errors as le

    out = {"id": dynamics.ids, "label": dynamics.labels}
    out.update(_row_metrics(dynamics, include_ci=plan.include_ci))
    out.update(le.chunk_probs(plan.detector, dynamics, entropy=True))
    return out


class MetricsState:
    """The metrics of one run, updated chunk by chunk and computed once.

    Created with what is known before any example is read (the options, N, the epoch numbers,
    the classes, whether logits are stored, the per-epoch training accuracy
    ``mean_i 1[pred_ie = y_i]`` and the run's metadata); the detector's epoch window is chosen
    then (:func:`datacarto.label_errors.prepare`). :meth:`update` (or :func:`chunk_stats`
    anywhere, then :meth:`add`) takes the rows ``start:start + n`` of every epoch; chunks may
    arrive in any order and from several threads. :meth:`compute` then runs what needs every
    example at once: the label-error noise model and flags
    (:func:`datacarto.label_errors.finish`), the regions and the assessment.

    In memory, a whole :class:`~datacarto.dynamics.TrainingDynamics` is one chunk
    (:meth:`for_dynamics`); :mod:`datacarto.engine` feeds chunks read from the shards.
    """

    def __init__(self, options: MetricsOptions, *, n_examples: int, epochs: Any,
                 classes: Sequence[str], logits: bool, train_accuracy: Any,
                 meta: Any = None) -> None:
        from . import label_errors as le

        self.options = options
        self.n = int(n_examples)
        self.epochs = np.asarray(epochs, dtype=np.int64)
        self.classes = tuple(classes)
        if len(self.epochs) == 1:
            warnings.warn("only 1 epoch recorded: variability is 0 for every example",
                          UserWarning, stacklevel=3)
        detector = le.prepare(self.n, self.epochs, train_accuracy, meta,
                              n_classes=len(self.classes), logits=logits,
                              **options.label_errors.detector_kwargs())
        self.plan = ChunkPlan(include_ci=options.include_ci, detector=detector)
        self._arrays: dict[str, np.ndarray] = {}
        self._rows = 0
        self._lock = threading.Lock()

    @classmethod
    def for_dynamics(cls, options: MetricsOptions, dynamics: TrainingDynamics) -> MetricsState:
        """A state for the examples of ``dynamics`` (to be given to :meth:`update` whole)."""
        accuracy = (dynamics.pred == dynamics.labels[:, None]).mean(axis=0)
        return cls(options, n_examples=dynamics.n_examples, epochs=dynamics.epochs,
                   classes=dynamics.classes, logits=dynamics.logits is not None,
                   train_accuracy=accuracy, meta=dynamics.meta)

    def update(self, dynamics: TrainingDynamics, start: int = 0) -> None:
        """Add rows ``start:start + n`` of the run (every epoch of the state)."""
        self.add(chunk_stats(self.plan, dynamics), start)

    def add(self, stats: dict[str, np.ndarray], start: int = 0) -> None:
        """Add :func:`chunk_stats` of rows ``start:start + n`` (thread-safe: disjoint rows)."""
        n = len(stats["id"])
        if n == self.n and not self._arrays:  # one chunk holds every row: nothing to place
            self._arrays.update(stats)
            self._rows = n
            return
        for name, value in stats.items():
            arr = self._arrays.get(name)
            if arr is None:
                with self._lock:
                    arr = self._arrays.get(name)
                    if arr is None:
                        arr = np.empty((self.n,) + value.shape[1:], dtype=value.dtype)
                        self._arrays[name] = arr
            arr[start:start + n] = value
        with self._lock:
            self._rows += n

    def compute(self) -> pd.DataFrame:
        """The metrics frame (see :func:`compute_metrics`), once every row was added."""
        from . import label_errors as le

        if self._rows != self.n:
            raise InputError(f"MetricsState.compute: {self._rows} of {self.n} examples were "
                             "added; add every chunk first.")
        r = self._arrays
        conf, var = r["confidence"], r["variability"]
        stats = {k: r.pop(k) for k in ("probs", "suggested_label", "vote_majority") if k in r}
        flags = le.finish(self.plan.detector, stats, r["label"], conf, var, ids=r["id"])
        probs = flags.pop("probs", None)  # the deprecated legacy method keeps its own
        if probs is None:
            probs = stats.get("probs")
        del stats
        r["missing_class_score"] = self._missing_class_score(probs, r)
        del probs
        region = region_codes(conf, var, **self.options.regions.as_kwargs())
        return _assemble_frame(r, region, flags, self.classes, self.epochs)

    def _missing_class_score(self, probs: np.ndarray | None,
                             r: dict[str, np.ndarray]) -> np.ndarray:
        """The ``missing_class_score`` column (:mod:`datacarto.classes.score`) from the
        probabilities the label-error detector read (``probs``: in-sample mixed with held-out,
        made once in :func:`datacarto.label_errors.finish`); NaN without stored logits."""
        from .classes.score import _missing_class_score

        if "entropy" not in r or probs is None:
            return np.full(self.n, np.nan)
        return _missing_class_score(probs, r["entropy"])


#: Values of the ``assessment`` column, by code: flagged, else the region (:data:`REGIONS`).
ASSESSMENT_NAMES = ("likely mislabeled", *REGIONS)


def assessment_codes(is_label_error: Any, region_codes: np.ndarray) -> np.ndarray:
    """The ``assessment`` column as indices into :data:`ASSESSMENT_NAMES`.

    The one definition (docs/contract.md §2): ``'likely mislabeled'`` (0) where the
    label-error flag is set, else the example's region (``1 + region code``).
    """
    return np.where(np.asarray(is_label_error, dtype=bool), 0,
                    np.asarray(region_codes) + 1).astype(np.int8)


def _names(names: np.ndarray, codes: np.ndarray) -> Any:
    """``names[codes]`` as the column pandas makes of it, without creating N Python strings."""
    import pyarrow as pa

    inferred = pd.Series(names[:1]).dtype  # what pandas makes of an object array of str
    if isinstance(inferred, pd.StringDtype) and inferred.storage == "pyarrow":
        column = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                                pa.array(list(names), pa.large_string()))
        return pd.array(column.cast(pa.large_string()), dtype=inferred)
    return names[codes]


def _assemble_frame(columns: dict[str, np.ndarray], regions: np.ndarray, flags: dict[str, Any],
                    classes: Sequence[str], epochs: np.ndarray) -> pd.DataFrame:
    """The DataFrame of :func:`compute_metrics` from the per-row statistics of every chunk.

    ``regions``: (N,) region codes (:func:`datacarto.regions.region_codes`); ``flags``: the label-error detector's result, whose
    ``info`` goes to ``attrs["label_errors"]``.
    """
    names = np.asarray(classes, dtype=object)
    conf = columns["confidence"]
    labels = columns["label"]
    frame = pd.DataFrame(copy=False, data={
        "id": columns["id"],
        "label": labels,
        "label_name": _names(names, labels),
        "confidence": conf,
        "variability": columns["variability"],
        "correctness": columns["correctness"],
        "forgetting_events": columns["forgetting_events"],
        "never_learned": columns["never_learned"],
        "first_learned_epoch": pd.array(columns["first_learned_epoch"], dtype="Int64"),
        "threshold_closeness": conf * (1.0 - conf),
        "aum": columns["aum"],
        "entropy": columns.get("entropy", np.nan),
        "mean_loss": columns["mean_loss"],
    })
    frame["region"] = _names(np.array(REGIONS, dtype=object), regions)
    frame["label_error_score"] = flags["label_error_score"]
    frame["suggested_label"] = flags["suggested_label"]
    frame["suggested_label_name"] = _names(names, flags["suggested_label"])
    frame["is_label_error"] = flags["is_label_error"]
    # from this frame's own region column, so that it follows the `regions` options
    frame["assessment"] = _names(np.array(ASSESSMENT_NAMES, dtype=object),
                                 assessment_codes(flags["is_label_error"], regions))
    frame["missing_class_score"] = columns.get("missing_class_score", np.nan)
    frame.attrs["epochs"] = [int(e) for e in epochs]
    frame.attrs["classes"] = list(classes)
    frame.attrs["label_errors"] = flags["info"]
    return frame


def compute_metrics(dynamics: TrainingDynamics, *, include_ci: bool = False,
                    regions: RegionOptions | dict[str, Any] | None = None,
                    label_errors: LabelErrorOptions | dict[str, Any] | None = None
                    ) -> pd.DataFrame:
    """Every per-example column of docs/contract.md §2 as a DataFrame, one row per id (ascending).

    Columns: id, label, label_name, confidence, variability, correctness, forgetting_events,
    never_learned, first_learned_epoch, threshold_closeness, aum, entropy (NaN without stored
    logits), mean_loss, region, label_error_score, suggested_label, suggested_label_name,
    is_label_error, assessment ('likely mislabeled', else the region: 'ambiguous', 'hard',
    'easy'), missing_class_score (NaN without stored logits). ``attrs``: epochs, classes, label_errors (the detector's ``info``: epoch window,
    memorisation message, flag calibration, components unavailable from the run).

    ``regions`` and ``label_errors`` (:class:`~datacarto.options.RegionOptions`,
    :class:`~datacarto.options.LabelErrorOptions`, or dicts of their fields) pass options to
    :func:`datacarto.regions.assign_regions` and
    :func:`datacarto.label_errors.detect_label_errors`. The whole run is one chunk of
    :class:`MetricsState`, as in the streaming engine.
    """
    options = MetricsOptions.from_args(include_ci=include_ci, regions=regions,
                                       label_errors=label_errors)
    state = MetricsState.for_dynamics(options, dynamics)
    state.update(dynamics)
    return state.compute()


def aggregate_runs(frames: list[pd.DataFrame], *,
                   regions: RegionOptions | dict[str, Any] | None = None) -> pd.DataFrame:
    """Mean and population std of every numeric metric across runs of the same data, per id.

    Each numeric column keeps its name for the mean and gains ``<name>_std``; ``n_runs`` counts
    the runs. Regions are recomputed from the mean confidence and variability; the label-error
    flag is kept where at least half the runs flag it (:func:`datacarto.label_errors.stable_flags`
    with ``min_fraction=0.5``), with the most frequent suggestion; ``assessment`` is
    'likely mislabeled' for flagged rows, else the region. With several runs,
    ``attrs["seed_stability"]`` holds :func:`datacarto.label_errors.seed_stability` of the
    label-error scores (``mean``: mean pairwise Spearman correlation; ``matrix``: nested lists).
    """
    from .label_errors import seed_stability, stable_flags

    if not frames:
        raise InputError("aggregate_runs needs at least one metrics frame.")
    base = frames[0]
    for i, other in enumerate(frames[1:], start=2):
        if len(other) != len(base) or not np.array_equal(other["id"].to_numpy(), base["id"].to_numpy()):
            raise InputError(f"aggregate_runs: run {i} has different ids from run 1; aggregate only "
                             "runs over the same examples.")
        if not np.array_equal(other["label"].to_numpy(), base["label"].to_numpy()):
            raise InputError(f"aggregate_runs: run {i} has different labels from run 1.")
    out = base[["id", "label", "label_name"]].copy()
    cols = [c for c in NUMERIC_COLUMNS if c in base.columns]
    for col in cols:
        stack = np.stack([f[col].to_numpy(dtype=np.float64) for f in frames])
        out[col] = stack.mean(axis=0)
        out[f"{col}_std"] = stack.std(axis=0)
    out["n_runs"] = len(frames)
    region = region_codes(out["confidence"].to_numpy(), out["variability"].to_numpy(),
                          **RegionOptions.from_value(regions).as_kwargs())
    out["region"] = _names(np.array(REGIONS, dtype=object), region)
    out["is_label_error"] = stable_flags([f["is_label_error"].to_numpy(dtype=bool) for f in frames],
                                         min_fraction=0.5)
    suggestions = np.stack([f["suggested_label"].to_numpy() for f in frames])
    k = int(suggestions.max()) + 1
    counts = np.zeros((len(base), k), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(base)), len(frames)), suggestions.T.reshape(-1)), 1)
    out["suggested_label"] = counts.argmax(axis=1)
    names = np.asarray(base.attrs.get("classes") or sorted(set(base["label_name"])), dtype=object)
    if len(names) > out["suggested_label"].max():
        out["suggested_label_name"] = names[out["suggested_label"].to_numpy()]
    out["assessment"] = _names(np.array(ASSESSMENT_NAMES, dtype=object),
                               assessment_codes(out["is_label_error"].to_numpy(), region))
    out.attrs.update(base.attrs)
    if len(frames) > 1:
        # each run chose its own window and calibration; say how the flags were combined
        out.attrs["label_errors"] = {
            "message": f"scores averaged over {len(frames)} runs; flagged where at least half of "
                       "the runs flag the example",
            "calibration": "majority of the runs' own calibrated flags",
            "fit": (base.attrs.get("label_errors") or {}).get("fit"),
            "unavailable": sorted({u for f in frames
                                   for u in (f.attrs.get("label_errors") or {}).get("unavailable", [])})}
    if len(frames) > 1 and "label_error_score" in base.columns:
        stability = seed_stability([f["label_error_score"].to_numpy(dtype=np.float64)
                                    for f in frames])
        out.attrs["seed_stability"] = {"mean": float(stability["mean"]),
                                       "matrix": np.asarray(stability["matrix"]).tolist()}
    return out
