"""``select(spread=True)`` / ``datacarto select --spread``: drop the hardest few, cover the rest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

import datacarto as dc
from datacarto.errors import InputError


def _metrics(confidence: list[float], labels: list[int] | None = None) -> pd.DataFrame:
    n = len(confidence)
    return pd.DataFrame({"id": np.arange(n), "label": labels if labels is not None else [0] * n,
                         "confidence": confidence, "variability": [0.1] * n})


def test_spread_leaves_out_the_hardest_and_covers_the_rest() -> None:
    m = _metrics([i / 100 for i in range(100)])  # id i has confidence i/100
    ids = dc.select(m, spread=True, count=10)
    assert len(ids) == 10 and min(ids) >= 5  # the hardest 5 % are left out
    assert max(ids) >= 90 and np.all(np.diff(np.sort(ids)) >= 8)  # evenly across the rest


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=60), st.floats(0.01, 1.0),
       st.floats(0.0, 0.5))
def test_spread_size_and_hardest_share(conf: list[float], fraction: float, drop: float) -> None:
    m = _metrics(conf)
    ids = dc.select(m, spread=True, fraction=fraction, drop_hardest=drop)
    total = int(np.floor(fraction * len(conf)))
    assert len(ids) == total and len(set(ids.tolist())) == total
    ranked = m.sort_values(["confidence", "id"], kind="mergesort")["id"].to_numpy()
    hardest = set(ranked[: min(int(np.floor(drop * len(conf))), len(conf) - total)].tolist())
    assert not hardest & set(ids.tolist())


def test_spread_stratified_keeps_class_shares() -> None:
    m = _metrics([i / 90 for i in range(90)], labels=[0] * 60 + [1] * 30)
    ids = dc.select(m, spread=True, fraction=0.5, stratify=True)
    labels = m.set_index("id").loc[ids, "label"]
    assert (labels == 0).sum() == 30 and (labels == 1).sum() == 15


def test_spread_errors() -> None:
    m = _metrics([0.5] * 10)
    with pytest.raises(InputError, match=r"exactly one of 'region' or 'by' \(or spread=True\)"):
        dc.select(m, region="easy", spread=True, count=2)
    with pytest.raises(InputError, match=r"drop_hardest must be in \[0, 1\); got 1\.5"):
        dc.select(m, spread=True, count=2, drop_hardest=1.5)


def test_cli_spread(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from builders import make_run

    run = make_run(tmp_path / "run", n=40)
    code, out, err = run_cli(capsys, "select", run, "--spread", "--fraction", "0.5", "-o",
                             tmp_path / "ids.txt")
    assert code == 0, err
    assert "by spread across the map" in out
    assert len((tmp_path / "ids.txt").read_text().split()) == 20
