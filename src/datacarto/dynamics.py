"""TrainingDynamics: what a run recorded, as aligned numpy arrays.

Notation (docs/contract.md §1): N examples, E recorded epochs, K classes. Per-epoch arrays are
(N, E); full logits are (N, E, K); per-example arrays are (N,). Rows are in ascending id
order, the same order in every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InputError
from .probability import logsumexp


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

    @classmethod
    def from_epochs(cls, epochs: Sequence[Mapping[str, np.ndarray]], *, epoch_numbers: Any,
                    classes: Sequence[str], meta: Mapping[str, Any] | None = None
                    ) -> TrainingDynamics:
        """Stack per-epoch columns (as a shard stores them) into (N, E[, K]) arrays.

        ``epochs[e]`` maps ``gold_prob``, ``pred``, ``runner_up``, ``margin``, ``loss`` (and
        optionally ``logits`` (N, K)) to the rows of epoch ``epoch_numbers[e]``; every epoch
        holds the same examples in the same (ascending id) order, and the first epoch also
        carries ``id`` and ``label``. Full logits are kept only when every epoch has them.
        """
        first = epochs[0]
        with_logits = all(e.get("logits") is not None for e in epochs)

        def stack(name: str, dtype: Any) -> np.ndarray:
            return np.stack([e[name] for e in epochs], axis=1).astype(dtype, copy=False)

        return cls(
            ids=np.asarray(first["id"]), labels=np.asarray(first["label"]).astype(np.int64),
            gold_prob=stack("gold_prob", np.float32), pred=stack("pred", np.int32),
            runner_up=stack("runner_up", np.int32), margin=stack("margin", np.float32),
            loss=stack("loss", np.float32),
            logits=np.stack([e["logits"] for e in epochs], axis=1) if with_logits else None,
            epochs=np.asarray(epoch_numbers, dtype=np.int64), classes=tuple(classes),
            meta=dict(meta or {}))

    def window(self, epochs: str | tuple[int | None, int | None] | None) -> TrainingDynamics:
        """Keep only the epochs in an inclusive 1-based window such as ``"2:6"``, ``"3:"`` or ``":5"``.

        The same window as allenai's ``--burn_out`` when written ``":B"``.
        """
        if epochs is None:
            return self
        keep = select_epochs(self.epochs, epochs)
        if keep.all():
            return self
        return replace(
            self, gold_prob=self.gold_prob[:, keep], pred=self.pred[:, keep],
            runner_up=self.runner_up[:, keep], margin=self.margin[:, keep],
            loss=self.loss[:, keep], logits=None if self.logits is None else self.logits[:, keep],
            epochs=self.epochs[keep])


def select_epochs(recorded: Any, window: str | tuple[int | None, int | None] | None) -> np.ndarray:
    """(E,) bool: which of the ``recorded`` epoch numbers an epoch window keeps (all for None).

    The one reading of a window for a run's reader, :meth:`TrainingDynamics.window` and the
    metrics engine; raises InputError when it keeps none.
    """
    ep = np.asarray(recorded, dtype=np.int64)
    keep = np.ones(len(ep), dtype=bool)
    if window is None:
        return keep
    lo, hi = parse_epoch_window(window)
    if lo is not None:
        keep &= ep >= lo
    if hi is not None:
        keep &= ep <= hi
    if not keep.any():
        raise InputError(f"epochs window {window!r} selects none of the recorded epochs "
                         f"{ep.tolist()}.")
    return keep


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
    gold = z[rows, labels]
    log_p = gold - logsumexp(z, axis=1)
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
