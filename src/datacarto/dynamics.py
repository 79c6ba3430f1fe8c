"""TrainingDynamics: what a run recorded, as aligned numpy arrays.

Notation (docs/contract.md §1): N examples, E recorded epochs, K classes. Per-epoch arrays are
(N, E); full logits are (N, E, K); per-example arrays are (N,). Rows are in ascending id
order, the same order in every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class TrainingDynamics:
    """Aligned per-example, per-epoch records of one training run.

    Attributes
    ----------
    ids : ndarray (N,)
        The user's example ids (int64 or str), ascending.
    labels : ndarray (N,) int64
        Gold label index y_i.
    gold_prob : ndarray (N, E) float32
        p_ie = softmax(z_ie)[y_i].
    pred : ndarray (N, E) int32
        argmax_k z_ie[k] (ties to the lowest index).
    runner_up : ndarray (N, E) int32
        argmax_{k != y_i} z_ie[k]: the class the model prefers after the gold one.
    margin : ndarray (N, E) float32
        z_ie[y_i] - max_{k != y_i} z_ie[k] (the AUM margin).
    loss : ndarray (N, E) float32
        Cross-entropy -log p_ie.
    logits : ndarray (N, E, K) float32 or None
        Full logits, when the run stored them.
    epochs : ndarray (E,) int64
        Epoch numbers (1-based, ascending).
    classes : tuple of str
        Class names, index k -> classes[k].
    meta : dict
        The run's metadata (capture mode, seed, ...).
    """

    ids: np.ndarray
    labels: np.ndarray
    gold_prob: np.ndarray
    pred: np.ndarray
    runner_up: np.ndarray
    margin: np.ndarray
    loss: np.ndarray
    logits: np.ndarray | None
    epochs: np.ndarray
    classes: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_examples(self) -> int:
        return int(self.ids.shape[0])

    @property
    def n_epochs(self) -> int:
        return int(self.epochs.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def window(self, epochs: str | tuple[int | None, int | None] | None) -> TrainingDynamics:
        """Keep only the epochs in an inclusive 1-based window such as ``"2:6"``, ``"3:"`` or ``":5"``.

        The same window as allenai's ``--burn_out`` when written ``":B"``.
        """
        if epochs is None:
            return self
        lo, hi = parse_epoch_window(epochs)
        keep = np.ones(self.n_epochs, dtype=bool)
        if lo is not None:
            keep &= self.epochs >= lo
        if hi is not None:
            keep &= self.epochs <= hi
        if not keep.any():
            raise InputError(f"epochs window {epochs!r} selects none of the recorded epochs "
                             f"{self.epochs.tolist()}.")
        if keep.all():
            return self
        return replace(
            self, gold_prob=self.gold_prob[:, keep], pred=self.pred[:, keep],
            runner_up=self.runner_up[:, keep], margin=self.margin[:, keep],
            loss=self.loss[:, keep], logits=None if self.logits is None else self.logits[:, keep],
            epochs=self.epochs[keep])


def parse_epoch_window(spec: str | tuple[int | None, int | None]) -> tuple[int | None, int | None]:
    """Parse ``"2:6"`` (inclusive, 1-based) into ``(2, 6)``; open ends become None."""
    if isinstance(spec, tuple):
        lo, hi = spec
    else:
        text = str(spec).strip()
        if ":" not in text:
            text = f"{text}:{text}"
        left, _, right = text.partition(":")
        try:
            lo = int(left) if left.strip() else None
            hi = int(right) if right.strip() else None
        except ValueError:
            raise InputError(f"epochs window {spec!r} is not of the form 'FIRST:LAST' "
                             "(e.g. '2:6', '3:', ':5').") from None
    if (lo is not None and lo < 1) or (hi is not None and hi < 1) or (
            lo is not None and hi is not None and lo > hi):
        raise InputError(f"epochs window {spec!r} must satisfy 1 <= FIRST <= LAST.")
    return lo, hi


def derive_from_logits(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row quantities from logits (n, K) and labels (n,), computed in float64.

    ``gold_prob = softmax(z)[y]``, ``pred = argmax z``, ``runner_up = argmax_{k != y} z``,
    ``margin = z[y] - z[runner_up]``, ``loss = -log softmax(z)[y]``. Logits may also be log
    probabilities: softmax and the margin are unchanged by a per-row shift.
    """
    z = logits.astype(np.float64, copy=False)
    rows = np.arange(z.shape[0])
    zmax = z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
    gold = z[rows, labels]
    log_p = gold - log_norm
    other = z.copy()
    other[rows, labels] = -np.inf
    runner_up = other.argmax(axis=1)
    return {
        "gold_prob": np.exp(log_p).astype(np.float32),
        "pred": z.argmax(axis=1).astype(np.int32),
        "runner_up": runner_up.astype(np.int32),
        "margin": (gold - other[rows, runner_up]).astype(np.float32),
        "loss": (-log_p).astype(np.float32),
    }
