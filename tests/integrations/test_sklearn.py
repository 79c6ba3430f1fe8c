"""scikit-learn adapter: partial_fit epochs and staged boosting checkpoints; conformance, bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from conftest import tiny_data  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.ensemble import (AdaBoostClassifier, GradientBoostingClassifier,  # noqa: E402
                              RandomForestClassifier)
from sklearn.linear_model import Perceptron, SGDClassifier  # noqa: E402
from sklearn.naive_bayes import GaussianNB  # noqa: E402

import datacarto  # noqa: E402
from datacarto.errors import InputError  # noqa: E402
from datacarto.testing import Capture, check_integration  # noqa: E402
from datacarto.integrations.sklearn import record_partial_fit, record_staged  # noqa: E402

EPOCHS = 3
BATCH = 7
SEED = 4


def _scores(est, X):
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X), "probs"
    z = est.decision_function(X)
    return (np.stack([-z / 2, z / 2], 1) if z.ndim == 1 else z), "logits"


def partial_fit_run(make, capture: str, binary: bool = False):
    X, y, ids = tiny_data()
    y = (y > 0).astype(int) if binary else y
    labels = np.array(["neg", "pos"])[y] if binary else y  # string labels map via classes_

    def reference() -> Capture:
        # the documented schedule: batches of a permutation seeded by (seed, epoch)
        est = make()
        cap = Capture(inputs=_scores(make().fit(X, labels), X)[1])
        for epoch in range(1, EPOCHS + 1):
            order = np.random.default_rng([SEED, epoch]).permutation(len(y))
            for s in range(0, len(y), BATCH):
                idx = order[s:s + BATCH]
                est.partial_fit(X[idx], labels[idx], classes=np.unique(labels))
                if capture == "pass":
                    cap.add_batch(ids[idx], _scores(est, X[idx])[0], y[idx])
            if capture == "eval":
                cap.add_batch(ids, _scores(est, X)[0], y)
            cap.end_epoch()
        return cap

    def run(path: Path, resume: bool) -> Capture:
        kw = dict(path=path, ids=ids, batch_size=BATCH, capture=capture, seed=SEED)
        if not resume:
            record_partial_fit(make(), X, labels, epochs=EPOCHS, **kw)
            return reference()
        est = make()
        record_partial_fit(est, X, labels, epochs=2, **kw)
        est = pickle.loads(pickle.dumps(est))  # the process died; the estimator was saved
        record_partial_fit(est, X, labels, epochs=EPOCHS, **kw)
        return reference()
    return run, ids


PARTIAL = {
    "sgd-log": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "perceptron": lambda: Perceptron(random_state=0),
    "gaussian-nb": GaussianNB,
}


@pytest.mark.parametrize("capture", ["eval", "pass"])
@pytest.mark.parametrize("name", sorted(PARTIAL))
def test_partial_fit_conformance(name: str, capture: str, tmp_path: Path) -> None:
    run, ids = partial_fit_run(PARTIAL[name], capture)
    check_integration(run, tmp_path, expected_ids=ids)
    meta = datacarto.load(tmp_path / "full").meta
    assert meta.capture == capture and meta.extra["integration"] == "sklearn"


def test_binary_decision_function_and_string_labels(tmp_path: Path) -> None:
    run, ids = partial_fit_run(lambda: SGDClassifier(loss="hinge", random_state=0), "eval",
                               binary=True)
    check_integration(run, tmp_path, expected_ids=ids)
    assert datacarto.load(tmp_path / "full").classes == ("neg", "pos")


def test_on_epoch_and_a_finished_run(tmp_path: Path) -> None:
    X, y, _ = tiny_data()
    seen: list[int] = []
    est = SGDClassifier(loss="log_loss", random_state=0)
    record_partial_fit(est, X, y, epochs=2, path=tmp_path, on_epoch=lambda e, m: seen.append(e))
    dyn = record_partial_fit(est, X, y, epochs=2, path=tmp_path)  # nothing left to train
    assert seen == [1, 2] and dyn.n_epochs == 2


STAGED = {
    "gradient-boosting": lambda: GradientBoostingClassifier(n_estimators=6, max_depth=2,
                                                            random_state=0),
    "adaboost": lambda: AdaBoostClassifier(n_estimators=6, random_state=0),
}


@pytest.mark.parametrize("name", sorted(STAGED))
def test_staged_conformance(name: str, tmp_path: Path) -> None:
    X, y, ids = tiny_data()
    est = STAGED[name]().fit(X, y)

    def run(path: Path, resume: bool) -> Capture:
        if resume:  # an interrupted recording finished with the remaining stages
            record_staged(est, X, y, path=path, ids=ids, stages=[1, 2, 3])
            record_staged(est, X, y, path=path, ids=ids, stages=[4, 5, 6])
        else:
            record_staged(est, X, y, path=path, ids=ids)
        cap = Capture(inputs="probs")
        for probs in est.staged_predict_proba(X):
            cap.add_batch(ids, probs, y)
            cap.end_epoch()
        return cap

    check_integration(run, tmp_path, expected_ids=ids)
    assert datacarto.load(tmp_path / "full").meta.extra["checkpoint_unit"] == "stage"


def test_staged_every_keeps_the_last_stage() -> None:
    X, y, _ = tiny_data()
    gb = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y)
    assert record_staged(gb, X, y, every=2).n_epochs == 3  # 2, 4 and the last, 5


@pytest.mark.parametrize("call, match", [
    (lambda X, y: record_partial_fit(RandomForestClassifier(), X, y, epochs=1),
     r"record_partial_fit: RandomForestClassifier has no partial_fit\. For a fitted boosting "
     r"ensemble use record_staged"),
    (lambda X, y: record_partial_fit(GaussianNB(), X, y, epochs=0),
     r"record_partial_fit: epochs must be a positive integer; got 0"),
    (lambda X, y: record_partial_fit(GaussianNB(), X, y[:5], epochs=1),
     r"record_partial_fit: X has 24 rows but y has 5"),
    (lambda X, y: record_partial_fit(GaussianNB(), X, y, epochs=1, ids=[1, 2]),
     r"record_partial_fit: ids has 2 entries but X has 24 rows"),
    (lambda X, y: record_partial_fit(GaussianNB(), X, y, epochs=1, ids=[0] * 24),
     r"record_partial_fit: ids must be unique"),
    (lambda X, y: record_partial_fit(GaussianNB(), X, y, epochs=1, batch_size=0),
     r"batch_size must be a positive integer; got 0"),
    (lambda X, y: record_partial_fit(GaussianNB(), X, y, epochs=1, capture="train"),
     r"'capture' parameter of record_partial_fit"),
    (lambda X, y: record_partial_fit(GaussianNB(), X, y, epochs=1, classes=[0, 1]),
     r"record_partial_fit: y\[\d+\] = 2 is not one of the model's classes \[0, 1\]"),
    (lambda X, y: record_staged(GradientBoostingClassifier(), X, y),
     r"record_staged: GradientBoostingClassifier is not fitted"),
    (lambda X, y: record_staged(RandomForestClassifier(n_estimators=2).fit(X, y), X, y),
     r"record_staged: RandomForestClassifier has no staged_predict_proba"),
    (lambda X, y: record_staged(GradientBoostingClassifier(n_estimators=2).fit(X, y), X, y,
                                every=0),
     r"record_staged: every must be a positive integer"),
    (lambda X, y: record_staged(GradientBoostingClassifier(n_estimators=2).fit(X, y), X, y,
                                stages=[9]),
     r"record_staged: no checkpoints to record"),
], ids=["no-partial-fit", "epochs", "y-length", "ids-length", "ids-unique", "batch-size",
        "capture", "label-not-a-class", "staged-unfitted", "no-stages", "every", "stage-range"])
def test_bad_input(call, match) -> None:
    X, y, _ = tiny_data()
    with pytest.raises(InputError, match=match):
        call(X, y)


def test_classifier_without_scores() -> None:
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Votes(ClassifierMixin, BaseEstimator):
        def partial_fit(self, X, y, classes=None):
            return self

    X, y, _ = tiny_data()
    with pytest.raises(InputError, match=r"Votes has neither predict_proba nor decision_function"):
        record_partial_fit(Votes(), X, y, epochs=1)
    assert clone(Votes()) is not None
