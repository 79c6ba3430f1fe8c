"""Missing and merged classes: ``missing_class_score`` and :func:`suggest_classes`
(docs/classes.md; the score's formula: docs/contract.md §2).

* :mod:`~datacarto.classes.score` — the per-example score (a column of the metrics frame);
* :mod:`~datacarto.classes.proposals` — ``add`` / ``merge`` proposals from arrays;
* :mod:`~datacarto.classes.stats` — the statistics the proposals test (confusion, label
  agreement, the pile-up of split predictions);
* :mod:`~datacarto.classes.terms` — the words that set a group of texts apart;
* this module — the evidence of a run (or a metrics frame) and :func:`suggest_classes`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from .proposals import ClassEvidence, Proposal, propose
from .score import missing_class_score, normalized_entropy

__all__ = ["ClassEvidence", "Proposal", "evidence_from_metrics", "evidence_from_run", "open_run",
           "missing_class_score", "proposals_document", "suggest_classes"]


def evidence_from_run(run: Any, metrics: pd.DataFrame | None = None) -> ClassEvidence:
    """The :class:`ClassEvidence` of a run: ``P`` as the label-error detector reads it (its
    epoch window, with the held-out logits of ``datacarto run``), the metrics' scores and the
    in-sample predictions of every epoch."""
    from .. import store
    from ..label_errors.noise_model import (epoch_averaged_probs, heldout_probs, mix_heldout,
                                            probs_from_stored)
    from ..label_errors.window import WindowChoice

    if len(run.classes) < 2:
        raise InputError(f"{run.path}: the run has {len(run.classes)} class; class proposals "
                         "need at least 2.")
    if not run.epochs:
        raise InputError(f"{run.path}: no epoch is recorded yet; run `datacarto classes` after "
                         "at least one epoch is committed.")
    if metrics is None:
        metrics = run.metrics()
    dyn = run.dynamics()
    spec = str((metrics.attrs.get("label_errors") or {}).get("window") or
               f"{run.epochs[0]}:{run.epochs[-1]}")
    window = dyn.window(spec)
    probs = (epoch_averaged_probs(window.logits) if window.logits is not None
             else probs_from_stored(window))
    held = None
    heldout = store.read_heldout(run.path)
    if heldout is not None:
        first, last = (int(x) for x in spec.split(":"))
        held = heldout_probs(heldout, WindowChoice(first, last, False, "", ""), dyn.ids)
        probs = mix_heldout(probs, held, dyn.labels)[0]
    ordered = metrics.set_index("id").loc[dyn.ids] if not np.array_equal(
        metrics["id"].to_numpy(), dyn.ids) else metrics
    return ClassEvidence(ids=dyn.ids, labels=dyn.labels.astype(np.int64),
                         classes=tuple(run.classes), probs=probs,
                         score=ordered["missing_class_score"].to_numpy(dtype=np.float64),
                         mean_entropy=ordered["entropy"].to_numpy(dtype=np.float64),
                         heldout=held, pred=dyn.pred)


def evidence_from_metrics(metrics: pd.DataFrame, probs: Any,
                          heldout: Any = None) -> ClassEvidence:
    """The :class:`ClassEvidence` of a metrics frame and its rows' probabilities ``probs``
    (N, K), in the frame's row order (e.g. cross-validated probabilities of your own model)."""
    p = np.asarray(probs, dtype=np.float64)
    classes = tuple(metrics.attrs.get("classes") or ())
    if p.ndim != 2 or p.shape[0] != len(metrics):
        raise InputError(f"probs must be (n_rows, n_classes) = ({len(metrics)}, K); got "
                         f"{p.shape}.")
    if not classes:
        classes = tuple(str(k) for k in range(p.shape[1]))
    for column in ("id", "label"):
        if column not in metrics.columns:
            raise InputError(f"the metrics frame has no {column!r} column.")
    n = len(metrics)
    nan = np.full(n, np.nan)
    score = (metrics["missing_class_score"].to_numpy(dtype=np.float64)
             if "missing_class_score" in metrics.columns else nan)
    entropy = metrics["entropy"].to_numpy(dtype=np.float64) if "entropy" in metrics.columns else nan
    return ClassEvidence(ids=metrics["id"].to_numpy(), labels=metrics["label"].to_numpy(np.int64),
                         classes=classes, probs=p, score=score, mean_entropy=entropy,
                         heldout=None if heldout is None else np.asarray(heldout, np.float64))


def _texts(run: Any, ids: np.ndarray, data: str | os.PathLike[str] | None,
           text_column: str | None, id_column: str | None) -> tuple[list[str | None] | None,
                                                                    Path | None]:
    """The text of each row from the data file (``data`` or the one the run records)."""
    from ..report.source import choose_data, load_source

    choice = choose_data(run.path, run.meta, data=data, text_column=text_column,
                         id_column=id_column)
    if choice.source is None:
        return None, None
    loaded = load_source(choice.source, ids)
    if loaded.source.text_column is None:
        return None, loaded.source.path
    return loaded.texts_for(ids), loaded.source.path


def open_run(path: str | os.PathLike[str]) -> Any:
    """The run at ``path``; a directory without run.json has not committed an epoch yet."""
    from ..run import load

    folder = Path(path)
    if folder.is_dir() and not (folder / "run.json").exists():
        raise InputError(f"{folder}: no epoch is recorded yet (run.json is written when the "
                         "first epoch ends); propose classes once an epoch is committed.")
    return load(folder)


def suggest_classes(run_or_metrics: Any, *, probs: Any = None, heldout: Any = None,
                    data: str | os.PathLike[str] | None = None, text_column: str | None = None,
                    id_column: str | None = None, max_proposals: int = 10) -> list[Proposal]:
    """Proposals to add or merge classes, most convincing first (docs/classes.md).

    Parameters
    ----------
    run_or_metrics : Run, path or DataFrame
        A run (``datacarto.load(RUN)`` or its directory): its probabilities, held-out logits and
        epochs are read. Or a metrics frame with ``probs`` (N, K) in its row order (and
        optionally ``heldout`` (N, K)).
    data, text_column, id_column : optional
        The data file (default: the one ``datacarto run`` recorded): representative examples get
        their text and text proposals the terms that set the group apart.
    max_proposals : int
        At most this many proposals.

    Returns
    -------
    list of Proposal
        ``kind`` ``"add"`` (a group that no given class fits: ``where`` ``"between"`` two
        classes, whose predictions split and swing between them, or ``"apart"`` from all) or
        ``"merge"`` (two classes held-out predictions cannot tell apart either way), ordered by
        ``strength``.
    """
    from ..run import Run

    if max_proposals < 0:
        raise InputError(f"max_proposals must be >= 0; got {max_proposals}.")
    if isinstance(run_or_metrics, pd.DataFrame):
        if probs is None:
            raise InputError("suggest_classes: a metrics frame needs probs= (N, K), the "
                             "probabilities of its rows; or pass a run.")
        ev = evidence_from_metrics(run_or_metrics, probs, heldout)
    else:
        run = run_or_metrics if isinstance(run_or_metrics, Run) else open_run(run_or_metrics)
        ev = evidence_from_run(run)
        ev.texts, _ = _texts(run, ev.ids, data, text_column, id_column)
    return propose(ev, max_proposals=max_proposals)


def proposals_document(proposals: list[Proposal], *, run: str | None = None,
                       classes: Any = None, n_examples: int | None = None) -> dict[str, Any]:
    """The JSON document ``datacarto classes -o`` writes: ``{"proposals": [...], ...}``."""
    doc: dict[str, Any] = {"proposals": [p.to_dict() for p in proposals]}
    if run is not None:
        doc["run"] = str(run)
    if classes is not None:
        doc["classes"] = [str(c) for c in classes]
    if n_examples is not None:
        doc["n_examples"] = int(n_examples)
    return doc
