"""``datacarto.load(RUN)``: open a run directory written by a Recorder, a callback or an import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from . import store
from .dynamics import TrainingDynamics
from ._validation import fmt_id
from .errors import SchemaError


class Run:
    """A validated run directory. Nothing is read beyond ``run.json`` until asked for."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.meta: dict[str, Any] = store.read_run_json(self.path)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta["classes"])

    @property
    def epochs(self) -> list[int]:
        return sorted(int(e) for e in self.meta["epochs"])

    @property
    def capture(self) -> str:
        return str(self.meta["capture"])

    @property
    def planned_epochs(self) -> int | None:
        """The epochs the training meant to run (``Recorder(planned_epochs=...)``), if recorded."""
        value = self.meta.get("planned_epochs")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def incomplete(self) -> str | None:
        """``"incomplete: 2 of 30 epochs"`` when fewer epochs were committed than planned."""
        planned = self.planned_epochs
        if planned is not None and len(self.epochs) < planned:
            return f"incomplete: {len(self.epochs)} of {planned} epochs"
        return None

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, classes={list(self.classes)}, epochs={self.epochs}, "
                f"capture={self.capture!r})")

    def dynamics(self, *, epochs: str | None = None, logits: bool = True) -> TrainingDynamics:
        """Read every committed epoch into a :class:`TrainingDynamics` (optionally a window)."""
        if not self.epochs:
            raise SchemaError(f"{self.path / store.RUN_FILE}: the run has no committed epochs yet.")
        from .recorder import _stack_epochs  # shared stacking; import here to avoid a cycle

        columns = list(store.REQUIRED_COLUMNS)
        if logits and self.meta.get("logits_stored"):
            columns.append("logits")
        per_epoch: list[dict[str, Any]] = []
        first_ids: np.ndarray | None = None
        first_labels: np.ndarray | None = None
        for epoch, paths in store.iter_epoch_shards(self.path, self.meta):
            cols = store.read_epoch(self.path, self.meta, epoch, paths, columns=columns)
            if first_ids is None:
                first_ids, first_labels = cols["id"], cols["label"]
            else:
                _check_aligned(paths[0], epoch, first_ids, first_labels, cols)
            per_epoch.append({"epoch": epoch, "ids": cols["id"], "labels": cols["label"],
                              "logits": cols.get("logits"), **{k: cols[k] for k in
                                                               ("gold_prob", "pred", "runner_up",
                                                                "margin", "loss")}})
        dyn = _stack_epochs(per_epoch, classes=list(self.classes), meta=dict(self.meta))
        return dyn.window(epochs)

    def metrics(self, *, engine: str = "local", scheduler: Any = None, **options: Any) -> Any:
        """Every per-example metric as a pandas DataFrame with an ``id`` column (see :func:`compute_metrics`).

        Computed from the shards in bounded memory (:mod:`datacarto.engine`), with the same
        result as ``compute_metrics(self.dynamics(epochs=...), ...)``. Options: ``epochs``,
        ``include_ci``, ``regions``, ``label_errors`` (as for :func:`compute_metrics`);
        ``engine="local"`` (threads in this process) or ``"dask"`` with ``scheduler`` an address
        such as ``"tcp://host:8786"``, a ``distributed.Client``, or None for a local cluster;
        ``workers`` (local threads) and ``chunk_rows``. A run written by ``datacarto run``
        also has held-out logits (``heldout.parquet``), which the label-error detector uses
        unless ``label_errors={"heldout": None}``.
        """
        from .engine import compute_run_metrics
        from .store import read_heldout

        detector = dict(options.get("label_errors") or {})
        if "heldout" not in detector and detector.get("method") != "confident_learning":
            # a `datacarto run` directory carries its side models' held-out logits
            held = read_heldout(self.path)
            if held is not None:
                options = {**options, "label_errors": {**detector, "heldout": held}}
        return compute_run_metrics(self, engine=engine, scheduler=scheduler, **options)


def _check_aligned(path: Path, epoch: int, ids: np.ndarray, labels: np.ndarray | None,
                   cols: dict[str, np.ndarray]) -> None:
    if len(cols["id"]) != len(ids) or not np.array_equal(cols["id"], ids):
        other = cols["id"]
        missing = np.setdiff1d(ids, other)
        extra = np.setdiff1d(other, ids)
        first = missing[0] if len(missing) else extra[0]
        raise SchemaError(f"{path}: epoch {epoch} ids disagree with the first epoch ({len(missing)} "
                          f"missing, {len(extra)} extra; first: id={fmt_id(first)}).")
    assert labels is not None
    changed = cols["label"] != labels
    if changed.any():
        i = int(np.argmax(changed))
        raise SchemaError(f"{path} row {i} (id={fmt_id(ids[i])}): label {cols['label'][i]} differs from "
                          f"the first epoch's {labels[i]}.")


def load(path: str | os.PathLike[str]) -> Run:
    """Open the run directory at ``path``; raises InputError/SchemaError naming what is wrong."""
    return Run(path)
