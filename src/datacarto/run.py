"""``datacarto.load(RUN)``: open a run directory written by a Recorder, a callback or an import."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import store
from .dynamics import TrainingDynamics
from .runmeta import RunMeta


class Run:
    """A validated run directory. Nothing is read beyond ``run.json`` until asked for."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.meta: RunMeta = store.read_run_json(self.path)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.meta.classes

    @property
    def epochs(self) -> list[int]:
        return list(self.meta.epochs)

    @property
    def capture(self) -> str:
        return self.meta.capture

    @property
    def planned_epochs(self) -> int | None:
        """The epochs the training meant to run (``Recorder(planned_epochs=...)``), if recorded."""
        return self.meta.planned_epochs

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
        """Read every committed epoch (or an epoch window) into a :class:`TrainingDynamics`."""
        return store.RunReader(self.path, self.meta).dynamics(epochs=epochs, logits=logits)

    def metrics(self, *, engine: str = "local", scheduler: Any = None, **options: Any) -> Any:
        """Every per-example metric as a pandas DataFrame with an ``id`` column (see :func:`compute_metrics`).

        Computed from the shards in bounded memory (:mod:`datacarto.engine`), with the same
        result as ``compute_metrics(self.dynamics(epochs=...), ...)``. Options: ``epochs``,
        ``include_ci``, ``regions``, ``label_errors`` (as for :func:`compute_metrics`: dicts, or
        the dataclasses of :mod:`datacarto.options`);
        ``engine="local"`` (threads in this process) or ``"dask"`` with ``scheduler`` an address
        such as ``"tcp://host:8786"``, a ``distributed.Client``, or None for a local cluster;
        ``workers`` (local threads) and ``chunk_rows``. A run written by ``datacarto run``
        also has held-out logits (``heldout.parquet``), which the label-error detector uses
        unless ``label_errors={"heldout": None}``.
        """
        from .engine import compute_run_metrics
        from .options import LabelErrorOptions

        detector = LabelErrorOptions.from_value(options.get("label_errors"))
        if detector.wants_run_heldout:
            # a `datacarto run` directory carries its side models' held-out logits
            detector = replace(detector, heldout=store.read_heldout(self.path))
        options = {**options, "label_errors": detector}
        return compute_run_metrics(self, engine=engine, scheduler=scheduler, **options)


def load(path: str | os.PathLike[str]) -> Run:
    """Open the run directory at ``path``; raises InputError/SchemaError naming what is wrong."""
    return Run(path)
