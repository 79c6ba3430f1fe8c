"""Hugging Face ``datasets``: a ``save_to_disk`` directory read as a data file and written back.

A ``Dataset`` saved with ``Dataset.save_to_disk(DIR)`` is a data "file" of format ``"hf"``
(:func:`datacarto.datafiles.data_format`); a ``DatasetDict`` saved the same way holds one such
directory per split, so ``--split S`` stands for ``DIR/S``. Reading gives a DataFrame in which a
``ClassLabel`` column holds its class *names* (the run's classes are the names the user sees);
writing a subset of rows with some cells changed (:func:`write_rows`) keeps every column, the
dataset's ``Features`` and info, and stores a changed ``ClassLabel`` cell as the int code of the
new name. ``datasets`` is an optional extra, imported here only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError, SchemaError

__all__ = ["check_output", "dataset_kind", "frame_of", "read_dataset", "resolve_split",
           "save_beside", "write_rows"]

_DICT_FILE = "dataset_dict.json"
_STATE_FILE = "state.json"


def dataset_kind(path: str | os.PathLike[str]) -> str | None:
    """``"Dataset"`` or ``"DatasetDict"`` for a ``save_to_disk`` directory, else None."""
    path = Path(path)
    if not path.is_dir():
        return None
    if (path / _DICT_FILE).is_file():
        return "DatasetDict"
    if (path / _STATE_FILE).is_file():
        return "Dataset"
    return None


def _splits(path: Path) -> list[str]:
    try:
        return [str(s) for s in json.loads((path / _DICT_FILE).read_text("utf-8"))["splits"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}/{_DICT_FILE}: cannot read the list of splits ({err}).") from err


def resolve_split(path: str | os.PathLike[str], split: str | None) -> Path:
    """The ``Dataset`` directory that ``path`` (and ``--split``) names.

    A ``DatasetDict`` needs ``split``; the error names its splits. ``split`` with anything but a
    ``DatasetDict`` is an error too (it would be silently ignored otherwise).
    """
    path = Path(path)
    kind = dataset_kind(path)
    if kind == "DatasetDict":
        splits = _splits(path)
        if split is None:
            raise InputError(f"{path}: a DatasetDict with splits {', '.join(splits)}; choose one "
                             "with --split.")
        if split not in splits:
            raise InputError(f"{path}: no split {split!r}; the splits are {', '.join(splits)}.")
        return path / split
    if split is not None:
        raise InputError(f"{path}: --split {split} needs a DatasetDict saved with save_to_disk; "
                         "this is not one.")
    return path


def _datasets() -> Any:
    from .._deps import require

    return require("datasets", extra="datasets", feature="A Hugging Face dataset directory")


@contextlib.contextmanager
def _quiet(datasets: Any) -> Iterator[None]:
    """No progress bars from ``datasets`` while datacarto saves (its own output stays clean)."""
    was = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was:
            datasets.enable_progress_bars()


def _load(path: Path) -> Any:
    if dataset_kind(path) == "DatasetDict":
        resolve_split(path, None)  # raises, naming the splits
    datasets = _datasets()
    try:
        return datasets.load_from_disk(str(path), keep_in_memory=False)
    except (OSError, ValueError, KeyError, FileNotFoundError) as err:
        raise InputError(f"{path}: cannot read as a saved dataset ({err}).") from err


def frame_of(dataset: Any) -> pd.DataFrame:
    """``dataset`` as a DataFrame, ``ClassLabel`` columns as their class names."""
    datasets = _datasets()
    frame = dataset.to_pandas()
    for name, feature in dataset.features.items():
        if isinstance(feature, datasets.ClassLabel):
            names = feature.names
            frame[name] = pd.Series([None if v is None or v < 0 else names[int(v)]
                                     for v in frame[name].tolist()], dtype=object,
                                    index=frame.index)
    return frame


def read_dataset(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, Any]:
    """Read a saved ``Dataset``: (frame with class names, the ``datasets.Dataset``)."""
    dataset = _load(Path(path))
    return frame_of(dataset), dataset


def _fresh_name(out: Path) -> Path:
    return out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")


def write_rows(path: str | os.PathLike[str], rows: list[int], out: str | os.PathLike[str],
               changes: Mapping[int, Mapping[str, Any]]) -> None:
    """Save ``rows`` of the dataset at ``path`` (in that order) to ``out`` with
    ``changes[row][column]`` set; a ``ClassLabel`` cell is given by name and stored as its code.

    ``out`` is written next to its final place and renamed there, so a failure leaves no half
    dataset; an older dataset directory at ``out`` is replaced.
    """
    datasets = _datasets()
    from datasets.table import InMemoryTable
    import pyarrow as pa

    out = Path(out)
    source = _load(Path(path))
    arrow = source.data.table.take(pa.array(rows, type=pa.int64()))
    position = {r: i for i, r in enumerate(rows)}
    by_column: dict[str, dict[int, Any]] = {}
    for r, cells in changes.items():
        if r in position:
            for column, value in cells.items():
                by_column.setdefault(column, {})[position[r]] = value
    for column, values in by_column.items():
        feature = source.features[column]
        j = arrow.column_names.index(column)
        current = arrow.column(j).to_pylist()
        for i, value in values.items():
            if isinstance(feature, datasets.ClassLabel):
                if value not in feature.names:
                    raise InputError(f"{out}: label {value!r} is not one of column {column!r}'s "
                                     f"ClassLabel names ({', '.join(feature.names)}).")
                value = feature.str2int(value)
            current[i] = value
        field = arrow.schema.field(j)
        try:
            arrow = arrow.set_column(j, field, pa.array(current, type=field.type))
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise InputError(f"{out}: cannot store the new values of column {column!r} as "
                             f"{field.type} ({err}).") from err
    _save(datasets.Dataset(InMemoryTable(arrow), info=source.info.copy()), out)


def _save(dataset: Any, out: Path) -> None:
    """``save_to_disk`` into a fresh name beside ``out``, then rename it there: a failure leaves
    no half dataset. An older saved dataset (or an empty directory) at ``out`` is replaced."""
    empty = out.is_dir() and not any(out.iterdir())
    if out.exists() and not (dataset_kind(out) == "Dataset" or empty):
        raise InputError(f"{out}: exists and is not a saved dataset; choose a new directory.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = _fresh_name(out), _fresh_name(out)
    try:
        with _quiet(_datasets()):
            dataset.save_to_disk(str(tmp))  # writes only the selected rows of a select()ed one
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)


def check_output(out: str | os.PathLike[str], source: str | os.PathLike[str]) -> None:
    """Refuse to write a dataset over (or inside) the input dataset directory."""
    real_out = Path(os.path.realpath(out))
    real_src = Path(os.path.realpath(source))
    if real_out == real_src or real_src in real_out.parents or real_out in real_src.parents:
        raise InputError(f"{out}: this is (or holds) the input dataset {source}; datacarto never "
                         "overwrites its input. Choose another output directory.")


def save_beside(dataset: Any, out: str | os.PathLike[str]) -> Path:
    """Save an in-memory ``datasets.Dataset`` as ``OUT.dataset`` beside the run directory, so
    that the run records a data source that ``review --export`` / ``clean`` can copy."""
    datasets = _datasets()
    if isinstance(dataset, datasets.DatasetDict):
        raise InputError(f"a DatasetDict with splits {', '.join(dataset)}; pass one split, "
                         "e.g. dataset['train'].")
    if not isinstance(dataset, datasets.Dataset):
        raise SchemaError(f"expected a path or a datasets.Dataset, got {type(dataset).__name__}.")
    out = Path(out)
    target = out.with_name(out.name + ".dataset")
    if target.exists() and not _saved_by_run(target, out):
        raise InputError(f"{target}: exists and is not the copy an earlier datacarto run into "
                         f"{out} saved; datacarto never replaces it. Remove it or choose another "
                         "output directory.")
    _save(dataset, target)
    return target


def _saved_by_run(target: Path, out: Path) -> bool:
    """``target`` is the data source that the run in ``out`` recorded (so datacarto saved it)."""
    from .. import store
    from ..errors import DatacartoError

    try:
        meta = store.read_run_json(out)
    except (DatacartoError, OSError):
        return False
    recorded = meta.source.path if meta.source else None
    if not recorded or meta.created_by is None:
        return False
    real = os.path.realpath(target)
    return real in (os.path.realpath(recorded), os.path.realpath(out.parent / recorded))
