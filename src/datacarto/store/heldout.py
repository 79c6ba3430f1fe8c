"""``RUN/heldout.parquet``: the side models' held-out logits of a ``datacarto run``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import SchemaError
from .files import atomic_write

#: File of a ``datacarto run`` directory with the side models' held-out logits per epoch.
HELDOUT_FILE = "heldout.parquet"


@dataclass(frozen=True)
class HeldOut:
    """Held-out logits of every example: ``logits[e, i]`` (E_h, N, K) float32 is the logit
    vector that a model which did *not* train on example ``ids[i]`` gave it after epoch
    ``epochs[e]``; ``folds`` (N,) says which fold each example belongs to
    (the side model that predicted it). Rows are in
    ascending id order, as in a run's shards."""

    ids: np.ndarray
    epochs: np.ndarray
    folds: np.ndarray
    logits: np.ndarray


def write_heldout(path: str | os.PathLike[str], ids: np.ndarray, folds: np.ndarray,
                  logits: np.ndarray) -> None:
    """Write :class:`HeldOut` data (rows in any order; stored sorted by id) atomically.

    Columns: id, epoch (1-based), fold (0/1), logits (fixed-size list of K float32).
    """
    n_epochs, n, k = logits.shape
    order = np.argsort(ids, kind="stable")
    id_col = np.asarray(ids)[order]
    table = pa.table({
        "id": pa.array(np.tile(id_col.astype(str) if id_col.dtype.kind in "UO"
                               else id_col.astype(np.int64), n_epochs)),
        "epoch": pa.array(np.repeat(np.arange(1, n_epochs + 1, dtype=np.int32), n)),
        "fold": pa.array(np.tile(np.asarray(folds)[order].astype(np.int8), n_epochs)),
        "logits": pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(logits[:, order], dtype=np.float32).reshape(-1)), k),
    })
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def read_heldout(run_dir: str | os.PathLike[str]) -> HeldOut | None:
    """The run's :class:`HeldOut` logits, or None when it has no ``heldout.parquet``."""
    path = Path(run_dir) / HELDOUT_FILE
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
        epoch = table.column("epoch").to_numpy()
        ids = table.column("id").to_numpy(zero_copy_only=False)
        folds = table.column("fold").to_numpy()
        col = table.column("logits").combine_chunks()
        k = col.type.list_size
        flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    except (OSError, KeyError, ValueError, AttributeError, pa.ArrowException) as err:
        raise SchemaError(f"{path}: not a readable held-out logits file ({err}).") from None
    epochs, sizes = np.unique(epoch, return_counts=True)
    n = int(sizes[0]) if len(sizes) else 0
    if (sizes != n).any() or not np.array_equal(epoch, np.repeat(epochs, n)):
        raise SchemaError(f"{path}: every epoch must list the same examples, in order (epoch "
                          f"{int(epochs[0])} has {n} rows, epoch {int(epochs[-1])} has "
                          f"{int(sizes[-1])}).")
    return HeldOut(ids=ids[:n], epochs=epochs.astype(np.int64), folds=folds[:n],
                   logits=flat.reshape(len(epochs), n, k))
