"""The review session: the queue of suspects, their examples and neighbours, and decisions.

Everything the review server shows or changes goes through :class:`ReviewSession`; the HTTP
layer (:mod:`datacarto.review.server`) only parses requests and encodes answers. Examples
are addressed by ``str(id)`` (a "key"); any key not in the run is an :class:`UnknownId`.

The queue holds the suspects (``is_label_error``, and rows with a duplicate labelled
differently when the run recorded its evidence, :mod:`datacarto.evidence`) by
``label_error_score``, highest first (ties by id), or the ``top`` highest-scoring examples
when ``top`` is given. Each example carries its evidence (``reason``, ``evidence``) when the
metrics frame has the evidence columns. Neighbours are the examples nearest in feature space
(:mod:`datacarto.review.features`), shown with their current labels; without stored logits,
the nearest on the data map, in (variability / 0.5, confidence) units so both axes span
[0, 1]. When the data are images (:mod:`datacarto.thumbnails`), each example and neighbour
carries its picture as a ``data:`` URI (``image``).

Beyond one decision at a time the session acts on many rows at once
(:class:`~datacarto.review.bulk.BulkActions`), each action written as
one batch (:meth:`DecisionLog.append_batch`) that can be undone: a new class (from an ``add``
proposal of ``classes.json``, :mod:`datacarto.review.proposals`), a merge of two classes,
and a bulk decision on any selection (a proposal's members, a filter on current label /
region / assessment / score range, a lasso on the map, a list of ids).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..evidence import evidence_texts
from ..plot.datamap import axis_limits
from ..report.source import LoadedData
from ..thumbnails import ImageSource
from .decisions import ACTIONS, REVIEW_DIR, DecisionLog
from .export import ExportResult, export_corrected
from .bulk import BulkActions
from .features import MAP, nearest, neighbour_space
from .proposals import ProposalFile, resolve_path

__all__ = ["ReviewSession", "UnknownId"]

#: Neighbours listed for each example, and points sent for the background of the mini map.
N_NEIGHBOURS = 8
MAP_SAMPLE = 4000
TEXT_LIMIT = 20_000
NEIGHBOUR_TEXT = 160


class UnknownId(InputError):
    """A request named an id that is not in the run."""


def _native(value: Any) -> int | str:
    return int(value) if isinstance(value, (int, np.integer)) else str(value)


class ReviewSession(BulkActions):
    """State of one review: the run's metrics, the data, the queue and the decision log.

    Parameters
    ----------
    run_dir : Path
        The run directory; decisions go to ``RUN/review/decisions.jsonl``.
    metrics : DataFrame
        ``run.metrics()``.
    classes : sequence of str
        Class names of the run.
    data : LoadedData or None
        The user's data file (texts, export). Without it nothing can be exported.
    top : int, optional
        Review the ``top`` highest-scoring examples instead of the flagged ones.
    images : ImageSource, optional
        The pictures of ``data``'s rows (:func:`datacarto.thumbnails.images_of`).
    proposals : str or Path, optional
        A ``classes.json`` of class proposals (default: ``RUN/classes.json`` when present).
    features : ndarray (N, K), "auto" or None
        The space neighbours are found in; "auto" (default) reads it from the run
        (:func:`datacarto.review.features.neighbour_space`), None uses the map.
    """

    def __init__(self, run_dir: str | Path, metrics: pd.DataFrame, classes: Sequence[str],
                 data: LoadedData | None = None, *, top: int | None = None,
                 title: str = "datacarto review", images: ImageSource | None = None,
                 proposals: str | Path | None = None, features: Any = "auto") -> None:
        self.run_dir = Path(run_dir)
        self.classes = [str(c) for c in classes]
        self.data = data
        self.title = title
        m = metrics.reset_index(drop=True)
        self.n = len(m)
        self.ids = [_native(v) for v in m["id"].tolist()]
        self.keys = [str(v) for v in self.ids]
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.label = m["label"].to_numpy(np.int64)
        self.sugg = m["suggested_label"].to_numpy(np.int64)
        self.conf = m["confidence"].to_numpy(np.float64)
        self.var = m["variability"].to_numpy(np.float64)
        self.corr = m["correctness"].to_numpy(np.float64)
        self.score = m["label_error_score"].to_numpy(np.float64)
        self.flag = m["is_label_error"].to_numpy(bool)
        self.region = m["region"].astype(str).tolist()
        self.assessment = m["assessment"].astype(str).tolist() if "assessment" in m else None
        self.texts = data.texts_for(np.asarray(m["id"].to_numpy())) if data is not None else None
        self.images = images if data is not None else None
        self.data_rows = data.rows_for(np.asarray(m["id"].to_numpy())) if data is not None else None
        self.reason, self.evidence = evidence_texts(m)
        suspect = self.flag if self.reason is None else self.flag | (self.reason != "")
        order = np.lexsort((np.arange(self.n), -self.score))
        if top is not None:
            if top < 1:
                raise InputError(f"review: --top must be a positive integer; got {top}.")
            queue = order[:top]
        else:
            queue = order[suspect[order]]
        self.queue = [int(i) for i in queue]
        self.position = {self.keys[i]: p for p, i in enumerate(self.queue)}
        self.log = DecisionLog(self.run_dir / REVIEW_DIR / "decisions.jsonl").load()
        self.proposals = ProposalFile(resolve_path(self.run_dir, proposals), set(self.keys))
        self._features = features
        self.feature_space = "" if isinstance(features, str) else ("given features" if features
                                                                     is not None else MAP)
        self._write_lock = threading.Lock()

    # ------------------------------------------------------------------ reading
    @property
    def problems(self) -> list[str]:
        return list(self.log.problems) + list(self.proposals.problems)

    # ------------------------------------------------------------------ classes
    def all_classes(self) -> list[str]:
        """The run's classes, then every class created on the page (merged-away ones included)."""
        out = list(self.classes)
        for name in self.log.added:
            if name not in out:
                out.append(name)
        return out

    def active_classes(self) -> list[str]:
        """The classes a row can be given now: :meth:`all_classes` less those merged away."""
        return [c for c in self.all_classes() if c not in self.log.merged]

    def current(self, i: int) -> str | None:
        """Row ``i``'s label after the decisions (None: dropped)."""
        dec = self.log.latest.get(self.keys[i])
        return self.classes[self.label[i]] if dec is None else dec["new_label"]

    def current_labels(self) -> list[str | None]:
        return [self.current(i) for i in range(self.n)]

    def _row(self, key: str) -> int:
        row = self.index.get(key)
        if row is None:
            raise UnknownId(f"unknown id {key[:80]!r}: not in this run.")
        return row

    def _decision(self, key: str) -> dict[str, Any] | None:
        dec = self.log.latest.get(key)
        return None if dec is None else {"action": dec["action"], "new_label": dec["new_label"],
                                         "time": dec["time"]}

    def next_undecided(self, after: int = -1) -> int | None:
        """Queue position of the first undecided suspect after ``after`` (wrapping), or None."""
        n = len(self.queue)
        for step in range(1, n + 1):
            p = (after + step) % n
            if self.keys[self.queue[p]] not in self.log.latest:
                return p
        return None

    def state(self) -> dict[str, Any]:
        decided = sum(1 for i in self.queue if self.keys[i] in self.log.latest)
        return {"title": self.title, "classes": self.active_classes(), "total": len(self.queue),
                "decided": decided, "next": self.next_undecided(), "problems": self.problems,
                "has_text": self.texts is not None, "can_export": self.can_export(),
                "images": None if self.images is None else self.images.kind,
                "n_examples": self.n, "log": f"{REVIEW_DIR}/decisions.jsonl",
                "run_classes": self.classes, "all_classes": self.all_classes(),
                "merged": dict(self.log.merged), "proposals": self.proposals.summaries(),
                "regions": sorted(set(self.region)),
                "assessments": sorted(set(self.assessment)) if self.assessment else [],
                "actions": self.actions(), "neighbour_space": self._space()[1]}

    def queue_items(self) -> list[dict[str, Any]]:
        return [{"id": self.keys[i], "score": round(float(self.score[i]), 4),
                 "given": self.classes[self.label[i]], "suggested": self.classes[self.sugg[i]],
                 "decision": self._decision(self.keys[i])} for i in self.queue]

    def _image(self, i: int) -> str | None:
        if self.images is None or self.data_rows is None:
            return None
        return self.images.uris([int(self.data_rows[i])])[0]

    def _brief(self, i: int, limit: int) -> dict[str, Any]:
        text = None if self.texts is None else self.texts[i]
        if text is not None and len(text) > limit:
            text = text[: limit - 1] + "…"
        return {"id": self.keys[i], "text": text, "given": self.classes[self.label[i]],
                "current": self.current(i),
                "suggested": self.classes[self.sugg[i]], "x": round(float(self.var[i]), 4),
                "y": round(float(self.conf[i]), 4), "flagged": bool(self.flag[i]),
                "score": round(float(self.score[i]), 4), "region": self.region[i],
                "decision": self._decision(self.keys[i]), "image": self._image(i)}

    def _space(self) -> tuple[np.ndarray | None, str]:
        """The neighbour space, read from the run on first use (see :mod:`.features`)."""
        if isinstance(self._features, str):
            self._features, self.feature_space = neighbour_space(self.run_dir, self.ids)
        return self._features, self.feature_space

    def neighbours(self, row: int, k: int = N_NEIGHBOURS) -> list[int]:
        """Rows of the ``k`` examples nearest to ``row`` in feature space (itself excluded),
        or on the map when the run has no features."""
        features, _ = self._space()
        if features is None:
            features = np.column_stack([2.0 * self.var, self.conf])
        return nearest(features, row, k)

    def example(self, key: str) -> dict[str, Any]:
        row = self._row(key)
        out = self._brief(row, TEXT_LIMIT)
        out.update({"correctness": round(float(self.corr[row]), 4), "position": self.position.get(key),
                    "neighbours": [self._brief(i, NEIGHBOUR_TEXT) for i in self.neighbours(row)],
                    "neighbour_space": self._space()[1]})
        if self.reason is not None and self.evidence is not None:  # why it is a suspect
            out.update({"reason": self.reason[row] or None, "evidence": self.evidence[row] or None})
        return out

    def map_points(self, seed: int = 0) -> dict[str, Any]:
        """A seeded sample of the map for the mini map's background (all points when few), and
        the limits that fit all of the data (:func:`datacarto.plot.datamap.axis_limits`)."""
        rows = np.arange(self.n)
        if self.n > MAP_SAMPLE:
            rows = np.sort(np.random.default_rng(seed).choice(self.n, MAP_SAMPLE, replace=False))
        return {"x": np.round(self.var[rows], 4).tolist(), "y": np.round(self.conf[rows], 4).tolist(),
                "flag": self.flag[rows].astype(int).tolist(), "n": self.n,
                "limits": [list(lim) for lim in axis_limits(self.var, self.conf, "fit")]}

    # ------------------------------------------------------------------ writing
    def _target(self, i: int, action: str, label: str | None) -> str | None:
        """The new label of row ``i`` under ``action`` (validated by the caller)."""
        if action == "relabel":
            return label
        return {"accept": self.classes[self.sugg[i]], "keep": self.classes[self.label[i]],
                "drop": None}[action]

    def _check_action(self, action: Any, label: Any) -> None:
        if action not in ACTIONS:
            raise InputError(f"unknown action {str(action)[:40]!r}; expected one of {', '.join(ACTIONS)}.")
        if action == "relabel":
            if not isinstance(label, str) or label not in self.active_classes():
                raise InputError(f"relabel needs 'label', one of the classes "
                                 f"({', '.join(self.active_classes())}); got {str(label)[:80]!r}.")
        elif label is not None:
            raise InputError(f"action {action!r} takes no 'label'.")

    def _progress(self) -> dict[str, Any]:
        return {"decided": sum(1 for i in self.queue if self.keys[i] in self.log.latest)}

    def decide(self, key: str, action: str, label: str | None = None, *,
               source: str | None = None) -> dict[str, Any]:
        """Validate and durably record one decision; returns it with the queue's progress.

        ``source`` says why, in the change log (e.g. one member added to a new class).
        """
        row = self._row(key)
        self._check_action(action, label)
        extra = {} if not source else {"source": str(source)[:200]}
        with self._write_lock:
            record = self.log.append(id=self.ids[row], old_label=self.classes[self.label[row]],
                                     action=action, new_label=self._target(row, action, label), **extra)
        pos = self.position.get(key, -1)
        return {"id": key, "decision": {"action": record["action"], "new_label": record["new_label"],
                                        "time": record["time"]},
                **self._progress(), "next": self.next_undecided(pos)}

    def can_export(self) -> bool:
        return self.data is not None and self.data.source.label_column is not None

    def default_export_path(self) -> Path:
        assert self.data is not None
        src = self.data.source.path
        suffix = "".join(src.suffixes[-2:]) if src.suffix.lower() in {".gz", ".bz2", ".xz", ".zst"} \
            else src.suffix
        return self.run_dir / REVIEW_DIR / f"corrected{suffix}"

    def export(self, out: str | Path | None = None) -> ExportResult:
        """Write the corrected dataset (default ``RUN/review/corrected.<ext>``) and its change log."""
        if self.data is None:
            raise InputError("review: no data file, nothing to export. Start the review with --data.")
        run_labels = {self.keys[i]: self.classes[self.label[i]] for i in
                      (self.index[k] for k in self.log.latest if k in self.index)}
        return export_corrected(self.data, dict(self.log.latest), self.classes,
                                out if out is not None else self.default_export_path(),
                                run_labels=run_labels, new_classes=self.all_classes()[len(self.classes):])
