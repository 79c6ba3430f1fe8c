"""Why each suspect of a ``datacarto run`` is flagged: :mod:`datacarto.evidence` over the run's
seeds, written to ``evidence.parquet`` and joined to the metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import evidence as ev
from ..run import load
from ..train.preparation import Prepared

__all__ = ["add_evidence"]


def add_evidence(metrics: pd.DataFrame, frames: list[pd.DataFrame], run_dirs: list[Path],
                 prep: Prepared, features: Any, out: Path) -> pd.DataFrame:
    """Write ``evidence.parquet`` to ``out`` and, with several seeds, to each seed's directory;
    return ``metrics`` with the evidence columns.

    ``frames`` are the metrics of each run directory, ``metrics`` theirs aggregated. The
    evidence in ``out`` pools the seeds: their epochs' predictions together, the mean of their
    held-out probabilities of the given label.
    """
    ids = metrics["id"].to_numpy()
    labels = metrics["label"].to_numpy(dtype=np.int64)
    rows = prep.rows_of(ids)
    identity = np.array_equal(rows, np.arange(len(rows)))
    matrix = ev.feature_matrix(features)
    if matrix is not None and not identity:
        matrix = matrix[rows]
    texts = prep.texts if prep.texts is None or identity else [prep.texts[i] for i in rows]
    near = ev.neighbourhood_evidence(ids, labels, prep.classes, features=matrix, texts=texts)
    preds, held_sum, held_n = [], np.zeros(len(ids)), np.zeros(len(ids))
    for frame, run_dir in zip(frames, run_dirs):
        dyn = load(run_dir).dynamics(logits=False)
        pred = dyn.pred[pd.Index(dyn.ids).get_indexer(ids)]
        window = (frame.attrs.get("label_errors") or {}).get("window")
        held = ev.heldout_for_run(run_dir, ids, labels, window)
        preds.append(pred)
        if held is not None:
            ok = np.isfinite(held)
            held_sum[ok] += held[ok]
            held_n[ok] += 1
        if len(run_dirs) > 1:
            ev.write_evidence(run_dir, ev.compute_evidence(
                ids, labels, prep.classes, pred=pred, heldout_prob=held,
                is_label_error=frame["is_label_error"].to_numpy(dtype=bool),
                label_error_score=frame["label_error_score"].to_numpy(), neighbourhood=near))
    pooled_held = np.where(held_n > 0, held_sum / np.maximum(held_n, 1), np.nan)
    evidence = ev.compute_evidence(
        ids, labels, prep.classes, pred=np.concatenate(preds, axis=1), heldout_prob=pooled_held,
        is_label_error=metrics["is_label_error"].to_numpy(dtype=bool),
        label_error_score=metrics["label_error_score"].to_numpy(), neighbourhood=near)
    ev.write_evidence(out, evidence)
    return ev.attach_evidence(metrics, evidence)
