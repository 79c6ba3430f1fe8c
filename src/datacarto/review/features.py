"""The feature space in which the review page finds an example's neighbours.

Neighbours are the examples nearest in what the model saw, not on the data map (two examples
with the same confidence and variability can be about entirely different things). Rebuilding
the run's text or pixel features would mean reading and featurizing the whole data file
again on every start of the page; instead the space is the model's class-probability profile
of each example, which the run already stores and which is exactly what separates "between
pos and neg" from "clearly pos":

1. ``datacarto run`` runs: the held-out probabilities (``heldout.parquet``), averaged over
   epochs, ``f_i = mean_e softmax(z^held_ie)`` -- what a model that never trained on the
   example thought of it, so a memorised wrong label does not pull it towards its class;
2. other runs with stored logits: the training probabilities averaged over epochs,
   ``f_i = mean_e softmax(z_ie)``;
3. runs without logits: None, and the page falls back to the map (the caller says so).

Distances are Euclidean between these K-vectors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import store
from ..label_errors import epoch_averaged_probs

__all__ = ["HELDOUT", "MAP", "TRAINING", "neighbour_space", "nearest"]

HELDOUT = "held-out class probabilities (mean over epochs)"
TRAINING = "training class probabilities (mean over epochs)"
MAP = "the data map (variability, confidence): the run has no stored logits"


def _aligned(source_ids: np.ndarray, values: np.ndarray, ids: Sequence[object]) -> np.ndarray | None:
    where = {str(v): i for i, v in enumerate(np.asarray(source_ids).tolist())}
    rows = [where.get(str(i)) for i in ids]
    if any(r is None for r in rows):
        return None
    return values[np.asarray(rows, dtype=np.int64)]


def neighbour_space(run_dir: str | os.PathLike[str], ids: Sequence[object]) -> tuple[np.ndarray | None, str]:
    """Feature vectors (N, K) float32 for ``ids`` (in that order) and the space's description.

    Returns ``(None, MAP)`` when the run holds neither held-out nor training logits for every id.
    """
    run_dir = Path(run_dir)
    held = store.read_heldout(run_dir)
    if held is not None and held.logits.size:
        probs = epoch_averaged_probs(np.swapaxes(held.logits, 0, 1))
        out = _aligned(held.ids, probs, ids)
        if out is not None:
            return out.astype(np.float32), HELDOUT
    from ..run import load  # the run reader, only when there is no held-out file

    dyn = load(run_dir).dynamics(logits=True)
    if dyn.logits is not None and dyn.logits.size:
        probs = epoch_averaged_probs(dyn.logits)
        out = _aligned(dyn.ids, probs, ids)
        if out is not None:
            return out.astype(np.float32), TRAINING
    return None, MAP


def nearest(features: np.ndarray, row: int, k: int) -> list[int]:
    """Rows of the ``k`` vectors nearest to ``features[row]`` (itself excluded; ties by row).

    >>> nearest(np.array([[0.0], [0.3], [0.1], [0.9]]), 0, 2)
    [2, 1]
    """
    d = ((features - features[row]) ** 2).sum(axis=1).astype(np.float64)
    d[row] = np.inf
    k = min(k, len(features) - 1)
    if k <= 0:
        return []
    near = np.argpartition(d, k - 1)[:k]
    return [int(i) for i in near[np.lexsort((near, d[near]))]]
