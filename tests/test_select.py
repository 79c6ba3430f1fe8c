"""Selection contract (docs/contract.md §4) and regions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datacarto as dc
from datacarto.errors import InputError
from datacarto.regions import assign_regions


def _metrics(n: int, seed: int = 0, k: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    conf = rng.random(n)
    return pd.DataFrame({
        "id": rng.permutation(n * 3)[:n],
        "label": rng.integers(0, k, n),
        "confidence": np.round(conf, 1),  # many ties on purpose
        "variability": np.round(rng.random(n) * np.sqrt(conf * (1 - conf)), 2),
        "aum": rng.normal(size=n),
    })


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 300), st.floats(0.001, 1.0), st.sampled_from(["easy", "ambiguous", "hard"]),
       st.booleans())
def test_fraction_gives_exactly_floor(n: int, fraction: float, region: str, stratify: bool) -> None:
    m = _metrics(n, seed=n)
    ids = dc.select(m, region=region, fraction=fraction, stratify=stratify)
    assert len(ids) == int(np.floor(fraction * n))
    assert len(set(ids.tolist())) == len(ids)


def test_ranking_and_ties_broken_by_id() -> None:
    m = pd.DataFrame({"id": [5, 3, 9, 1], "label": [0, 0, 0, 0],
                      "confidence": [0.5, 0.5, 0.9, 0.1], "variability": [0.2, 0.2, 0.0, 0.3]})
    assert dc.select(m, region="ambiguous", count=3).tolist() == [1, 3, 5]
    assert dc.select(m, region="hard", count=3).tolist() == [1, 3, 5]
    assert dc.select(m, region="easy", count=2).tolist() == [9, 3]
    assert dc.select(m, by="confidence", ascending=True, count=4).tolist() == [1, 3, 5, 9]
    # deterministic whatever the input order
    shuffled = m.sample(frac=1.0, random_state=3)
    assert dc.select(shuffled, region="ambiguous", count=3).tolist() == [1, 3, 5]


def test_paper_selection_33_percent_most_ambiguous() -> None:
    m = _metrics(1000, seed=4)
    ids = dc.select(m, region="ambiguous", fraction=0.33)
    assert len(ids) == 330  # allenai wrote one extra
    chosen = m.set_index("id").loc[ids, "variability"]
    rest = m[~m["id"].isin(ids)]["variability"]
    assert chosen.min() >= rest.max()


def test_stratified_keeps_class_proportions() -> None:
    m = _metrics(999, seed=5)
    ids = dc.select(m, by="aum", fraction=0.5, stratify=True)
    assert len(ids) == 499
    picked = m.set_index("id").loc[ids, "label"].value_counts().sort_index()
    expected = m["label"].value_counts().sort_index() * 0.5
    assert np.all(np.abs(picked.to_numpy() - expected.to_numpy()) <= 1)
    # within each class the best by aum were taken
    for label, group in m.groupby("label"):
        taken = group[group["id"].isin(ids)]["aum"]
        left = group[~group["id"].isin(ids)]["aum"]
        assert taken.min() >= left.max()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"region": "ambigous", "fraction": 0.3}, r"'region' parameter of select must be one of .* Did you mean 'ambiguous'\?"),
    ({"region": "easy", "fraction": 1.5}, r"The 'fraction' parameter of select must be a float in \(0, 1\]\. Got 1\.5 instead"),
    ({"region": "easy", "fraction": 0}, r"must be a float in \(0, 1\]\. Got 0 instead"),
    ({"region": "easy", "fraction": "x"}, r"Got 'x' instead"),
    ({"region": "easy", "count": -1}, r"'count' parameter of select must be a non-negative integer"),
    ({"region": "easy", "count": 11}, r"'count' parameter of select is 11 but the run has only 10"),
    ({"region": "easy"}, r"exactly one of 'fraction' or 'count'"),
    ({"region": "easy", "by": "aum", "count": 1}, r"exactly one of 'region' or 'by'"),
    ({"by": "confidenc", "count": 1}, r"'by' parameter of select must be one of .* Did you mean 'confidence'\?"),
], ids=["region-typo", "fraction-high", "fraction-zero", "fraction-text", "count-negative",
        "count-too-big", "no-size", "two-keys", "by-typo"])
def test_select_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        dc.select(_metrics(10), **kwargs)


def test_select_rejects_missing_values() -> None:
    m = _metrics(10)
    m["entropy"] = np.nan
    with pytest.raises(InputError, match=r"column 'entropy' has missing values"):
        dc.select(m, by="entropy", count=2)


def test_regions_defaults_are_sensible_on_a_typical_map() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    easy = np.column_stack([rng.beta(20, 1, n), rng.beta(1, 20, n) * 0.2])  # conf, var
    amb = np.column_stack([rng.uniform(0.3, 0.8, n // 5), rng.uniform(0.25, 0.4, n // 5)])
    hard = np.column_stack([rng.beta(1, 10, n // 10), rng.beta(1, 20, n // 10) * 0.15])
    conf, var = np.vstack([easy, amb, hard]).T
    regions = assign_regions(conf, var)
    truth = np.array(["easy"] * n + ["ambiguous"] * (n // 5) + ["hard"] * (n // 10))
    assert (regions == "easy").mean() > 0.5  # most examples are easy
    assert (regions == truth).mean() > 0.95


def test_region_methods() -> None:
    conf = np.array([0.95, 0.1, 0.5, 0.6])
    var = np.array([0.01, 0.02, 0.3, 0.1])
    assert assign_regions(conf, var, method="threshold").tolist() == ["easy", "hard", "ambiguous", "easy"]
    q = assign_regions(conf, var, method="quantile", ambiguous_fraction=0.25, hard_fraction=0.25)
    assert q.tolist() == ["easy", "hard", "ambiguous", "easy"]
    with pytest.raises(InputError, match=r"'method' parameter of assign_regions must be one of"):
        assign_regions(conf, var, method="kmeans")
