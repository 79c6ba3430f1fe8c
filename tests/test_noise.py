"""Label-noise injection (datacarto.noise)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacarto.errors import InputError
from datacarto.noise import NOISE_KINDS, check_noise_rate, inject_label_noise


@pytest.fixture
def labels() -> np.ndarray:
    return np.repeat(np.arange(4), [100, 60, 30, 10])


def test_uniform_flips_exact_count_to_other_classes(labels: np.ndarray) -> None:
    noisy, flipped = inject_label_noise(labels, 0.25, seed=1)
    assert flipped.sum() == 50
    assert np.array_equal(flipped, noisy != labels)
    assert noisy.dtype == np.int64 and set(np.unique(noisy)) <= {0, 1, 2, 3}


def test_uniform_destinations_cover_every_other_class() -> None:
    y = np.zeros(3000, dtype=int)
    noisy, flipped = inject_label_noise(y, 0.5, n_classes=4, seed=0)
    counts = np.bincount(noisy[flipped], minlength=4)
    assert counts[0] == 0
    assert np.all(np.abs(counts[1:] / counts[1:].sum() - 1 / 3) < 0.05)


def test_pair_flips_each_class_to_the_next(labels: np.ndarray) -> None:
    noisy, flipped = inject_label_noise(labels, 0.2, kind="pair", seed=3)
    for c, n_c in enumerate([100, 60, 30, 10]):
        members = labels == c
        assert flipped[members].sum() == round(0.2 * n_c)
        assert np.all(noisy[members & flipped] == (c + 1) % 4)


def test_pair_flips_with_custom_pairs(labels: np.ndarray) -> None:
    noisy, flipped = inject_label_noise(labels, 0.5, kind="pair", pairs=[1, 0, 3, 2], seed=0)
    assert np.all(noisy[flipped & (labels == 0)] == 1)
    assert np.all(noisy[flipped & (labels == 3)] == 2)


def test_seeded_and_rate_zero(labels: np.ndarray) -> None:
    a = inject_label_noise(labels, 0.3, seed=7)[0]
    assert np.array_equal(a, inject_label_noise(labels, 0.3, seed=7)[0])
    assert not np.array_equal(a, inject_label_noise(labels, 0.3, seed=8)[0])
    noisy, flipped = inject_label_noise(labels, 0.0, kind="pair", seed=7)
    assert np.array_equal(noisy, labels) and not flipped.any()


def test_absent_classes_need_n_classes() -> None:
    noisy, _ = inject_label_noise([0, 0, 0, 0], 0.5, n_classes=3, seed=0)
    assert set(noisy.tolist()) <= {0, 1, 2}


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), "a lot", None],
                         ids=["negative", "one", "above-one", "nan", "text", "none"])
def test_rate_outside_unit_interval(rate: object) -> None:
    with pytest.raises(InputError, match=r"'rate' parameter of inject_label_noise must be a noise "
                                         r"rate in \[0, 1\)"):
        inject_label_noise([0, 1, 0, 1], rate)  # type: ignore[arg-type]


def test_check_noise_rate_names_the_caller() -> None:
    assert check_noise_rate(0.4) == 0.4
    with pytest.raises(InputError, match="parameter of my bench must"):
        check_noise_rate(2, where="my bench")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"labels": [1, 1, 1], "rate": 0.1}, r"labels hold a single class \(K = 1\).*Pass n_classes="),
    ({"labels": [0, 0, 0], "rate": 0.1}, r"labels hold a single class \(K = 1\)"),
    ({"labels": [0, 0, 0], "rate": 0.1, "n_classes": 1}, r"single class \(K = 1\)"),
    ({"labels": [], "rate": 0.1}, r"labels is empty"),
    ({"labels": [0, 1], "rate": 0.1, "kind": "pairs"}, r"must be one of 'uniform', 'pair'.*Did you mean 'pair'"),
    ({"labels": [0, 1, 2], "rate": 0.1, "kind": "pair", "pairs": [1, 2]}, r"one target class per class \(K = 3\)"),
    ({"labels": [0, 1, 2], "rate": 0.1, "kind": "pair", "pairs": [1, 1, 0]}, r"pairs\[1\] = 1 maps class 1 to itself"),
    ({"labels": [0, 5], "rate": 0.1, "n_classes": 3}, r"labels\[1\] = 5 is outside 0..2"),
], ids=["one-class-present", "one-class", "n-classes-1", "empty", "kind-typo", "pairs-length",
        "pairs-self", "label-range"])
def test_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        inject_label_noise(**kwargs)


def test_one_class_present_is_fine_with_n_classes() -> None:
    noisy, flipped = inject_label_noise([1, 1, 1, 1], 0.5, n_classes=2, seed=0)
    assert flipped.sum() == 2 and set(noisy[flipped].tolist()) == {0}


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 300), k=st.integers(2, 6), rate=st.floats(0, 0.99),
       kind=st.sampled_from(NOISE_KINDS), seed=st.integers(0, 2**16))
def test_properties(n: int, k: int, rate: float, kind: str, seed: int) -> None:
    y = np.random.default_rng(seed).integers(0, k, n)
    noisy, flipped = inject_label_noise(y, rate, kind=kind, n_classes=k, seed=seed)
    assert np.array_equal(flipped, noisy != y)
    assert ((noisy >= 0) & (noisy < k)).all()
    if kind == "uniform":
        assert flipped.sum() == round(rate * n)
    else:
        assert flipped.sum() == sum(round(rate * (y == c).sum()) for c in range(k))
