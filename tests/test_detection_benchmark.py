"""The detection benchmark's pipeline (benchmarks/detection.py --quick): runs, writes, validates.

It checks the pipeline, not the figures: those are in benchmarks/results/detection.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import benchmark_module

pytest.importorskip("sklearn")
pytest.importorskip("cleanlab")

from datacarto.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def detection():  # type: ignore[no-untyped-def]
    with benchmark_module("detection") as module:
        yield module


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_quick_run_writes_results(detection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "detection.md"
    assert detection.main(["--quick", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    for section in ("## Setup", "## Summary", "## Goal check", "## Average precision per setting",
                    "## Flags and suggested labels", "## Likely mislabeled vs ambiguous vs hard",
                    "## Memorisation", "## Stability across 3 training seeds"):
        assert section in text
    assert "| digits | uniform |" in text
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    (row,) = data["rows"]
    assert (row["dataset"], row["noise"], row["rate"], row["seed"]) == ("digits", "uniform", 0.2, 1)
    for method in detection.METHODS:
        for measure in ("ap", "auroc", "p_at_k"):
            assert 0.0 <= row[f"{method}.{measure}"] <= 1.0
    for flagger in detection.FLAGGERS:
        assert 0.0 <= row[f"{flagger}.flag_f1"] <= 1.0
        assert 0.0 <= row[f"{flagger}.suggestion"] <= 1.0
    assert row["compute.datacarto"] / row["compute.cleanlab"] == pytest.approx(0.25, abs=0.01)
    assert -1.0 <= row["stability.rank_corr"] <= 1.0
    assert set(data["goal"]) >= {"share_best", "never_below_cleanlab", "share_f1_ge_cleanlab",
                                 "compute_ratio"}


def test_bad_rate_is_a_clear_error(detection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=r"'rate' parameter of benchmarks/detection.py --rates must "
                                         r"be a noise rate in \[0, 1\)"):
        detection.main(["--rates", "1.5", "--out", str(tmp_path / "x.md")])


def test_unknown_dataset_and_missing_files(detection, tmp_path: Path,  # type: ignore[no-untyped-def]
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="unknown data set 'mnist'"):
        detection.main(["--datasets", "mnist", "--out", str(tmp_path / "x.md")])
    monkeypatch.setattr(detection, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    with pytest.raises(detection.Unavailable, match="apt-get install dataset-fashion-mnist"):
        detection.load_fashion_mnist()
    with pytest.raises(SystemExit, match="no data set available"):
        detection.main(["--quick", "--datasets", "fashion_mnist", "--out", str(tmp_path / "x.md")])
