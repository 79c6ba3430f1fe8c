"""Detection measures (datacarto.evaluation) against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from datacarto.errors import InputError
from datacarto.evaluation import (auroc, average_precision, detection_report, flag_scores,
                                  precision_at_k, rank_correlation, suggested_label_accuracy)


def test_hand_computed_anchor() -> None:
    truth = [True, False, True, False]
    scores = [0.9, 0.8, 0.3, 0.1]
    # pairs (error, clean): (0.9 > 0.8), (0.9 > 0.1), (0.3 < 0.8), (0.3 > 0.1) -> 3/4
    assert auroc(truth, scores) == 0.75
    # ranks: hit at 1 (P=1), hit at 3 (P=2/3): AP = (1 + 2/3) / 2
    assert average_precision(truth, scores) == pytest.approx(5 / 6)
    assert precision_at_k(truth, scores) == 0.5
    assert precision_at_k(truth, scores, k=1) == 1.0


def test_ties_do_not_depend_on_row_order() -> None:
    truth = np.array([True, False, False, True, False])
    scores = np.array([0.5, 0.5, 0.5, 0.5, 0.1])
    assert auroc(truth, scores) == pytest.approx((2 * 2 * 0.5 + 2 * 1) / 6)
    # k = 2 among 4 tied examples holding 2 errors: expected precision 1/2
    assert precision_at_k(truth, scores) == 0.5
    perm = [3, 1, 4, 0, 2]
    assert average_precision(truth[perm], scores[perm]) == average_precision(truth, scores)


def test_constant_scores_give_chance() -> None:
    truth = np.arange(100) < 20
    assert auroc(truth, np.ones(100)) == 0.5
    assert average_precision(truth, np.ones(100)) == pytest.approx(0.2)
    assert precision_at_k(truth, np.ones(100)) == pytest.approx(0.2)


@pytest.mark.parametrize("seed", range(5))
def test_matches_scikit_learn(seed: int) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    truth = rng.random(300) < 0.2
    scores = np.round(rng.random(300) + truth * 0.3, 1)  # coarse: many ties
    assert auroc(truth, scores) == pytest.approx(metrics.roc_auc_score(truth, scores), abs=1e-12)
    assert average_precision(truth, scores) == pytest.approx(
        metrics.average_precision_score(truth, scores), abs=1e-12)


def test_rank_correlation_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = np.round(rng.random(50), 1), rng.random(50)
    assert rank_correlation(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert rank_correlation([1, 1, 1], [1, 2, 3]) == 0.0


def test_flag_scores() -> None:
    assert flag_scores([True, True, False, False], [True, False, True, False]) == {
        "precision": 0.5, "recall": 0.5, "f1": 0.5, "n_flagged": 2}
    assert flag_scores([True, False], [False, False]) == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "n_flagged": 0}
    assert flag_scores([0, 1], [1, 1])["precision"] == 0.5


def test_detection_report() -> None:
    rep = detection_report([True, False, True], [0.9, 0.1, 0.8], [True, False, False],
                           original_labels=[0, 1, 2], suggested_labels=[0, 0, 1])
    assert rep == {"auroc": 1.0, "ap": 1.0, "p_at_k": 1.0, "flag_precision": 1.0,
                   "flag_recall": 0.5, "flag_f1": pytest.approx(2 / 3), "n_flagged": 1,
                   "suggestion_accuracy": 0.5}
    assert set(detection_report([True, False], [1.0, 0.0])) == {"auroc", "ap", "p_at_k"}


@pytest.mark.parametrize(("call", "match"), [
    (lambda: auroc([True, True], [0.1, 0.2]), r"auroc: is_error_true must contain both errors and "
                                              r"non-errors; got 2 errors among 2"),
    (lambda: average_precision([False, False], [0.1, 0.2]), r"average_precision: .*got 0 errors"),
    (lambda: auroc([True, False], [0.1]), r"is_error_true has 2 entries but scores has 1"),
    (lambda: auroc([True, False], [0.1, float("nan")]), r"scores\[1\] = nan is not finite"),
    (lambda: auroc([2, 0], [0.1, 0.2]), r"is_error_true must hold booleans"),
    (lambda: auroc([[True, False]], [0.1, 0.2]), r"non-empty 1-D boolean array; got shape \(1, 2\)"),
    (lambda: precision_at_k([True, False], [0.1, 0.2], k=3), r"'k' parameter of precision_at_k must "
                                                             r"be an int in \[1, 2\]. Got 3"),
    (lambda: precision_at_k([False, False], [0.1, 0.2]), r"Got 0 instead. \(is_error_true has no errors"),
    (lambda: flag_scores([True, False], [True]), r"flag_scores: is_error_true has 2 entries but flagged has 1"),
    (lambda: suggested_label_accuracy([0, 1], [0], [True, False]), r"must have the same length"),
    (lambda: suggested_label_accuracy([0, 1], [0, 1], [False, False]), r"has no errors"),
    (lambda: rank_correlation([1.0], [2.0]), r"same length >= 2; got 1 and 1"),
], ids=["auroc-one-class", "ap-no-errors", "length", "nan", "not-bool", "2d", "k-range", "k-zero",
        "flag-length", "suggestion-length", "suggestion-no-errors", "corr-length"])
def test_bad_input(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=match):
        call()
