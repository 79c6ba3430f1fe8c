"""Metrics: a hand-computed anchor, reference oracles and hypothesis properties (docs/contract.md §2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import datacarto as dc
from datacarto.errors import InputError
from datacarto.metrics import _entropy

from builders import record_arrays, reference_softmax

# --- the anchor: 3 examples x 4 epochs x 3 classes, probabilities chosen by hand -------------
# gold probs: A [.2 .4 .6 .8] (label 0), B [.9 .9 .9 .9] (label 1), C [.1 .7 .3 .1] (label 2)
ANCHOR_PROBS = np.array([
    [[.2, .8, 0], [.4, .6, 0], [.6, .2, .2], [.8, .1, .1]],      # A: wrong, wrong, right, right
    [[.05, .9, .05]] * 4,                                         # B: always right
    [[.9, 0, .1], [.15, .15, .7], [0, .7, .3], [.9, 0, .1]],      # C: wrong, right, wrong, wrong
])
ANCHOR_LABELS = np.array([0, 1, 2])


@pytest.fixture(scope="module")
def anchor() -> pd.DataFrame:
    rec = dc.Recorder(None, classes=["neg", "neu", "pos"], inputs="probs")
    for e in range(4):
        rec.update(["a", "b", "c"], ANCHOR_PROBS[:, e], ANCHOR_LABELS)
        rec.end_epoch()
    return dc.compute_metrics(rec.to_dynamics())


def test_anchor_literal_values(anchor: pd.DataFrame) -> None:
    assert anchor["id"].tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(anchor["confidence"], [0.5, 0.9, 0.3], atol=1e-6)
    # population std: sqrt(.05), 0, sqrt(.06)
    np.testing.assert_allclose(anchor["variability"], [0.22360680, 0.0, 0.24494897], atol=1e-6)
    np.testing.assert_allclose(anchor["correctness"], [0.5, 1.0, 0.25])
    assert anchor["forgetting_events"].tolist() == [0, 0, 1]
    assert anchor["never_learned"].tolist() == [False, False, False]
    assert anchor["first_learned_epoch"].tolist()[:2] == [3, 1]
    assert pd.isna(anchor["first_learned_epoch"].iloc[2])
    np.testing.assert_allclose(anchor["threshold_closeness"], [0.25, 0.09, 0.21], atol=1e-6)
    # AUM skips epoch 1: A = mean(log(.4/.6), log(.6/.2), log(.8/.1)) = 0.924196
    np.testing.assert_allclose(anchor["aum"].iloc[0], 0.92419624, atol=1e-6)
    np.testing.assert_allclose(anchor["aum"].iloc[1], np.log(.9 / .05), atol=1e-6)
    assert anchor["suggested_label_name"].tolist()[:1] == ["neu"]


def test_anchor_include_ci_and_window() -> None:
    rec = dc.Recorder(None, num_classes=3, inputs="probs")
    for e in range(4):
        rec.update([0, 1, 2], ANCHOR_PROBS[:, e], ANCHOR_LABELS)
        rec.end_epoch()
    dyn = rec.to_dynamics()
    ci = dc.compute_metrics(dyn, include_ci=True)["variability"].to_numpy()
    # sqrt(v + v^2/(E-1)), v = .05 -> sqrt(.05 + .0025/3)
    np.testing.assert_allclose(ci[0], np.sqrt(0.05 + 0.0025 / 3), atol=1e-6)
    windowed = dc.compute_metrics(dyn.window("2:3"))
    np.testing.assert_allclose(windowed["confidence"], [0.5, 0.9, 0.5], atol=1e-6)
    np.testing.assert_allclose(windowed["correctness"], [0.5, 1.0, 0.5])


def test_public_functions_doctest_style_values() -> None:
    np.testing.assert_allclose(dc.variability([[0.2, 0.6], [0.9, 0.9]]), [0.2, 0.0])
    np.testing.assert_allclose(dc.correctness([[0, 1, 1]], [1]), [2 / 3])
    assert dc.forgetting_events([[1, 0, 1, 0]]).tolist() == [2]
    assert dc.never_learned([[0, 0], [0, 1]]).tolist() == [True, False]
    np.testing.assert_allclose(dc.first_learned_epoch([[0, 1, 1]], [5, 6, 7]), [6.0])
    np.testing.assert_allclose(dc.aum([[9.0, 1.0, 2.0]], skip_first=False), [4.0])


@pytest.mark.parametrize(("func", "arg", "match"), [
    (dc.confidence, [[0.5, 1.5]], r"gold_probs\[0, 1\] = 1\.5 is outside \[0\.0, 1\.0\]"),
    (dc.confidence, [[0.5, np.nan]], r"gold_probs\[0, 1\] = nan is not finite"),
    (dc.confidence, [0.5, 0.5], r"gold_probs must be 2-D; got shape \(2,\)"),
    (dc.confidence, np.zeros((0, 3)), r"gold_probs is empty"),
    (dc.forgetting_events, [[0, 2]], r"correct must hold booleans"),
    (dc.forgetting_events, [1, 0], r"correct must be a non-empty 2-D"),
    (dc.entropy, [[0.1, 0.2]], r"logits must be 3-D"),
    (dc.threshold_closeness, [[0.5]], r"confidence must be 1-D"),
], ids=["prob-range", "prob-nan", "prob-1d", "prob-empty", "correct-values", "correct-1d",
        "entropy-2d", "closeness-2d"])
def test_bad_inputs(func, arg, match) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match=match):
        func(arg)


def test_bad_correctness_inputs() -> None:
    with pytest.raises(InputError, match=r"labels has 1 entries but preds has 2 rows"):
        dc.correctness([[0], [1]], [0])
    with pytest.raises(InputError, match=r"preds must be a non-empty 2-D"):
        dc.correctness([0, 1], [0, 1])
    with pytest.raises(InputError, match=r"include_ci=True\) needs at least 2 epochs"):
        dc.variability([[0.3]], include_ci=True)
    with pytest.raises(InputError, match=r"epochs has 1 entries but correct has 2 columns"):
        dc.first_learned_epoch([[1, 1]], [1])


def test_one_epoch_warns() -> None:
    rec = dc.Recorder(None, num_classes=2)
    rec.update([0, 1], [[2.0, 0.0], [0.0, 2.0]], [0, 0])
    rec.end_epoch()
    with pytest.warns(UserWarning, match="only 1 epoch recorded"):
        frame = dc.compute_metrics(rec.to_dynamics())
    assert (frame["variability"] == 0).all()


# --- property tests -----------------------------------------------------------------------
@st.composite
def dynamics_arrays(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 12))
    e = draw(st.integers(1, 6))
    k = draw(st.integers(2, 5))
    logits = draw(hnp.arrays(np.float64, (n, e, k), elements=st.floats(-20, 20, width=32)))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return logits, labels


def _record(logits: np.ndarray, labels: np.ndarray, ids: np.ndarray | None = None) -> dc.TrainingDynamics:
    return record_arrays(None, logits, labels, ids).to_dynamics()


@settings(max_examples=200, deadline=None)
@given(dynamics_arrays())
def test_ranges_and_reference(data: tuple[np.ndarray, np.ndarray]) -> None:
    logits, labels = data
    dyn = _record(logits, labels)
    p = reference_softmax(logits.astype(np.float32).astype(np.float64))[np.arange(len(labels)), :, labels]
    conf = dc.confidence(dyn.gold_prob)
    var = dc.variability(dyn.gold_prob)
    corr = dc.correctness(dyn.pred, dyn.labels)
    np.testing.assert_allclose(conf, p.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(var, p.std(axis=1), atol=1e-6)
    assert ((conf >= 0) & (conf <= 1)).all() and ((var >= 0) & (var <= 0.5)).all()
    assert ((corr >= 0) & (corr <= 1)).all()
    assert (dc.threshold_closeness(conf) <= 0.25).all()
    ent = dc.entropy(logits)
    assert ((ent >= -1e-9) & (ent <= np.log(logits.shape[2]) + 1e-9)).all()
    np.testing.assert_array_equal(dyn.pred, logits.astype(np.float32).argmax(axis=2))


@settings(max_examples=100, deadline=None)
@given(dynamics_arrays(), st.randoms(use_true_random=False))
def test_permutation_and_epoch_order(data: tuple[np.ndarray, np.ndarray], rnd) -> None:  # noqa: ANN001
    logits, labels = data
    n, e, _ = logits.shape
    perm = np.array(rnd.sample(range(n), n))
    eperm = np.array(rnd.sample(range(e), e))
    base = dc.compute_metrics(_record(logits, labels)) if e > 1 else None
    if base is None:
        return
    # permuting examples (ids travel with rows) leaves per-id results unchanged
    permuted = dc.compute_metrics(_record(logits[perm], labels[perm], ids=perm))
    cols = ["confidence", "variability", "correctness", "forgetting_events", "aum", "entropy"]
    pd.testing.assert_frame_equal(base[cols], permuted[cols])
    # reordering epochs keeps confidence, variability and correctness
    shuffled = dc.compute_metrics(_record(logits[:, eperm], labels))
    for col in ("confidence", "variability", "correctness"):
        np.testing.assert_allclose(base[col], shuffled[col], atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 20), st.integers(1, 8), st.floats(0, 1))
def test_constant_probs_have_zero_variability(n: int, e: int, p: float) -> None:
    assert np.all(dc.variability(np.full((n, e), p)) < 1e-12)


def test_entropy_blocks_match_unblocked(monkeypatch: pytest.MonkeyPatch) -> None:
    import datacarto.probability as probability

    z = np.random.default_rng(0).normal(size=(50, 3, 4)).astype(np.float32)
    whole = _entropy(z)
    monkeypatch.setattr(probability, "SUMMARY_ROWS", 7)
    np.testing.assert_array_equal(_entropy(z), whole)


def test_aggregate_runs_mean_and_std() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 20)
    frames = [dc.compute_metrics(_record(rng.normal(size=(20, 3, 3)), labels)) for _ in range(3)]
    agg = dc.aggregate_runs(frames)
    stack = np.stack([f["confidence"] for f in frames])
    np.testing.assert_allclose(agg["confidence"], stack.mean(axis=0))
    np.testing.assert_allclose(agg["confidence_std"], stack.std(axis=0))
    assert (agg["n_runs"] == 3).all()
    assert agg.attrs["label_errors"]["message"].startswith("scores averaged over 3 runs")
    assert "label_errors" in frames[0].attrs and "window" in frames[0].attrs["label_errors"]
    assert set(agg["region"]) <= {"easy", "ambiguous", "hard"}


def test_aggregate_runs_rejects_different_examples() -> None:
    rng = np.random.default_rng(2)
    a = dc.compute_metrics(_record(rng.normal(size=(5, 2, 2)), np.zeros(5, int)))
    b = dc.compute_metrics(_record(rng.normal(size=(6, 2, 2)), np.zeros(6, int)))
    with pytest.raises(InputError, match="run 2 has different ids from run 1"):
        dc.aggregate_runs([a, b])
    c = dc.compute_metrics(_record(rng.normal(size=(5, 2, 2)), np.ones(5, int)))
    with pytest.raises(InputError, match="run 2 has different labels from run 1"):
        dc.aggregate_runs([a, c])
    with pytest.raises(InputError, match="at least one metrics frame"):
        dc.aggregate_runs([])


def test_assessment_column_and_json_serialisable_detector_info() -> None:
    import json

    rng = np.random.default_rng(4)
    frame = dc.compute_metrics(_record(rng.normal(size=(30, 3, 3)), rng.integers(0, 3, 30)))
    cols = list(frame.columns)
    assert cols[cols.index("is_label_error") + 1] == "assessment"
    flagged = frame["is_label_error"].to_numpy()
    assert (frame["assessment"][flagged] == "likely mislabeled").all()
    assert (frame["assessment"][~flagged] == frame["region"][~flagged]).all()
    assert json.loads(json.dumps(frame.attrs)) == frame.attrs  # plain Python types only
    info = dc.label_errors.detect_label_errors(_record(rng.normal(size=(30, 3, 3)),
                                                       rng.integers(0, 3, 30)))["info"]
    assert {"window", "memorisation", "message", "calibration", "unavailable"} <= set(info)
    assert json.loads(json.dumps(info)) == info


def test_aggregate_runs_majority_flags_assessment_and_seed_stability() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 40)
    frames = [dc.compute_metrics(_record(rng.normal(size=(40, 3, 3)), labels)) for _ in range(3)]
    agg = dc.aggregate_runs(frames)
    flags = np.stack([f["is_label_error"].to_numpy() for f in frames])
    np.testing.assert_array_equal(agg["is_label_error"], flags.sum(axis=0) >= 2)
    want = np.where(agg["is_label_error"], "likely mislabeled", agg["region"].to_numpy(dtype=object))
    np.testing.assert_array_equal(agg["assessment"].to_numpy(dtype=object), want)
    stability = agg.attrs["seed_stability"]
    expected = dc.label_errors.seed_stability([f["label_error_score"] for f in frames])
    assert stability["mean"] == pytest.approx(expected["mean"])
    np.testing.assert_allclose(stability["matrix"], expected["matrix"])
    assert "seed_stability" not in dc.aggregate_runs(frames[:1]).attrs
