"""XGBoost and LightGBM adapters: boosting rounds as checkpoints; conformance, bad input.

The reference probabilities come from each library's own ``predict_proba`` truncated to the
first i rounds, independently of the raw margins the adapters record.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_data

import datacarto
from datacarto.errors import InputError
from datacarto.testing import Capture, check_integration

ROUNDS = 6


def _xgb(binary: bool):
    xgb = pytest.importorskip("xgboost")
    X, y, ids = tiny_data()
    y = (y > 0).astype(int) if binary else y
    model = xgb.XGBClassifier(n_estimators=ROUNDS, max_depth=2, learning_rate=0.5,
                              n_jobs=1, random_state=0).fit(X, y)
    probs = lambda i: model.predict_proba(X, iteration_range=(0, i))  # noqa: E731
    from datacarto.integrations.xgboost import record_boosting
    return model, X, y, ids, probs, record_boosting


def _lgbm(binary: bool):
    lgb = pytest.importorskip("lightgbm")
    X, y, ids = tiny_data()
    y = (y > 0).astype(int) if binary else y
    model = lgb.LGBMClassifier(n_estimators=ROUNDS, num_leaves=4, min_child_samples=2,
                               learning_rate=0.5, n_jobs=1, verbose=-1, random_state=0).fit(X, y)
    probs = lambda i: model.predict_proba(X, start_iteration=0, num_iteration=i)  # noqa: E731
    from datacarto.integrations.lightgbm import record_boosting
    return model, X, y, ids, probs, record_boosting


LIBS = {"xgboost": _xgb, "lightgbm": _lgbm}


@pytest.mark.filterwarnings("ignore:X does not have valid feature names:UserWarning")
@pytest.mark.parametrize("binary", [False, True], ids=["multiclass", "binary"])
@pytest.mark.parametrize("lib", sorted(LIBS))
def test_conformance(lib: str, binary: bool, tmp_path: Path) -> None:
    model, X, y, ids, probs, record = LIBS[lib](binary)

    def run(path: Path, resume: bool) -> Capture:
        if resume:
            record(model, X, y, path=path, ids=ids, iterations=[2, 4])
            record(model, X, y, path=path, ids=ids, iterations=[6])
        else:
            record(model, X, y, path=path, ids=ids, every=2)
        cap = Capture(inputs="probs")
        for i in (2, 4, 6):
            cap.add_batch(ids, probs(i), y)
            cap.end_epoch()
        return cap

    check_integration(run, tmp_path, expected_ids=ids)
    meta = datacarto.load(tmp_path / "full").meta
    assert meta.extra["integration"] == lib and meta.inputs == "logits"


def test_raw_xgboost_booster() -> None:
    xgb = pytest.importorskip("xgboost")
    from datacarto.integrations.xgboost import record_boosting

    X, y, _ = tiny_data()
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2,
                         "nthread": 1}, xgb.DMatrix(X, label=y), num_boost_round=3)
    dyn = record_boosting(booster, X, y, classes=["a", "b", "c"])
    want = booster.predict(xgb.DMatrix(X), iteration_range=(0, 3))[np.arange(len(y)), y]
    np.testing.assert_allclose(dyn.gold_prob[:, -1], want, atol=1e-5)
    assert dyn.classes == ("a", "b", "c") and dyn.n_epochs == 3


def test_raw_lightgbm_booster() -> None:
    lgb = pytest.importorskip("lightgbm")
    from datacarto.integrations.lightgbm import record_boosting

    X, y, _ = tiny_data()
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "num_leaves": 4,
                         "min_data_in_leaf": 2, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(X, label=y), num_boost_round=3)
    dyn = record_boosting(booster, X, y)
    want = booster.predict(X, num_iteration=3)[np.arange(len(y)), y]
    np.testing.assert_allclose(dyn.gold_prob[:, -1], want, atol=1e-5)


def test_xgboost_bad_input() -> None:
    xgb = pytest.importorskip("xgboost")
    from datacarto.integrations.xgboost import record_boosting

    X, y, _ = tiny_data()
    with pytest.raises(InputError, match=r"record_boosting \(XGBoost\): expected an XGBClassifier "
                                         r"or a Booster; got list"):
        record_boosting([], X, y)
    with pytest.raises(InputError, match=r"XGBClassifier is not a fitted classifier"):
        record_boosting(xgb.XGBClassifier(), X, y)
    reg = xgb.XGBRegressor(n_estimators=2, n_jobs=1).fit(X, y.astype(float))
    with pytest.raises(InputError, match=r"XGBRegressor is not a fitted classifier"):
        record_boosting(reg, X, y)
    booster = xgb.train({"objective": "reg:squarederror", "nthread": 1},
                        xgb.DMatrix(X, label=y.astype(float)), num_boost_round=2)
    with pytest.raises(InputError, match=r"objective is 'reg:squarederror'; datacarto records "
                                         r"classifiers"):
        record_boosting(booster, X, y)
    model = xgb.XGBClassifier(n_estimators=2, n_jobs=1).fit(X, y)
    with pytest.raises(InputError, match=r"iterations \[3\] are outside 1..2"):
        record_boosting(model, X, y, iterations=[1, 3])
    with pytest.raises(InputError, match=r"every must be a positive integer"):
        record_boosting(model, X, y, every=0)
    with pytest.raises(InputError, match=r"ids has 2 entries but X has 24 rows; give one id per row"):
        record_boosting(model, X, y, ids=[1, 2])
    with pytest.raises(InputError, match=r"y\[0\] = 7 is not one of the model's classes"):
        record_boosting(model, X, np.full(24, 7))


@pytest.mark.filterwarnings("ignore:X does not have valid feature names:UserWarning")
def test_lightgbm_bad_input() -> None:
    lgb = pytest.importorskip("lightgbm")
    from datacarto.integrations.lightgbm import record_boosting

    X, y, _ = tiny_data()
    with pytest.raises(InputError, match=r"record_boosting \(LightGBM\): expected an "
                                         r"LGBMClassifier or a Booster; got dict"):
        record_boosting({}, X, y)
    with pytest.raises(InputError, match=r"LGBMClassifier is not a fitted classifier"):
        record_boosting(lgb.LGBMClassifier(), X, y)
    booster = lgb.train({"objective": "regression", "verbose": -1, "min_data_in_leaf": 2,
                         "num_threads": 1}, lgb.Dataset(X, label=y.astype(float)),
                        num_boost_round=2)
    with pytest.raises(InputError, match=r"objective is 'regression'"):
        record_boosting(booster, X, y)
    model = lgb.LGBMClassifier(n_estimators=2, min_child_samples=2, verbose=-1, n_jobs=1).fit(X, y)
    with pytest.raises(InputError, match=r"ids has 3 entries but X has 24 rows"):
        record_boosting(model, X, y, ids=[1, 2, 3])
