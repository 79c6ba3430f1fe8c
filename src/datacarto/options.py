"""The options of the metrics, as frozen dataclasses checked once, where they enter.

:func:`~datacarto.metrics.compute_metrics`, :meth:`datacarto.Run.metrics` and
:func:`~datacarto.engine.compute_run_metrics` take either these classes or the plain dicts
they always took (``regions={"method": "quantile"}``, ``label_errors={"window": "2:6"}``);
a dict is converted here, so a misspelt key is an :class:`~datacarto.errors.InputError`
naming it and the allowed keys, never a silent default.

Examples
--------
>>> LabelErrorOptions.from_value({"method": "confidence"}).method
'confidence'
>>> MetricsOptions.from_args(regions={"methd": "quantile"})
Traceback (most recent call last):
...
datacarto.errors.InputError: regions: unknown option 'methd'; allowed: method, min_scale, ambiguous_fraction, hard_fraction, variability_threshold, confidence_threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import InputError

__all__ = ["LabelErrorOptions", "MetricsOptions", "RegionOptions"]

#: ``LabelErrorOptions.heldout`` default: the run's own held-out logits when it has them.
FROM_RUN = "from run"


def _from_mapping(cls: type, value: Any, name: str) -> Any:
    """``cls(**value)`` for a dict (unknown keys -> InputError); ``cls()`` for None."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise InputError(f"{name}: expected a dict of options or a {cls.__name__}; got "
                         f"{type(value).__name__}.")
    allowed = [f.name for f in fields(cls)]
    for key in value:
        if key not in allowed:
            raise InputError(f"{name}: unknown option {key!r}; allowed: {', '.join(allowed)}.")
    return cls(**value)


def _number(value: Any, name: str, *, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            low <= float(value) <= high):
        raise InputError(f"regions: {name} must be a number in [{low:g}, {high:g}]; got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class RegionOptions:
    """Options of :func:`datacarto.regions.assign_regions` (same names and defaults)."""

    method: str = "corners"
    min_scale: float = 0.3
    ambiguous_fraction: float = 0.33
    hard_fraction: float = 0.33
    variability_threshold: float = 0.2
    confidence_threshold: float = 0.5

    def __post_init__(self) -> None:
        from ._validation import check_option
        from .regions import REGION_METHODS

        check_option(self.method, REGION_METHODS, name="method", where="assign_regions")
        _number(self.min_scale, "min_scale", low=0.0)
        for name in ("ambiguous_fraction", "hard_fraction", "confidence_threshold"):
            _number(getattr(self, name), name, low=0.0, high=1.0)
        _number(self.variability_threshold, "variability_threshold", low=0.0)

    @classmethod
    def from_value(cls, value: Any, name: str = "regions") -> RegionOptions:
        """From a RegionOptions, a dict of ``assign_regions`` keywords, or None (defaults)."""
        return _from_mapping(cls, value, name)

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LabelErrorOptions:
    """Options of :func:`datacarto.label_errors.detect_label_errors`.

    ``heldout`` defaults to :data:`FROM_RUN`: :meth:`datacarto.Run.metrics` then reads the
    run's ``heldout.parquet`` when it has one (none for a bare TrainingDynamics); None turns
    the held-out logits off. ``regions`` only shapes the detector's own notes; the metrics'
    ``assessment`` follows the metrics' ``regions``.
    """

    method: str = "noise_posterior"
    window: str | tuple[int | None, int | None] | None = "auto"
    heldout_accuracy: Any = None
    heldout: Any = FROM_RUN
    threshold: float | None = None
    regions: RegionOptions | None = None

    def __post_init__(self) -> None:
        from . import label_errors as le
        from .dynamics import parse_epoch_window

        method, threshold = le.check_options(method=self.method, threshold=self.threshold)
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "threshold", threshold)
        if not (self.window is None or (isinstance(self.window, str) and self.window == "auto")):
            parse_epoch_window(self.window)
        if self.regions is not None:
            object.__setattr__(self, "regions",
                               RegionOptions.from_value(self.regions, "label_errors.regions"))

    @classmethod
    def from_value(cls, value: Any, name: str = "label_errors") -> LabelErrorOptions:
        """From a LabelErrorOptions, a dict of ``detect_label_errors`` keywords, or None."""
        return _from_mapping(cls, value, name)

    @property
    def wants_run_heldout(self) -> bool:
        """Whether the run's held-out logits should be read (default, and a method uses them)."""
        return isinstance(self.heldout, str) and self.heldout == FROM_RUN and \
            self.method != "confident_learning"

    def detector_kwargs(self) -> dict[str, Any]:
        """Keywords of :func:`datacarto.label_errors.prepare`."""
        heldout = None if isinstance(self.heldout, str) and self.heldout == FROM_RUN else self.heldout
        return {"method": self.method, "window": self.window,
                "heldout_accuracy": self.heldout_accuracy, "heldout": heldout,
                "threshold": self.threshold,
                "regions": None if self.regions is None else self.regions.as_kwargs()}


@dataclass(frozen=True)
class MetricsOptions:
    """Everything that shapes a metrics frame besides the run: the epoch window, the
    Active-Bias variability (``include_ci``), the map's regions and the label-error detector."""

    epochs: str | tuple[int | None, int | None] | None = None
    include_ci: bool = False
    regions: RegionOptions = RegionOptions()
    label_errors: LabelErrorOptions = LabelErrorOptions()

    def __post_init__(self) -> None:
        from .dynamics import parse_epoch_window

        if self.epochs is not None:
            parse_epoch_window(self.epochs)
        if not isinstance(self.include_ci, bool):
            raise InputError(f"include_ci must be True or False; got {self.include_ci!r}.")
        object.__setattr__(self, "regions", RegionOptions.from_value(self.regions))
        object.__setattr__(self, "label_errors", LabelErrorOptions.from_value(self.label_errors))

    @classmethod
    def from_args(cls, *, epochs: Any = None, include_ci: bool = False, regions: Any = None,
                  label_errors: Any = None) -> MetricsOptions:
        """The public functions' keywords (dicts or dataclasses) as one checked object."""
        return cls(epochs=epochs, include_ci=include_ci, regions=RegionOptions.from_value(regions),
                   label_errors=LabelErrorOptions.from_value(label_errors))
