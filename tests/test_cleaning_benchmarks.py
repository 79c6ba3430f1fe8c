"""The cleaning and selection benchmarks' pipelines (``--quick``): they run and write their
reports. The figures are in benchmarks/results/cleaning.md and selection.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import benchmark_module

pytest.importorskip("sklearn")
pytest.importorskip("cleanlab")
pytest.importorskip("threadpoolctl")


@pytest.mark.slow  # 2 small data sets, one datacarto run each: about 10 s
def test_cleaning_quick_writes_results(tmp_path: Path) -> None:
    with benchmark_module("cleaning") as cleaning:
        assert cleaning.main(["--quick", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "cleaning.md").read_text(encoding="utf-8")
    assert "## Goals (default policy" in text and "cleanlab drop" in text
    doc = json.loads((tmp_path / "cleaning.json").read_text(encoding="utf-8"))
    assert {s["dataset"] for s in doc["settings"]} == {"wine", "breast-cancer"}
    for setting in doc["settings"]:
        methods = setting["methods"]
        assert {"noisy", "oracle", "cleanlab drop", "datacarto fix"} <= set(methods)
        assert methods["oracle"]["wrong_after"] == 0 and methods["noisy"]["fixed"] == 0
        assert 0.0 <= methods["datacarto fix"]["accuracy"] <= 1.0


def test_label_counts() -> None:
    import numpy as np

    with benchmark_module("cleaning") as cleaning:
        truth = np.array([0, 0, 1, 1, 2])
        given = np.array([1, 0, 1, 0, 2])       # rows 0 and 3 wrong
        kept = np.array([True, True, True, False, False])
        new = np.array([0, 1, 1, 0, 2])         # row 0 fixed, row 1 broken
        counts = cleaning.label_counts(truth, given, kept, new)
    assert counts == {"fixed": 2, "broken": 1, "dropped_right": 1, "wrong_before": 2,
                      "wrong_after": 1, "relabelled": 2, "dropped": 2}


@pytest.mark.slow  # digits, one seed: about 15 s
def test_selection_quick_writes_results(tmp_path: Path) -> None:
    with benchmark_module("selection") as selection:
        assert selection.main(["--quick", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "selection.md").read_text(encoding="utf-8")
    assert "Where the paper's findings hold" in text
    doc = json.loads((tmp_path / "selection.json").read_text(encoding="utf-8"))
    subsets = doc["settings"][0]["subsets"]
    assert set(subsets) == {"ambiguous", "hard", "easy", "random", "spread", "100%"}
    run = doc["runs"][0]["subsets"]
    assert run["spread"]["n"] == run["ambiguous"]["n"] == int(0.33 * doc["runs"][0]["n_train"])
