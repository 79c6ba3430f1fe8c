"""Reading a run: every committed epoch's shards, whole or the same rows of all epochs at once.

:class:`RunReader` is the one way a run's shards are read: whole epochs into a
:class:`~datacarto.dynamics.TrainingDynamics`, or a checked :class:`RunPlan` whose chunks
:class:`ChunkReader` reads from every epoch in lockstep (possible because every shard is sorted
by id and every epoch holds the same examples). The helpers here merge rank shards by id and
compare each epoch with the first; every error names the file, row and id.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import fmt_id
from ..errors import SchemaError
from ..runmeta import RunMeta
from .files import RUN_FILE
from .shards import LOGITS, ROW_GROUP_ROWS, ShardReader, read_shard


def iter_epoch_shards(run_dir: Path, meta: RunMeta) -> Iterator[tuple[int, list[Path]]]:
    """Yield ``(epoch, [shard paths])`` for each committed epoch, in epoch order."""
    for epoch in meta.epochs:
        names = meta.shards.get(str(epoch))
        if not names:
            raise SchemaError(f"{run_dir / RUN_FILE}: epoch {epoch} is committed but lists no shards.")
        yield epoch, [run_dir / n for n in names]


def read_epoch(run_dir: Path, meta: RunMeta, epoch: int, paths: list[Path],
               columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read all shards of one epoch, de-duplicate ids (rank padding) and sort rows by id."""
    parts = [read_shard(p, columns=columns, n_classes=meta.num_classes, id_type=meta.id_type)
             for p in paths]
    if len(parts) == 1:
        check_unique_ids(parts[0]["id"], paths[0], epoch)
    return merge_by_id(parts)


def _strictly_increasing(ids: np.ndarray) -> bool:
    return len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1]))


def sort_unique_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, first)``: ``ids[order]`` ascending (stable sort, so the earliest copy of a
    repeated id comes first) and ``first[i]`` False where ``ids[order][i]`` repeats the id before."""
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return order, first


def merge_by_id(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The rows of one epoch's parts (rank shards) as one table sorted by id, each id once.

    A repeated id (ranks pad their share with repeats) keeps its first copy, in part order.
    """
    cols = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts])
                                             for k in parts[0]}
    if _strictly_increasing(cols["id"]):
        return cols
    order, first = sort_unique_ids(cols["id"])
    return {k: v[order][first] for k, v in cols.items()}


def check_unique_ids(ids: np.ndarray, path: Path | str, epoch: int) -> None:
    """SchemaError when one shard lists an id twice."""
    if _strictly_increasing(ids):
        return
    order, first = sort_unique_ids(ids)
    if not first.all():
        dup = ids[order][int(np.argmin(first))]
        raise SchemaError(f"{path}: id {fmt_id(dup)} appears more than once in epoch {epoch}.")


def check_same_examples(path: Path | str, epoch: int, ref_ids: np.ndarray,
                        ref_labels: np.ndarray | None, ids: np.ndarray | None,
                        labels: np.ndarray | None, *, n_rows: int | None = None,
                        row0: int = 0) -> None:
    """SchemaError unless an epoch holds the first epoch's examples, in order, with its labels.

    ``ids``/``labels`` are the epoch's rows ``row0:row0 + len`` (ascending id); either may be
    None when it was not read (then only the row count ``n_rows`` is compared).
    """
    if ids is not None and (len(ids) != len(ref_ids) or not np.array_equal(ids, ref_ids)):
        missing = np.setdiff1d(ref_ids, ids)
        extra = np.setdiff1d(ids, ref_ids)
        first = missing[0] if len(missing) else extra[0] if len(extra) else ids[0]
        raise SchemaError(f"{path}: epoch {epoch} ids disagree with the first epoch "
                          f"({len(missing)} missing, {len(extra)} extra; first: id={fmt_id(first)}).")
    if ids is None and n_rows is not None and n_rows != len(ref_ids):
        raise SchemaError(f"{path}: epoch {epoch} ids disagree with the first epoch ({n_rows} rows "
                          f"from row {row0} where the first epoch has {len(ref_ids)}; was the "
                          "shard modified while it was read?).")
    if labels is not None and ref_labels is not None:
        changed = labels != ref_labels
        if changed.any():
            i = int(np.argmax(changed))
            raise SchemaError(f"{path} row {row0 + i} (id={fmt_id(ref_ids[i])}): label "
                              f"{labels[i]} differs from the first epoch's {ref_labels[i]}.")


class NotStreamable(Exception):
    """The run is valid but cannot be read chunk by chunk (a shard's rows are not sorted by id)."""


#: The per-epoch columns a TrainingDynamics is built from (besides id and label).
VALUE_COLUMNS = ("gold_prob", "pred", "runner_up", "margin", "loss")


@dataclass(frozen=True)
class EpochShards:
    """Where each chunk's rows are in one epoch's shards.

    ``cuts`` is None for one shard sorted by id without repeats (chunk c = rows
    ``bounds[c]:bounds[c+1]`` of the file); otherwise an (n_parts, n_chunks + 1) array: chunk
    c is rows ``cuts[p, c]:cuts[p, c+1]`` of every part p, merged by id (:func:`merge_by_id`).
    """

    epoch: int
    paths: tuple[str, ...]
    cuts: np.ndarray | None


@dataclass(frozen=True)
class RunPlan:
    """A checked run cut into chunks of rows; small and picklable (it travels to dask workers).

    ``train_accuracy`` (E,): per selected epoch, the share of examples whose argmax is their
    label, counted while the shards were checked.
    """

    n: int
    bounds: np.ndarray  # (n_chunks + 1,) example offsets of the chunks
    epochs: tuple[EpochShards, ...]
    classes: tuple[str, ...]
    id_type: str
    logits: bool
    train_accuracy: np.ndarray

    @property
    def n_chunks(self) -> int:
        return len(self.bounds) - 1

    @property
    def epoch_numbers(self) -> np.ndarray:
        return np.array([ep.epoch for ep in self.epochs], dtype=np.int64)


class RunReader:
    """The one way a run's shards are read (whole epochs, or the same rows of every epoch).

    :meth:`dynamics` reads whole epochs into a :class:`~datacarto.dynamics.TrainingDynamics`;
    :meth:`plan` checks every shard and cuts the run into chunks of rows that
    :class:`ChunkReader` reads from every epoch in lockstep (possible because every shard is
    sorted by id and every epoch holds the same ids). Rank shards of one epoch are merged by
    :func:`merge_by_id`; every epoch is compared with the first by :func:`check_same_examples`.
    """

    def __init__(self, run_dir: str | os.PathLike[str], meta: RunMeta) -> None:
        self.run_dir = Path(run_dir)
        self.meta = meta
        self.classes = meta.classes
        self.id_type = meta.id_type
        self.logits_stored = meta.logits_stored
        self.shards = list(iter_epoch_shards(self.run_dir, meta))

    def select(self, window: str | tuple[int | None, int | None] | None = None
               ) -> list[tuple[int, list[Path]]]:
        """``(epoch, shard paths)`` of the committed epochs in an epoch window (all for None)."""
        from ..dynamics import select_epochs

        if not self.shards:
            raise SchemaError(f"{self.run_dir / RUN_FILE}: the run has no committed epochs yet.")
        keep = select_epochs([e for e, _ in self.shards], window)
        return [s for s, k in zip(self.shards, keep) if k]

    def open(self, path: Path | str) -> ShardReader:
        return ShardReader(Path(path), n_classes=len(self.classes), id_type=self.id_type)

    def read_epoch(self, epoch: int, paths: list[Path],
                   columns: list[str] | None = None) -> dict[str, np.ndarray]:
        """One whole epoch, sorted by id, each id once (:func:`read_epoch`)."""
        return read_epoch(self.run_dir, self.meta, epoch, paths, columns=columns)

    def dynamics(self, *, epochs: str | tuple[int | None, int | None] | None = None,
                 logits: bool = True) -> Any:
        """Every epoch of the window, whole, as a :class:`~datacarto.dynamics.TrainingDynamics`."""
        from ..dynamics import TrainingDynamics

        columns = ["id", "label", *VALUE_COLUMNS]
        if logits and self.logits_stored:
            columns.append(LOGITS)
        selected = self.select(epochs)
        per_epoch: list[dict[str, np.ndarray]] = []
        for epoch, paths in selected:
            cols = self.read_epoch(epoch, paths, columns)
            if per_epoch:
                first = per_epoch[0]
                check_same_examples(paths[0], epoch, first["id"], first["label"], cols["id"],
                                    cols["label"])
            per_epoch.append(cols)
        return TrainingDynamics.from_epochs(per_epoch, epoch_numbers=[e for e, _ in selected],
                                            classes=self.classes, meta=self.meta.to_json())

    def plan(self, *, epochs: str | tuple[int | None, int | None] | None = None,
             chunk_rows: int = ROW_GROUP_ROWS) -> RunPlan:
        """Check every shard (schema, ids, labels) and cut the window's epochs into chunks.

        Every check that can fail before any chunk is read happens here, so a bad run fails
        fast. Raises :class:`NotStreamable` when a shard's rows are not sorted by id.
        """
        selected = self.select(epochs)
        self._check_shards()
        pool = ThreadPoolExecutor(1)  # reads the next epoch's keys while this one is checked
        try:
            ahead = pool.submit(self._keys, selected[0][1])
            ref: dict[str, np.ndarray] | None = None
            bounds = np.zeros(1, dtype=np.int64)
            plans: list[EpochShards] = []
            correct: list[int] = []
            for i, (epoch, paths) in enumerate(selected):
                parts = ahead.result()
                if i + 1 < len(selected):
                    ahead = pool.submit(self._keys, selected[i + 1][1])
                for path, part in zip(paths, parts):
                    if len(parts) == 1:
                        check_unique_ids(part["id"], path, epoch)
                    ids = part["id"]
                    if len(ids) > 1 and not np.all(ids[1:] >= ids[:-1]):
                        raise NotStreamable(f"{path}: rows are not sorted by id")
                cols = merge_by_id(parts)
                if ref is None:
                    ref = cols
                    n = len(cols["id"])
                    bounds = np.unique(np.r_[np.arange(0, n, chunk_rows), n]).astype(np.int64)
                else:
                    check_same_examples(paths[0], epoch, ref["id"], ref["label"], cols["id"],
                                        cols["label"])
                correct.append(int(cols["correct"].sum()))
                cuts = None
                if len(parts) > 1:
                    starts = ref["id"][bounds[:-1]]
                    cuts = np.stack([np.r_[np.searchsorted(p["id"], starts, side="left"),
                                           len(p["id"])] for p in parts]).astype(np.int64)
                    cuts[:, 0] = 0
                plans.append(EpochShards(epoch, tuple(str(p) for p in paths), cuts))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        assert ref is not None
        n = len(ref["id"])
        return RunPlan(n=n, bounds=bounds, epochs=tuple(plans), classes=self.classes,
                       id_type=self.id_type, logits=self.logits_stored,
                       train_accuracy=np.array(correct, dtype=np.float64) / max(n, 1))

    def _check_shards(self) -> None:
        """Open every shard of the run, also outside the window: a run with a broken shard is
        broken. Shards of different schema versions may mix (epochs recorded before and after
        an upgrade); each is read by its own version's rules."""
        for _, paths in self.shards:
            for path in paths:
                with self.open(path) as reader:
                    if self.logits_stored and not reader.has_logits:
                        raise SchemaError(f"{path}: this run stored no full logits (K too large "
                                          "or disabled).")

    def _keys(self, paths: list[Path]) -> list[dict[str, np.ndarray]]:
        """Per shard: ids, labels and whether the argmax is the label."""
        parts = []
        for path in paths:
            with self.open(path) as reader:
                cols = reader.read_rows(0, reader.num_rows, ["id", "label", "pred"])
            parts.append({"id": cols["id"], "label": cols["label"],
                          "correct": cols["pred"] == cols["label"]})
        return parts


class ChunkReader:
    """Reads chunk ``c`` of a :class:`RunPlan` (rows ``bounds[c]:bounds[c+1]`` of every epoch).

    Keeps its shards open between chunks; one per thread (Parquet readers are not shared).
    """

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self._open: dict[str, ShardReader] = {}

    def _reader(self, path: str) -> ShardReader:
        reader = self._open.get(path)
        if reader is None:
            reader = ShardReader(Path(path), n_classes=len(self.plan.classes),
                                 id_type=self.plan.id_type)
            self._open[path] = reader
        return reader

    def _rows(self, ep: EpochShards, c: int, columns: list[str], row_ids: np.ndarray | None = None,
              logits_into: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Chunk ``c`` of one epoch; a single shard writes its logits into ``logits_into``,
        merged rank shards return them (their rows are known only after the merge)."""
        a, b = int(self.plan.bounds[c]), int(self.plan.bounds[c + 1])
        # chunks already run in parallel: decoding their columns in parallel too oversubscribes
        if ep.cuts is None:
            return self._reader(ep.paths[0]).read_rows(a, b, columns, row_ids=row_ids,
                                                       use_threads=False, logits_into=logits_into)
        return merge_by_id([self._reader(path).read_rows(int(ep.cuts[p, c]),
                                                         int(ep.cuts[p, c + 1]), columns,
                                                         use_threads=False)
                            for p, path in enumerate(ep.paths)])

    def dynamics(self, c: int) -> Any:
        """Chunk ``c`` as a :class:`~datacarto.dynamics.TrainingDynamics` (all planned epochs).

        Its logits (n, E, K) are a view of one (K, n, E) array that every epoch's logits are
        decoded into: the layout the softmax of the metrics works in
        (:func:`datacarto.probability.epoch_softmax_summary`), filled with one copy.
        """
        from ..dynamics import TrainingDynamics

        plan = self.plan
        n = int(plan.bounds[c + 1] - plan.bounds[c])
        logits = (np.empty((len(plan.classes), n, len(plan.epochs)), dtype=np.float32)
                  if plan.logits else None)
        values = [*VALUE_COLUMNS, *([LOGITS] if plan.logits else [])]
        per_epoch: list[dict[str, np.ndarray]] = []
        for e, ep in enumerate(plan.epochs):
            into = None if logits is None else logits[:, :, e]
            if not per_epoch:
                per_epoch.append(self._rows(ep, c, ["id", "label", *values], logits_into=into))
            else:
                first = per_epoch[0]
                # the plan compared every epoch's ids and labels already: a single sorted shard
                # is read without them; merged rank shards need their ids
                cols = self._rows(ep, c, values if ep.cuts is None else ["id", "label", *values],
                                  row_ids=first["id"], logits_into=into)
                check_same_examples(ep.paths[0], ep.epoch, first["id"], first["label"],
                                    cols.get("id"), cols.get("label"), n_rows=len(cols["loss"]),
                                    row0=int(plan.bounds[c]))
                per_epoch.append(cols)
            if into is not None:
                z = per_epoch[-1].pop(LOGITS)
                if ep.cuts is not None:
                    into[...] = z.T
        dyn = TrainingDynamics.from_epochs(per_epoch, epoch_numbers=plan.epoch_numbers,
                                           classes=plan.classes)
        if logits is None:
            return dyn
        return replace(dyn, logits=logits[:, :dyn.n_examples].transpose(1, 2, 0))

    def close(self) -> None:
        for reader in self._open.values():
            reader.close()
        self._open.clear()

    def __enter__(self) -> ChunkReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
