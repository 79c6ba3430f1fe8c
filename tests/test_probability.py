"""Softmax family and the one "looks like probabilities" rule: anchors, properties, edges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from datacarto.probability import (MIN_PROB, PROB_SUM_ATOL, PROBS_MIN_ROWS, label_log_prob,
                                   log_probs, log_softmax, logsumexp, looks_like_probs,
                                   non_probability_rows, softmax)

logit_arrays = hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 5)),
                          elements=st.floats(-300, 300, allow_nan=False))


def test_anchor_values() -> None:
    z = np.array([[0.0, np.log(3.0)], [1000.0, 1000.0]])
    np.testing.assert_allclose(softmax(z), [[0.25, 0.75], [0.5, 0.5]])
    np.testing.assert_allclose(log_softmax(z), np.log([[0.25, 0.75], [0.5, 0.5]]))
    np.testing.assert_allclose(logsumexp(z), [np.log(4.0), 1000.0 + np.log(2.0)])
    np.testing.assert_allclose(np.exp(label_log_prob(z, [1, 0])), [0.75, 0.5])


def test_float32_input_is_computed_in_float64() -> None:
    z = np.array([[0.0, 1e-4]], dtype=np.float32)
    assert softmax(z).dtype == log_softmax(z).dtype == label_log_prob(z, [0]).dtype == np.float64


@settings(max_examples=60, deadline=None)
@given(logit_arrays, st.floats(-1e3, 1e3))
def test_softmax_properties(z: np.ndarray, shift: float) -> None:
    p = softmax(z)
    assert np.all((p >= 0) & (p <= 1)) and np.allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(log_softmax(z)), p, atol=1e-12)
    np.testing.assert_allclose(softmax(z + shift), p, atol=1e-9)  # a per-row shift changes nothing
    np.testing.assert_allclose(log_softmax(z), z - logsumexp(z)[:, None], atol=1e-9)
    y = np.argmax(z, axis=1)
    gold = log_softmax(z)[np.arange(len(y)), y]
    np.testing.assert_allclose(label_log_prob(z, y), gold, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(logit_arrays, st.integers(1, 7))
def test_label_log_prob_does_not_depend_on_the_block_size(z: np.ndarray, floats: int) -> None:
    y = np.zeros(len(z), dtype=np.int64)
    np.testing.assert_array_equal(label_log_prob(z, y, max_floats=floats), label_log_prob(z, y))


def test_log_probs_clips_zero() -> None:
    out = log_probs(np.array([[1.0, 0.0]]))
    assert np.isfinite(out).all() and out[0, 1] == np.log(MIN_PROB)
    np.testing.assert_allclose(softmax(log_probs([[0.2, 0.8]])), [[0.2, 0.8]])


# ------------------------------------------------------------------ the probability rule
def _rows(n: int, row: list[float]) -> np.ndarray:
    return np.tile(np.asarray(row, dtype=np.float64), (n, 1))


@pytest.mark.parametrize(("out", "expected"), [
    (_rows(PROBS_MIN_ROWS, [0.3, 0.7]), True),                          # the minimum batch
    (_rows(PROBS_MIN_ROWS - 1, [0.3, 0.7]), False),                     # one row: chance
    (_rows(4, [1.0, 0.0]), False),                                      # one-hot: valid logits
    (_rows(4, [0.3, 0.7 + 0.9 * PROB_SUM_ATOL]), True),                 # just inside the tolerance
    (_rows(4, [0.3, 0.7 + 1.1 * PROB_SUM_ATOL]), False),                # just outside it
    (_rows(4, [0.3, 0.7 - 1.1 * PROB_SUM_ATOL]), False),
    (np.vstack([_rows(3, [0.3, 0.7]), [[1.2, -0.2]]]), False),          # one row out of [0, 1]
    (np.vstack([_rows(3, [0.3, 0.7]), [[0.4, 0.4]]]), False),           # one row not summing to 1
    (_rows(4, [0.0, 1.0]), False),                                      # no fraction anywhere
    (np.vstack([_rows(3, [0.0, 1.0]), [[0.5, 0.5]]]), True),            # one fraction is enough
    (_rows(4, [0.2, 0.3, 0.5]).astype(np.float16), True),               # half-precision softmax
], ids=["min-rows", "too-few-rows", "one-hot", "inside-atol", "outside-atol-high",
        "outside-atol-low", "out-of-range", "bad-sum", "no-fraction", "one-fraction", "float16"])
def test_looks_like_probs_edges(out: np.ndarray, expected: bool) -> None:
    assert looks_like_probs(out) is expected


def test_non_probability_rows_is_the_same_rule_row_by_row() -> None:
    out = np.array([[0.3, 0.7], [0.3, 0.7 + 1.1 * PROB_SUM_ATOL], [-0.01, 1.01], [1.0, 0.0]])
    assert non_probability_rows(out).tolist() == [False, True, True, False]


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(PROBS_MIN_ROWS, 6), st.integers(2, 5)),
                  elements=st.floats(-5, 5, allow_nan=False)))
def test_softmax_outputs_always_look_like_probs(z: np.ndarray) -> None:
    p = softmax(z)
    assert not non_probability_rows(p).any()
    fractional = ((p > 0) & (p < 1)).any()
    assert looks_like_probs(p) is bool(fractional)
