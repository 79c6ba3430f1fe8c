"""The settings of one recording, declared and validated once (docs/contract.md §3).

:class:`~datacarto.Recorder`, the adapters' shared core and every adapter take these settings
as keyword arguments (``capture=``, ``inputs=``, ``classes=``, ...), build one
:class:`RecordingConfig` from them and pass that object on. Invalid settings raise
:class:`~datacarto.errors.InputError` when the config is built, naming the option, the
allowed values and the caller (``where``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any

import numpy as np

from . import store
from ._validation import check_option
from .errors import InputError
from .runmeta import CAPTURE_MODES

__all__ = ["CAPTURE_MODES", "DEFAULT_MAX_PENDING_ROWS", "DUPLICATE_POLICIES", "INPUT_KINDS",
           "RecordingConfig"]

INPUT_KINDS = ("logits", "probs")
DUPLICATE_POLICIES = ("error", "first")
#: Pending rows kept in memory before a spill to disk (2**20 rows x K=10 float32 logits = 40 MB).
DEFAULT_MAX_PENDING_ROWS = 1 << 20


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class RecordingConfig:
    """What a recording stores and how: one immutable, validated object.

    Parameters
    ----------
    capture : {"pass", "eval"}
        Logits from the training forward pass, or from an extra inference pass at epoch end.
    inputs : {"logits", "probs"}
        What the recorder receives; probabilities are stored as log-probabilities.
    classes : sequence of str, optional
        Class names; defines K (stored as a tuple of str).
    num_classes : int, optional
        K when no names are given (names become "0".."K-1"); at least 2. With ``classes``,
        set to ``len(classes)``. Neither: K comes from the first batch.
    seed : int, optional
        Stored in the run's metadata.
    meta : mapping, optional
        Extra metadata stored in ``run.json`` (copied; treat as read-only).
    on_duplicate : {"error", "first"} or None
        An id seen twice in one epoch with different outputs: raise, or keep the first row.
        ``None``: "error" in one process, "first" when several ranks record
        (:meth:`duplicate_policy`).
    max_logit_classes : int
        Store full logits when K is at most this.
    planned_epochs : int, optional
        Epochs the training will run, so that a run stopped early says so.
    max_pending_rows : int
        Rows of an epoch kept in memory before they are spilled to disk.
    data_fingerprint : str, optional
        Fingerprint of the training data, stored in ``run.json``.
    where : str
        Not stored: names the caller in error messages (e.g. ``"LoopRecorder"``).

    Examples
    --------
    >>> cfg = RecordingConfig(classes=["neg", "pos"], capture="eval")
    >>> cfg.num_classes, cfg.classes
    (2, ('neg', 'pos'))
    >>> RecordingConfig(inputs="prob", where="MyAdapter")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    datacarto.errors.InputError: The 'inputs' parameter of MyAdapter must be one of ... 'probs'?
    """

    capture: str = "pass"
    inputs: str = "logits"
    classes: tuple[str, ...] | None = None
    num_classes: int | None = None
    seed: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    on_duplicate: str | None = None
    max_logit_classes: int = store.DEFAULT_MAX_LOGIT_CLASSES
    planned_epochs: int | None = None
    max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS
    data_fingerprint: str | None = None
    where: InitVar[str] = "RecordingConfig"

    def __post_init__(self, where: str) -> None:
        check_option(self.capture, CAPTURE_MODES, name="capture", where=where)
        check_option(self.inputs, INPUT_KINDS, name="inputs", where=where)
        if self.on_duplicate is not None:
            check_option(self.on_duplicate, DUPLICATE_POLICIES, name="on_duplicate", where=where)
        classes, k = self.classes, self.num_classes
        if classes is not None:
            if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
                raise InputError(f"{where}: classes must be a list of class names; got "
                                 f"{classes!r}.")
            classes = tuple(str(c) for c in classes)
        if k is not None and not _is_int(k):
            raise InputError(f"{where}: num_classes must be an integer >= 2; got {k!r}.")
        if classes is not None and k is not None and len(classes) != k:
            raise InputError(f"{where}: classes has {len(classes)} names but num_classes is {k}.")
        if classes is not None:
            k = len(classes)
        if k is not None and k < 2:
            raise InputError(f"{where}: num_classes must be at least 2; got {k}.")
        for name, value, optional, low in (("seed", self.seed, True, None),
                                           ("max_logit_classes", self.max_logit_classes, False, 0),
                                           ("planned_epochs", self.planned_epochs, True, 1),
                                           ("max_pending_rows", self.max_pending_rows, False, 1)):
            if optional and value is None:
                continue
            if not _is_int(value) or (low is not None and value < low):
                what = {None: "an integer", 0: "a non-negative integer",
                        1: "a positive integer"}[low]
                raise InputError(f"{where}: {name} must be {what}; got {value!r}.")
        if self.data_fingerprint is not None and not isinstance(self.data_fingerprint, str):
            raise InputError(f"{where}: data_fingerprint must be a string; got "
                             f"{self.data_fingerprint!r}.")
        if not isinstance(self.meta, Mapping):
            raise InputError(f"{where}: meta must be a dict of extra metadata; got "
                             f"{type(self.meta).__name__}.")
        normal = {"classes": classes, "num_classes": None if k is None else int(k),
                  "seed": None if self.seed is None else int(self.seed),
                  "meta": dict(self.meta)}
        for name, value in normal.items():
            object.__setattr__(self, name, value)  # frozen: normalise once, here

    def replace(self, *, where: str = "RecordingConfig", **changes: Any) -> RecordingConfig:
        """A copy with ``changes`` applied, validated again.

        ``num_classes`` follows new ``classes`` unless both are given.
        """
        if "classes" in changes and "num_classes" not in changes:
            changes["num_classes"] = None
        return dataclasses.replace(self, where=where, **changes)

    def with_meta(self, **extra: Any) -> RecordingConfig:
        """A copy whose ``meta`` is ``{**extra, **meta}``: the user's own keys win."""
        return self.replace(meta={**extra, **self.meta})

    def duplicate_policy(self, world_size: int = 1) -> str:
        """``on_duplicate``, or its default: "first" under data parallelism (samplers pad ranks
        with repeated examples), else "error"."""
        if self.on_duplicate is not None:
            return self.on_duplicate
        return "first" if world_size > 1 else "error"
