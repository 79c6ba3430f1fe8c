"""The review page (``datacarto review``): work through suspects, log decisions, export.

* :mod:`~datacarto.review.decisions`: the append-only, fsynced ``RUN/review/decisions.jsonl``;
* :mod:`~datacarto.review.session`: the queue of suspects, examples, neighbours, decisions;
* :mod:`~datacarto.review.bulk`: selections, bulk decisions, new classes, merges, undo;
* :mod:`~datacarto.review.proposals`: the class proposals of ``classes.json``, by stable id;
* :mod:`~datacarto.review.selection`: which rows a filter or a lasso on the map covers;
* :mod:`~datacarto.review.features`: the space in which neighbours are found;
* :mod:`~datacarto.review.server`: the local web server (standard library only);
* :mod:`~datacarto.review.export`: the corrected copy of the dataset and its change log.
"""

from __future__ import annotations

from .decisions import ACTIONS, DecisionLog
from .export import ExportResult, export_corrected
from .server import ReviewServer, make_server
from .session import ReviewSession, UnknownId

__all__ = ["ACTIONS", "DecisionLog", "ExportResult", "ReviewServer", "ReviewSession", "UnknownId",
           "export_corrected", "make_server"]
