"""Label-error score, suggested label, calibrated flag and memorisation-aware window."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datacarto as dc
from datacarto.dynamics import TrainingDynamics
from datacarto.errors import InputError
from datacarto.evaluation import average_precision, flag_scores, suggested_label_accuracy
from datacarto.label_errors import (ASSESSMENTS, DEFAULT_METHOD, LABEL_ERROR_METHODS, NoiseModel,
                                    choose_window, detect_label_errors, probs_from_stored,
                                    seed_stability, stable_flags)

from builders import reference_softmax


def simulate(n: int = 400, k: int = 4, epochs: int = 12, rate: float = 0.2, kind: str = "uniform",
             memorise_from: int | None = None, seed: int = 0, max_logit_classes: int = 64,
             hard: float = 0.0) -> tuple[TrainingDynamics, np.ndarray, np.ndarray]:
    """A recorded run: logits favour each example's TRUE class (learned over the first epochs);
    flipped examples are memorised (their given label wins) from ``memorise_from`` on.
    ``hard`` is the share of clean examples whose true class is barely preferred."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    given = true.copy()
    flipped = np.zeros(n, dtype=bool)
    idx = rng.choice(n, int(rate * n), replace=False)
    flipped[idx] = True
    given[idx] = (true[idx] + (rng.integers(1, k, len(idx)) if kind == "uniform" else 1)) % k
    strength = np.where(rng.random(n) < hard, 0.3, 3.0) * (0.5 + rng.random(n))
    with dc.Recorder(None, num_classes=k, max_logit_classes=max_logit_classes) as rec:
        for e in range(1, epochs + 1):
            learn = min(1.0, e / 3)
            z = rng.normal(0, 0.6, (n, k))
            z[np.arange(n), true] += strength * learn
            if memorise_from is not None and e >= memorise_from:
                z[np.arange(n), given] += 2.5 * (e - memorise_from + 1) * flipped
            rec.update(np.arange(n), z, given)
            rec.end_epoch()
        dyn = rec.to_dynamics()
    return dyn, true, flipped


def test_default_ranks_flags_and_suggests() -> None:
    dyn, true, flipped = simulate()
    out = detect_label_errors(dyn)
    assert DEFAULT_METHOD == "noise_posterior" and DEFAULT_METHOD in LABEL_ERROR_METHODS
    s = out["label_error_score"]
    assert s.shape == (400,) and s.dtype == np.float64 and (s >= 0).all() and (s <= 1).all()
    assert average_precision(flipped, s) > 0.95
    assert flag_scores(flipped, out["is_label_error"])["f1"] > 0.85
    assert suggested_label_accuracy(true, out["suggested_label"], flipped) > 0.9
    assert (out["suggested_label"] != dyn.labels).all()
    assert out["is_label_error"].sum() == out["info"]["n_estimated_errors"]
    assert set(out) == {"label_error_score", "suggested_label", "is_label_error", "info", "probs"}
    assert out["probs"].shape == (len(dyn.labels), dyn.n_classes)
    assert "confident learning" in out["info"]["calibration"]


def test_pair_noise_uses_the_noise_matrix() -> None:
    dyn, true, flipped = simulate(rate=0.3, kind="pair", seed=1)
    out = detect_label_errors(dyn)
    assert average_precision(flipped, out["label_error_score"]) > 0.95
    assert suggested_label_accuracy(true, out["suggested_label"], flipped) > 0.95


def test_hard_but_correct_examples_are_not_flagged_as_mislabeled() -> None:
    dyn, true, flipped = simulate(n=600, rate=0.1, hard=0.3, seed=2)
    out = detect_label_errors(dyn)
    clean_flagged = out["is_label_error"] & ~flipped
    assert clean_flagged.sum() <= 0.25 * out["is_label_error"].sum()
    frame = dc.compute_metrics(dyn)  # the assessment is the metrics frame's
    np.testing.assert_array_equal(frame["is_label_error"].to_numpy(), out["is_label_error"])
    assert set(frame["assessment"]) <= set(ASSESSMENTS)
    assert set(frame["assessment"][~out["is_label_error"]]) <= {"easy", "ambiguous", "hard"}


def test_memorisation_from_heldout_accuracy_restores_the_ranking() -> None:
    dyn, _, flipped = simulate(epochs=16, memorise_from=7, seed=3)
    whole_run = 1 - dyn.gold_prob.mean(axis=1)
    held = np.r_[[.5, .6, .7, .78, .8, .78], .7 - np.arange(10) * 0.02]
    out = detect_label_errors(dyn, heldout_accuracy=held)
    info = out["info"]
    assert info["window"] == "1:5" and info["memorisation"] and info["memorisation_epoch"] == 5
    assert info["window_source"] == "held-out accuracy" and "memorisation" in info["message"]
    assert average_precision(flipped, out["label_error_score"]) > average_precision(flipped, whole_run) + 0.05
    assert average_precision(flipped, out["label_error_score"]) > 0.95


def test_memorisation_from_the_dynamics_alone() -> None:
    dyn, _, flipped = simulate(epochs=20, memorise_from=9, seed=4)
    out = detect_label_errors(dyn)
    info = out["info"]
    assert info["memorisation"] and info["window_source"] == "training dynamics"
    assert int(info["window"].split(":")[1]) <= 10
    assert average_precision(flipped, out["label_error_score"]) > 0.95


def test_heldout_curve_from_run_metadata(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dyn, _, _ = simulate(epochs=8, seed=5)
    curve = [{"epoch": e, "train_acc": 0.8, "heldout_acc": [.5, .6, .7, .72, .7, .6, .55, .5][e - 1]}
             for e in range(1, 9)]
    from dataclasses import replace
    for meta in ({"extra": {"curve": curve}}, {"curve": curve},
                 {"heldout_accuracy": [c["heldout_acc"] for c in curve]}):
        info = detect_label_errors(replace(dyn, meta=meta))["info"]
        assert info["window_source"] == "held-out accuracy" and info["window"] == "1:4"
    partial = [dict(c) for c in curve[:-1]]
    info = detect_label_errors(replace(dyn, meta={"curve": partial}))["info"]
    assert info["window_source"] != "held-out accuracy"


def test_choose_window_cases() -> None:
    flat = choose_window([0.5, 0.7, 0.75, 0.76, 0.76, 0.76, 0.77, 0.77])
    assert (flat.spec, flat.memorisation, flat.source) == ("1:8", False, "all epochs")
    # held-out accuracy still at its best at the end (still learning): the latest third
    keeps_up = choose_window([.5, .6, .7, .72], [.48, .58, .66, .7])
    assert (keeps_up.spec, keeps_up.memorisation) == ("3:4", False)
    rising = np.linspace(0.5, 0.8, 30)
    late = choose_window(rising, rising - 0.02, epochs=np.arange(31, 61))
    assert (late.first, late.last, late.memorisation) == (51, 60, False)
    assert "the last third: the model is still learning" in late.message
    # training accuracy reaches 1 on noisy labels: the knee ends the window
    fits = choose_window([.5, .7, .78, .8, .8, .81, .83, .87, .92, .96, .99, 1.0], n_examples=500)
    assert fits.memorisation and fits.source == "training dynamics" and fits.last <= 6
    ep = choose_window([.5, .7, .8, .85, .9], [.5, .7, .8, .72, .6], epochs=[3, 4, 5, 6, 7])
    assert ep.first == 3 and ep.last == 5


def test_window_options_and_legacy_method() -> None:
    dyn, _, flipped = simulate(epochs=6, seed=6)
    assert detect_label_errors(dyn, window="2:4")["info"]["window"] == "2:4"
    assert detect_label_errors(dyn, window=None)["info"]["window"] == "1:6"
    with pytest.warns(DeprecationWarning, match="method='confident_learning' is deprecated"):
        legacy = detect_label_errors(dyn, method="confident_learning")
    np.testing.assert_allclose(legacy["label_error_score"], 1 - dyn.gold_prob.mean(axis=1), rtol=1e-6)
    conf = detect_label_errors(dyn, method="confidence", window=None)
    np.testing.assert_allclose(conf["label_error_score"], 1 - dc.label_errors.epoch_averaged_probs(
        dyn.logits)[np.arange(dyn.n_examples), dyn.labels], rtol=1e-6)


def test_threshold_flags_by_posterior() -> None:
    dyn, _, _ = simulate(seed=7)
    out = detect_label_errors(dyn, threshold=0.5)
    np.testing.assert_array_equal(out["is_label_error"], out["label_error_score"] >= 0.5)
    assert "0.5" in out["info"]["calibration"]


def test_without_logits_a_score_comes_from_what_was_stored() -> None:
    dyn, true, flipped = simulate(k=5, seed=8, max_logit_classes=3)
    assert dyn.logits is None
    out = detect_label_errors(dyn)
    assert any("logits" in u for u in out["info"]["unavailable"])
    assert "entropy" in out["info"]["unavailable"]
    assert average_precision(flipped, out["label_error_score"]) > 0.9
    assert suggested_label_accuracy(true, out["suggested_label"], flipped) > 0.8
    with pytest.warns(DeprecationWarning, match="method='confident_learning' is deprecated"):
        legacy = detect_label_errors(dyn, method="confident_learning")
    assert legacy["info"]["unavailable"] == ["logits", "entropy"]


def test_probs_from_stored_matches_full_probs_when_k_is_2_or_3() -> None:
    for k in (2, 3):
        full, _, _ = simulate(n=50, k=k, epochs=3, seed=9)
        assert full.logits is not None
        from dataclasses import replace
        approx = probs_from_stored(replace(full, logits=None))
        exact = dc.label_errors.epoch_averaged_probs(full.logits)
        np.testing.assert_allclose(approx, exact, atol=1e-5)


def test_noise_model_degenerate_joint_still_ranks() -> None:
    # every example confidently of its given class: no errors found, scores still rank by p_gold
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]])
    labels = np.array([0, 0, 1, 1])
    model = NoiseModel.fit(probs, labels, 2)
    score, suggested = model.score(probs, labels)
    assert model.n_errors == 0
    assert np.argsort(score).tolist() == [0, 2, 1, 3]
    assert suggested.tolist() == [1, 1, 0, 0]


def test_compute_metrics_still_works() -> None:
    dyn, _, _ = simulate(n=60, epochs=4, seed=10)
    frame = dc.compute_metrics(dyn)
    assert {"label_error_score", "suggested_label", "is_label_error"} <= set(frame.columns)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"threshold": 0.0}, r"'threshold' parameter of detect_label_errors must be a float in \(0, 1\)"),
    ({"threshold": 1.5}, r"Got 1.5 instead"),
    ({"threshold": "high"}, r"Got 'high' instead"),
    ({"method": "cleanlab"}, r"'method' parameter of detect_label_errors must be one of"),
    ({"heldout_accuracy": [0.5, 0.6]}, r"heldout_accuracy has 2 values but the run has 5 recorded epochs"),
    ({"window": "9:12"}, r"selects none of the recorded epochs"),
    ({"window": "x"}, r"is not of the form 'FIRST:LAST'"),
], ids=["threshold-zero", "threshold-high", "threshold-text", "method", "heldout-length",
        "window-empty", "window-syntax"])
def test_bad_options(kwargs: dict, match: str) -> None:
    dyn, _, _ = simulate(n=40, epochs=5, seed=11)
    with pytest.raises(InputError, match=match):
        detect_label_errors(dyn, **kwargs)


def test_one_class_run_is_an_error() -> None:
    dyn, _, _ = simulate(n=10, epochs=2, seed=12)
    from dataclasses import replace
    with pytest.raises(InputError, match=r"the run has 1 class; label errors need at least 2"):
        detect_label_errors(replace(dyn, classes=("only",)))


def test_seed_stability_and_stable_flags() -> None:
    a, b = np.array([0.1, 0.5, 0.9, 0.3]), np.array([0.2, 0.6, 0.8, 0.1])
    res = seed_stability([a, b, a])
    assert res["matrix"].shape == (3, 3) and res["matrix"][0, 2] == 1.0
    assert res["mean"] == pytest.approx((0.8 + 1.0 + 0.8) / 3)
    flags = [[True, True, False], [True, False, False], [True, True, True]]
    assert stable_flags(flags).tolist() == [True, False, False]
    assert stable_flags(flags, min_fraction=0.5).tolist() == [True, True, False]
    with pytest.raises(InputError, match=r"seed_stability needs the scores of at least 2 runs; got 1"):
        seed_stability([a])
    with pytest.raises(InputError, match=r"stable_flags needs the flags of at least 1 run"):
        stable_flags([])
    with pytest.raises(InputError, match=r"'min_fraction' parameter of stable_flags must be a float in \(0, 1\]"):
        stable_flags(flags, min_fraction=0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(5, 60), k=st.integers(2, 5), e=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_properties(n: int, k: int, e: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, e, k))
    labels = rng.integers(0, k, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the Recorder's "looks like probabilities"
        rec = dc.Recorder(None, num_classes=k)
        for j in range(e):
            rec.update(np.arange(n), logits[:, j], labels)
            rec.end_epoch()
    dyn = rec.to_dynamics()
    out = detect_label_errors(dyn)
    s = out["label_error_score"]
    assert ((s >= 0) & (s <= 1)).all()
    assert (out["suggested_label"] != labels).all()
    expected = min(out["info"]["n_estimated_errors"], n) if out["info"]["fit"]["ok"] else 0
    assert out["is_label_error"].sum() == expected
    # permuting the examples permutes the scores (the noise model does not depend on row order)
    perm = rng.permutation(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rec2 = dc.Recorder(None, num_classes=k)
        for j in range(e):
            rec2.update(perm, logits[:, j], labels)  # ids permuted: rows are re-sorted by id
            rec2.end_epoch()
    out2 = detect_label_errors(rec2.to_dynamics())
    inv = np.argsort(perm)
    np.testing.assert_allclose(out2["label_error_score"][perm], s, atol=1e-9)
    assert inv.shape == (n,)


@pytest.mark.parametrize("options", [{}, {"method": "confident_learning"}, {"method": "confidence"},
                                     {"window": "2:6", "threshold": 0.3}, {"window": None}])
@pytest.mark.parametrize("max_logit_classes", [64, 2], ids=["logits", "no-logits"])
def test_stages_over_chunks_equal_detect_label_errors(options: dict, max_logit_classes: int) -> None:
    """prepare -> chunk_probs per row range -> finish is detect_label_errors, bit for bit."""
    from dataclasses import replace

    from datacarto import label_errors as le

    dyn, _, _ = simulate(n=300, k=4, epochs=8, max_logit_classes=max_logit_classes)
    legacy = options.get("method") == "confident_learning"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        want = detect_label_errors(dyn, **options)
        acc = (dyn.pred == dyn.labels[:, None]).mean(axis=0)
        plan = le.prepare(dyn.n_examples, dyn.epochs, acc, dyn.meta, n_classes=dyn.n_classes,
                          logits=dyn.logits is not None, **options)
    # one DeprecationWarning per detector call (from prepare), none for the other methods
    assert [w.category for w in caught] == [DeprecationWarning] * (2 if legacy else 0)
    parts = []
    for a in range(0, dyn.n_examples, 70):
        rows = slice(a, a + 70)
        chunk = replace(dyn, ids=dyn.ids[rows], labels=dyn.labels[rows],
                        gold_prob=dyn.gold_prob[rows], pred=dyn.pred[rows],
                        runner_up=dyn.runner_up[rows], margin=dyn.margin[rows],
                        loss=dyn.loss[rows], logits=None if dyn.logits is None else dyn.logits[rows])
        parts.append(le.chunk_probs(plan, chunk, entropy=a % 140 == 0))
    stats = {key: np.concatenate([p[key] for p in parts]) for key in parts[0] if key != "entropy"}
    p = dyn.gold_prob.astype(np.float64)
    got = le.finish(plan, stats, dyn.labels, p.mean(axis=1), p.std(axis=1))
    assert got["info"] == want["info"]
    for key in ("label_error_score", "suggested_label", "is_label_error"):
        np.testing.assert_array_equal(got[key], want[key])
    if legacy:  # the baseline the benchmark carries is the same detector, without the warning
        base = le.legacy.detect(dyn)
        assert base["info"] == want["info"]
        for key in ("label_error_score", "suggested_label", "is_label_error"):
            np.testing.assert_array_equal(base[key], want[key])


def test_prepare_errors() -> None:
    from datacarto import label_errors as le

    with pytest.raises(InputError, match=r"epochs window '7:9' selects none of the recorded"):
        le.prepare(10, [1, 2, 3], n_classes=3, logits=True, window="7:9")
    with pytest.raises(InputError, match="window='auto' needs the training accuracy"):
        le.prepare(10, [1, 2, 3], n_classes=3, logits=True)
    with pytest.raises(InputError, match="label errors need at least 2 classes"):
        le.prepare(10, [1, 2, 3], n_classes=1, logits=True, window=None)
    with pytest.raises(ValueError, match="method"):
        le.check_options(method="nope")


def test_window_message_reports_a_growing_gap_without_claiming_no_memorisation() -> None:
    from datacarto.label_errors import choose_window

    # the demo's curve: held-out accuracy on a plateau at its best while training accuracy
    # runs ahead: every epoch counts, and the message says both facts
    w = choose_window([.631, .806, .847, .873, .887, .901], [.645, .713, .733, .735, .740, .739])
    assert not w.memorisation and w.spec == "1:6"
    assert w.message == ("held-out accuracy peaks at epoch 5 (0.740; smoothed over 3 epochs it "
                         "stays within 0.01 of its best up to epoch 6), so the label-error score "
                         "uses epochs 1..6; training accuracy ends +0.162 ahead of held-out "
                         "accuracy")
    # held-out accuracy still rising over the last third (underfitting): the latest third
    w = choose_window([0.5, 0.6, 0.65, 0.7], [0.5, 0.58, 0.64, 0.68])
    assert not w.memorisation and w.spec == "3:4"
    assert "(the last third: the model is still learning)" in w.message


def test_legacy_method_warns_once_per_call_on_every_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dyn, _, _ = simulate(n=120, epochs=4, seed=13)
    path = tmp_path / "run"
    with dc.Recorder(path, num_classes=dyn.n_classes) as rec:
        for e in range(dyn.n_epochs):
            rec.update(dyn.ids, dyn.logits[:, e], dyn.labels)
            rec.end_epoch()
    calls = {"detect_label_errors": lambda: detect_label_errors(dyn, method="confident_learning"),
             "compute_metrics": lambda: dc.compute_metrics(
                 dyn, label_errors={"method": "confident_learning"}),
             "Run.metrics": lambda: dc.load(path).metrics(
                 chunk_rows=50, label_errors={"method": "confident_learning"})}
    for name, call in calls.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
        assert messages == ["method='confident_learning' is deprecated and will be removed; it "
                            "remains as a baseline in benchmarks/detection.py"], name


def test_regions_option_is_deprecated_and_changes_nothing() -> None:
    dyn, _, _ = simulate(n=200, epochs=5, seed=14)
    want = detect_label_errors(dyn)
    with pytest.warns(DeprecationWarning, match="option 'regions' is deprecated and has no effect"):
        got = detect_label_errors(dyn, regions={"method": "quantile"})
    assert got["info"] == want["info"]
    for key in ("label_error_score", "suggested_label", "is_label_error"):
        np.testing.assert_array_equal(got[key], want[key])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, float("nan")]), max_size=40),
       st.integers(0, 45))
def test_top_n_equals_a_stable_sort(values: list[float], n: int) -> None:
    from datacarto.label_errors.flagging import top_n

    scores = np.array(values, dtype=np.float64)
    order = np.lexsort((np.arange(len(scores)), -scores))  # highest first, ties by row, NaN last
    expected = np.zeros(len(scores), dtype=bool)
    expected[order[:n]] = True
    np.testing.assert_array_equal(top_n(scores, n), expected)
