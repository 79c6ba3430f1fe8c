"""One metrics path: MetricsState fed in chunks equals compute_metrics; options checked at the edge."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import FrozenInstanceError, fields

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datacarto as dc
from datacarto import label_errors as le
from datacarto.errors import InputError
from datacarto.metrics import ASSESSMENT_NAMES, MetricsState, assessment_codes, compute_metrics
from datacarto.options import LabelErrorOptions, MetricsOptions, RegionOptions
from datacarto.regions import REGIONS, assign_regions, region_codes


def _dynamics(n: int, e: int, k: int, seed: int) -> dc.TrainingDynamics:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, e, k)).astype(np.float32)
    logits[np.arange(n), :, labels] += (rng.normal(1, 1, n)[:, None] * np.linspace(0, 2, e)
                                        ).astype(np.float32)
    rec = dc.Recorder(None, num_classes=k)
    for epoch in range(e):
        rec.update(np.arange(n) * 3, logits[:, epoch], labels)
        rec.end_epoch()
    return rec.to_dynamics()


def _rows(dyn: dc.TrainingDynamics, a: int, b: int) -> dc.TrainingDynamics:
    from dataclasses import replace

    return replace(dyn, ids=dyn.ids[a:b], labels=dyn.labels[a:b], gold_prob=dyn.gold_prob[a:b],
                   pred=dyn.pred[a:b], runner_up=dyn.runner_up[a:b], margin=dyn.margin[a:b],
                   loss=dyn.loss[a:b], logits=None if dyn.logits is None else dyn.logits[a:b])


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 119), max_size=6, unique=True), seed=st.integers(0, 3),
       order_seed=st.integers(0, 100))
def test_chunks_in_any_order_equal_one_chunk(cuts: list[int], seed: int, order_seed: int) -> None:
    dyn = _dynamics(120, 4, 3, seed)
    want = compute_metrics(dyn)
    options = MetricsOptions()
    state = MetricsState.for_dynamics(options, dyn)
    bounds = [0, *sorted(cuts), 120]
    chunks = list(zip(bounds[:-1], bounds[1:]))
    for i in np.random.default_rng(order_seed).permutation(len(chunks)):
        a, b = chunks[i]
        state.update(_rows(dyn, a, b), a)
    pd.testing.assert_frame_equal(state.compute(), want, check_exact=True)


def test_compute_before_every_row_is_added_is_an_error() -> None:
    dyn = _dynamics(50, 3, 3, 0)
    state = MetricsState.for_dynamics(MetricsOptions(), dyn)
    state.update(_rows(dyn, 0, 20))
    with pytest.raises(InputError, match=r"20 of 50 examples were added"):
        state.compute()


def test_one_epoch_warns_once() -> None:
    with pytest.warns(UserWarning, match="only 1 epoch recorded") as record:
        compute_metrics(_dynamics(30, 1, 3, 0))
    assert len([w for w in record if "only 1 epoch" in str(w.message)]) == 1


def test_assessment_is_the_flag_else_the_region() -> None:
    region = np.array([0, 1, 2, 0], dtype=np.int8)
    codes = assessment_codes(np.array([False, False, True, True]), region)
    names = np.array(ASSESSMENT_NAMES, dtype=object)[codes].tolist()
    assert names == ["easy", "ambiguous", "likely mislabeled", "likely mislabeled"]
    assert set(ASSESSMENT_NAMES) == set(le.ASSESSMENTS)


@pytest.mark.parametrize("method", ["corners", "quantile", "threshold"])
def test_region_codes_name_the_regions_of_assign_regions(method: str) -> None:
    rng = np.random.default_rng(1)
    conf, var = rng.random(500), rng.random(500) * 0.4
    names = np.array(REGIONS, dtype=object)[region_codes(conf, var, method=method)]
    assert names.tolist() == assign_regions(conf, var, method=method).tolist()


# ------------------------------------------------------------------------------ options
def test_region_option_defaults_are_those_of_assign_regions() -> None:
    params = inspect.signature(assign_regions).parameters
    for f in fields(RegionOptions):
        assert params[f.name].default == f.default, f.name
    assert set(params) - {"confidence", "variability"} == {f.name for f in fields(RegionOptions)}


def test_label_error_options_are_the_detectors() -> None:
    assert tuple(f.name for f in fields(LabelErrorOptions)) == le.OPTIONS
    assert LabelErrorOptions().method == le.DEFAULT_METHOD


@pytest.mark.parametrize(("build", "match"), [
    (lambda: LabelErrorOptions.from_value({"methd": "x"}),
     r"^label_errors: unknown option 'methd'; allowed: method, window, heldout_accuracy, heldout, "
     r"threshold, regions\.$"),
    (lambda: RegionOptions.from_value({"method": "corners", "scale": 1}),
     r"^regions: unknown option 'scale'; allowed: method, min_scale, ambiguous_fraction, "),
    (lambda: RegionOptions.from_value(["quantile"]), r"regions: expected a dict of options"),
    (lambda: RegionOptions(method="quantil"), r"Did you mean 'quantile'\?"),
    (lambda: RegionOptions(min_scale=-1), r"min_scale must be a number in \[0, inf\]"),
    (lambda: LabelErrorOptions(window="2-3"), r"epochs window '2-3' is not of the form"),
    (lambda: LabelErrorOptions(threshold=1.5), r"The 'threshold' parameter"),
    (lambda: MetricsOptions(epochs="x"), r"epochs window 'x' is not of the form"),
])
def test_bad_options_fail_when_built(build, match: str) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match=match):
        build()


def test_options_are_frozen_and_dicts_convert_to_them() -> None:
    opts = MetricsOptions.from_args(regions={"method": "quantile"},
                                    label_errors={"window": "2:3", "method": "confidence"})
    assert opts.regions == RegionOptions(method="quantile")
    assert opts.label_errors == LabelErrorOptions(window="2:3", method="confidence")
    with pytest.raises(FrozenInstanceError):
        opts.regions.method = "threshold"  # type: ignore[misc]


def test_compute_metrics_takes_dataclasses_like_dicts() -> None:
    dyn = _dynamics(80, 4, 3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = compute_metrics(dyn, regions=RegionOptions(method="threshold"),
                              label_errors=LabelErrorOptions(threshold=0.4))
    want = compute_metrics(dyn, regions={"method": "threshold"}, label_errors={"threshold": 0.4})
    pd.testing.assert_frame_equal(got, want, check_exact=True)
