"""Hugging Face ``datasets`` in and out: ``run DIR`` on a ``save_to_disk`` directory, and
``review --export`` / ``select`` / ``clean`` writing a dataset of the same kind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from datacarto.cli import main
from datacarto.errors import InputError
from datacarto.review.decisions import LOG_NAME, REVIEW_DIR, DecisionLog

from builders import assert_cli_error

datasets = pytest.importorskip("datasets", reason="the datasets extra is not installed")

NAMES = ["cat", "dog", "eel"]


def _blobs(n: int = 150, seed: int = 0) -> "datasets.Dataset":
    rng = np.random.default_rng(seed)
    true = np.repeat(np.arange(3), n // 3)
    centers = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    x = centers[true] + rng.normal(0, 0.7, size=(len(true), 2))
    given = true.copy()
    given[::10] = (true[::10] + 1) % 3  # planted label errors
    features = datasets.Features({"x1": datasets.Value("float32"), "x2": datasets.Value("float32"),
                                  "note": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=NAMES)})
    return datasets.Dataset.from_dict(
        {"x1": x[:, 0].tolist(), "x2": x[:, 1].tolist(), "note": [f"row {i}" for i in range(len(true))],
         "label": given.tolist()}, features=features)


@pytest.fixture(scope="module")
def dataset_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("hf")
    data = root / "blobs"
    datasets.DatasetDict({"train": _blobs(), "test": _blobs(30, seed=1)}).save_to_disk(str(data))
    run = root / "run"
    assert main(["run", str(data), "--split", "train", "--feature-columns", "x1,x2",
                 "--out", str(run), "--quiet"]) == 0
    return run, data


@pytest.fixture()
def fresh(dataset_run: tuple[Path, Path], tmp_path: Path) -> Path:
    run, data = dataset_run
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def test_run_records_the_split_directory_and_class_names(dataset_run: tuple[Path, Path]) -> None:
    run, data = dataset_run
    meta = json.loads((run / "seed-0" / "run.json").read_text()) if (run / "seed-0").is_dir() \
        else json.loads((run / "run.json").read_text())
    assert meta["classes"] == NAMES
    assert Path(meta["extra"]["source"]["path"]) == data / "train"
    assert sorted(p.name for p in (data / "train").iterdir()) == \
        ["data-00000-of-00001.arrow", "dataset_info.json", "state.json"]  # nothing added


def test_review_export_writes_a_dataset_with_features_kept(fresh: Path, tmp_path: Path) -> None:
    log = DecisionLog(fresh / REVIEW_DIR / LOG_NAME)
    log.append(id=0, old_label="dog", action="relabel", new_label="eel")
    log.append(id=5, old_label="cat", action="drop", new_label=None)
    out = tmp_path / "corrected"
    assert main(["review", str(fresh), "--export", str(out)]) == 0
    got = datasets.load_from_disk(str(out))
    original = _blobs()
    assert got.features == original.features  # ClassLabel names and value types kept
    assert len(got) == len(original) - 1
    assert got[0]["label"] == NAMES.index("eel")  # the int code of the new name
    kept = [i for i in range(len(original)) if i != 5]
    assert got["note"] == [original[i]["note"] for i in kept]
    assert got["label"][1:] == [original[i]["label"] for i in kept[1:]]
    assert (tmp_path / "corrected.changes.csv").is_file()


def test_clean_and_select_write_datasets(fresh: Path, tmp_path: Path) -> None:
    cleaned = tmp_path / "cleaned"
    assert main(["clean", str(fresh), "-o", str(cleaned)]) == 0
    got = datasets.load_from_disk(str(cleaned))
    assert got.features == _blobs().features
    assert sum(a != b for a, b in zip(got["label"], _blobs()["label"])) > 0
    picked = tmp_path / "hard"
    assert main(["select", str(fresh), "--region", "hard", "--count", "5", "-o", str(picked)]) == 0
    sub = datasets.load_from_disk(str(picked))
    assert len(sub) == 5 and sub.features == _blobs().features


def test_python_api_takes_a_dataset_object(tmp_path: Path) -> None:
    from datacarto.train.preparation import RunOptions
    from datacarto.workflow import run_file

    result = run_file(_blobs(), RunOptions(feature_columns="x1,x2", quiet=True), tmp_path / "run")
    assert list(result.prepared.classes) == NAMES
    assert datasets.load_from_disk(str(tmp_path / "run.dataset")).features == _blobs().features
    # a second run into the same directory replaces the copy the first one saved ...
    run_file(_blobs(), RunOptions(feature_columns="x1,x2", quiet=True), tmp_path / "run")
    # ... but a dataset datacarto did not save there is never replaced
    _blobs().save_to_disk(str(tmp_path / "mine.dataset"))
    before = sorted(p.name for p in (tmp_path / "mine.dataset").iterdir())
    with pytest.raises(InputError, match=r"mine.dataset: exists and is not the copy"):
        run_file(_blobs(), RunOptions(feature_columns="x1,x2", quiet=True), tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine.dataset").iterdir()) == before


def test_a_datasetdict_needs_a_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "dd"
    datasets.DatasetDict({"train": _blobs(30), "test": _blobs(30)}).save_to_disk(str(data))
    capsys.readouterr()  # the progress bars of save_to_disk
    assert_cli_error(capsys, ["run", data, "--out", tmp_path / "run"],
                     r"DatasetDict with splits train, test; choose one with --split",
                     absent=[tmp_path / "run"])
    assert_cli_error(capsys, ["run", data, "--split", "dev", "--out", tmp_path / "run"],
                     r"no split 'dev'; the splits are train, test", absent=[tmp_path / "run"])


def test_a_dataset_without_label_column_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "nolabel"
    _blobs(30).remove_columns("label").save_to_disk(str(data))
    capsys.readouterr()
    assert_cli_error(capsys, ["run", data, "--feature-columns", "x1,x2", "--out", tmp_path / "run"],
                     r"label", absent=[tmp_path / "run"])
