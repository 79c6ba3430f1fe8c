"""The streaming metrics engine equals compute_metrics on the whole run, and fails cleanly."""

from __future__ import annotations

import json
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datacarto as dc
from datacarto import engine, store
from datacarto.errors import InputError, SchemaError
from datacarto.metrics import MetricsState, compute_metrics
from datacarto.options import LabelErrorOptions, MetricsOptions, RegionOptions


def make_run(path: Path, *, n: int = 500, e: int = 5, k: int = 4, seed: int = 0,
             str_ids: bool = False, max_logit_classes: int = 64) -> Path:
    """A run whose examples learn at different speeds (easy, ambiguous, hard, flipped)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    speed = rng.normal(1.0, 1.0, n)
    t = np.linspace(0, 2, e)
    logits = rng.normal(size=(n, e, k)).astype(np.float32)
    logits[np.arange(n), :, labels] += (speed[:, None] * t[None, :]).astype(np.float32)
    ids = rng.permutation(7 * n)[:n]
    if str_ids:
        ids = np.array([f"doc-{i}" for i in ids])
    with dc.Recorder(path, num_classes=k, max_logit_classes=max_logit_classes) as rec:
        for epoch in range(e):
            order = rng.permutation(n)
            for s in range(0, n, 64):
                rows = order[s:s + 64]
                rec.update(ids[rows], logits[rows, epoch], labels[rows])
            rec.end_epoch()
    return path


def reference(run_dir: Path, epochs: str | None = None, **options: object) -> pd.DataFrame:
    return compute_metrics(dc.load(run_dir).dynamics(epochs=epochs), **options)  # type: ignore[arg-type]


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal frames: every column exact, except entropy (computed another way) within 1e-12."""
    pd.testing.assert_frame_equal(got.drop(columns="entropy"), want.drop(columns="entropy"),
                                  check_exact=True)
    pd.testing.assert_series_equal(got["entropy"], want["entropy"], check_exact=False, rtol=0,
                                   atol=1e-12)
    assert got.attrs == want.attrs


@pytest.mark.parametrize("keep", [None, [True, True, True, True], [True, False, True, False],
                                  [False, False, False, True]])
def test_one_softmax_pass_matches_the_detector_and_entropy(keep: list[bool] | None) -> None:
    from datacarto.label_errors import epoch_averaged_probs
    from datacarto.metrics import _entropy
    from datacarto.probability import epoch_softmax_summary

    rng = np.random.default_rng(5)
    logits = (rng.normal(size=(3000, 4, 5)) * rng.uniform(0.1, 30, size=(3000, 1, 1))).astype(np.float32)
    mask = None if keep is None else np.array(keep)
    h, avg = epoch_softmax_summary(logits, mask)
    window = logits if mask is None else logits[:, mask]
    np.testing.assert_array_equal(avg, epoch_averaged_probs(window))  # bit-identical
    np.testing.assert_array_equal(h, _entropy(logits))
    # float32 logits: the softmax keeps their precision; float64 gives the reference
    ref_h, ref_avg = epoch_softmax_summary(logits.astype(np.float64), mask)
    np.testing.assert_allclose(h, ref_h, rtol=0, atol=1e-6)
    np.testing.assert_allclose(avg, ref_avg, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("engine") / "run")


@pytest.mark.parametrize(("chunk_rows", "workers"), [(engine.CHUNK_ROWS, 1), (37, 1), (37, 3), (1, 2)])
def test_equals_in_memory_metrics_exactly(run_dir: Path, chunk_rows: int, workers: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid_in_memory(monkeypatch)
    got = dc.load(run_dir).metrics(chunk_rows=chunk_rows, workers=workers)
    assert_same(got, reference(run_dir))
    assert got.attrs == reference(run_dir).attrs


@pytest.mark.parametrize("options", [
    {"epochs": "2:4"}, {"epochs": "3:"}, {"include_ci": True}, {"regions": {"method": "quantile"}},
    {"regions": {"method": "threshold", "variability_threshold": 0.1}, "epochs": ":3"},
    pytest.param({"label_errors": {"method": "confident_learning"}},
                 marks=pytest.mark.filterwarnings("ignore:method='confident_learning'")),
    {"label_errors": {"method": "confidence", "window": "2:4"}},
    {"label_errors": {"window": None, "threshold": 0.4}},
    {"label_errors": {"heldout_accuracy": [0.5, 0.6, 0.7, 0.65, 0.6]}},  # memorisation: 1..3
    {"label_errors": {"heldout_accuracy": [0.5, 0.6, 0.7, 0.65]}, "epochs": "2:"},
    pytest.param({"label_errors": {"window": "4:", "regions": {"method": "quantile"}}},
                 marks=pytest.mark.filterwarnings("ignore:the label-error option 'regions'")),
], ids=["window", "open-window", "include-ci", "quantile-regions", "threshold-window", "legacy-cl",
        "confidence-window", "no-window-threshold", "heldout", "heldout-in-window", "user-window"])
def test_options_match_in_memory_metrics(run_dir: Path, options: dict) -> None:
    got = dc.load(run_dir).metrics(chunk_rows=50, **options)
    epochs = options.pop("epochs", None)
    assert_same(got, reference(run_dir, epochs, **options))


@pytest.mark.parametrize(("str_ids", "max_logit_classes"), [(True, 64), (False, 3), (True, 3)],
                         ids=["str-ids", "no-logits", "str-ids-no-logits"])
@pytest.mark.parametrize("label_errors", [
    None, pytest.param({"method": "confident_learning"},
                       marks=pytest.mark.filterwarnings("ignore:method='confident_learning'")),
    {"window": "2:3", "method": "confidence"}],
                         ids=["default", "legacy", "window"])
def test_string_ids_and_runs_without_logits(tmp_path: Path, str_ids: bool, max_logit_classes: int,
                                            label_errors: dict | None) -> None:
    path = make_run(tmp_path / "run", n=300, k=5, seed=3, str_ids=str_ids,
                    max_logit_classes=max_logit_classes)
    got = dc.load(path).metrics(chunk_rows=64, label_errors=label_errors)
    assert_same(got, reference(path, label_errors=label_errors))
    assert got["entropy"].isna().all() == (max_logit_classes < 5)


def test_memorisation_window_from_training_accuracy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector's automatic window (a knee in training accuracy) is found from the shards."""
    rng = np.random.default_rng(0)
    n, e, k = 400, 12, 3
    labels = rng.integers(0, k, n)
    flip = rng.random(n) < 0.2
    true = np.where(flip, (labels + 1) % k, labels)
    logits = rng.normal(size=(n, e, k)).astype(np.float32)
    t = np.arange(e)
    logits[np.arange(n), :, true] += 3.0 * np.minimum(t, 4)  # the clean pattern, learned early
    logits[np.flatnonzero(flip), :, labels[flip]] += 4.0 * np.clip(t - 6, 0, None)  # memorised late
    path = tmp_path / "run"
    with dc.Recorder(path, num_classes=k) as rec:
        for epoch in range(e):
            rec.update(np.arange(n), logits[:, epoch], labels)
            rec.end_epoch()
    _split_into_ranks(path, 5)
    run = dc.load(path)
    plan = store.RunReader(run.path, run.meta).plan(chunk_rows=64)
    state = MetricsState(MetricsOptions(), n_examples=plan.n, epochs=plan.epoch_numbers,
                         classes=plan.classes, logits=plan.logits,
                         train_accuracy=plan.train_accuracy, meta=run.meta)
    assert state.plan.detector.keep.tolist() == [True] * 4 + [False] * 8
    _forbid_in_memory(monkeypatch)
    assert_same(run.metrics(chunk_rows=64), reference(path))


def test_one_epoch_warns_like_compute_metrics(tmp_path: Path) -> None:
    path = make_run(tmp_path / "run", n=50, e=1)
    with pytest.warns(UserWarning, match="only 1 epoch recorded"):
        got = dc.load(path).metrics(chunk_rows=16)
    with pytest.warns(UserWarning, match="only 1 epoch recorded"):
        want = reference(path)
    assert_same(got, want)


def _split_into_ranks(run_dir: Path, epoch: int, *, pad: int = 3, shuffle: bool = False) -> None:
    """Replace an epoch's shard by two rank shards, DistributedSampler-style (padded repeats)."""
    meta = json.loads((run_dir / "run.json").read_text())
    shard = run_dir / store.shard_name(epoch)
    table = pq.read_table(shard)
    n = table.num_rows
    rank0 = table.take(np.r_[np.arange(0, n, 2), np.arange(1, 2 * pad, 2)])  # rank 0 repeats a few
    rank1 = table.take(np.arange(1, n, 2))
    names = []
    for rank, part in enumerate((rank0, rank1)):
        if not shuffle:
            part = part.sort_by("id")
        name = store.shard_name(epoch, rank)
        pq.write_table(part, run_dir / name, row_group_size=40)
        names.append(name)
    shard.unlink()
    meta["shards"][str(epoch)] = names
    (run_dir / "run.json").write_text(json.dumps(meta))


def _forbid_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("the in-memory path was used")

    monkeypatch.setattr(engine, "_in_memory", fail)


def test_rank_shards_with_padding_are_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_run(tmp_path / "run", n=400, e=4, k=3)
    for epoch in (1, 3):
        _split_into_ranks(path, epoch)
    _forbid_in_memory(monkeypatch)
    got = dc.load(path).metrics(chunk_rows=64, workers=2)
    assert_same(got, reference(path))


def test_unsorted_shards_fall_back_to_the_in_memory_path(tmp_path: Path) -> None:
    path = make_run(tmp_path / "run", n=200, e=3, k=3)
    shard = path / store.shard_name(2)
    table = pq.read_table(shard)
    pq.write_table(table.take(np.random.default_rng(0).permutation(table.num_rows)), shard)
    _split_into_ranks(path, 3, shuffle=True)
    got = dc.load(path).metrics(chunk_rows=64)
    assert_same(got, reference(path))


def test_memory_stays_below_the_logits_size(tmp_path: Path) -> None:
    n, e, k = 40_000, 10, 10
    path = make_run(tmp_path / "run", n=n, e=e, k=k)
    run = dc.load(path)
    tracemalloc.start()
    try:
        run.metrics(chunk_rows=1024, workers=1)
        _, streaming_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # numpy allocations only (tracemalloc sees numpy, not Arrow's pool). The in-memory path
    # peaks at ~130 MB here; the logits array alone is n*e*k*4 = 16 MB. Streaming holds the
    # (n, k) averaged probabilities and ~15 (n,) results (~8 MB) plus one chunk's temporaries.
    assert streaming_peak < n * e * k * 4, streaming_peak


# ------------------------------------------------------------------------------ bad input
def test_missing_epoch_shard_names_it(tmp_path: Path) -> None:
    path = make_run(tmp_path / "run", n=40, e=3)
    (path / store.shard_name(3)).unlink()
    with pytest.raises(SchemaError, match=r"epoch-00003.parquet: epoch shard listed in run.json is missing"):
        dc.load(path).metrics()
    # also when the window leaves it out: a run with a lost shard is broken
    with pytest.raises(SchemaError, match=r"epoch-00003.parquet: epoch shard listed"):
        dc.load(path).metrics(epochs="1:2")


def test_shard_whose_ids_disagree(tmp_path: Path) -> None:
    path = make_run(tmp_path / "run", n=40, e=3, str_ids=True)
    shard = path / store.shard_name(2)
    table = pq.read_table(shard)
    ids = table.column("id").to_pylist()
    ids[-1] = "zz-unknown"
    pq.write_table(table.set_column(0, "id", pa.array(ids)), shard)
    with pytest.raises(SchemaError, match=r"epoch-00002.parquet: epoch 2 ids disagree with the first "
                                          r"epoch \(1 missing, 1 extra; first: id='doc-"):
        dc.load(path).metrics()


def test_shard_whose_labels_disagree(tmp_path: Path) -> None:
    path = make_run(tmp_path / "run", n=100, e=3, k=3)
    shard = path / store.shard_name(3)
    table = pq.read_table(shard)
    labels = table.column("label").to_numpy().copy()
    labels[70] = (labels[70] + 1) % 3
    pq.write_table(table.set_column(1, "label", pa.array(labels)), shard)
    with pytest.raises(SchemaError, match=r"epoch-00003.parquet row 70 \(id=\d+\): label \d differs from "
                                          r"the first epoch's \d"):
        dc.load(path).metrics(chunk_rows=32)


def test_shard_with_repeated_id(tmp_path: Path) -> None:
    path = make_run(tmp_path / "run", n=30, e=2, k=3)
    shard = path / store.shard_name(2)
    table = pq.read_table(shard)
    pq.write_table(pa.concat_tables([table, table.slice(4, 1)]).sort_by("id"), shard)
    with pytest.raises(SchemaError, match=r"epoch-00002.parquet: id \d+ appears more than once in epoch 2"):
        dc.load(path).metrics()


def test_non_finite_value_names_the_row(tmp_path: Path) -> None:
    path = make_run(tmp_path / "run", n=90, e=2, k=3)
    shard = path / store.shard_name(2)
    table = pq.read_table(shard)
    loss = table.column("loss").to_numpy().copy()
    loss[77] = np.nan
    pq.write_table(table.set_column(table.schema.get_field_index("loss"), "loss", pa.array(loss)), shard)
    with pytest.raises(SchemaError, match=r"epoch-00002.parquet row 77 \(id=\d+\): loss is not finite"):
        dc.load(path).metrics(chunk_rows=20)


def test_run_without_epochs_and_empty_window(tmp_path: Path, run_dir: Path) -> None:
    meta = store.RunMeta(classes=("a", "b"), capture="pass", inputs="logits", id_type="int",
                         logits_stored=True)
    store.write_run_json(tmp_path, meta)
    with pytest.raises(SchemaError, match=r"run.json: the run has no committed epochs yet"):
        dc.load(tmp_path).metrics()
    with pytest.raises(InputError, match=r"epochs window '7:9' selects none of the recorded epochs "
                                         r"\[1, 2, 3, 4, 5\]"):
        dc.load(run_dir).metrics(epochs="7:9")
    with pytest.raises(InputError, match=r"epochs window 'x' is not of the form"):
        dc.load(run_dir).metrics(epochs="x")


@pytest.mark.parametrize(("options", "match"), [
    ({"engine": "spark"}, r"The 'engine' parameter of Run.metrics must be one of 'local', 'dask'"),
    ({"engine": "dsak"}, r"Did you mean 'dask'\?"),
    ({"scheduler": "tcp://h:8786"}, r"scheduler='tcp://h:8786' is only used with engine='dask'"),
    ({"chunk_rows": 0}, r"chunk_rows must be a positive integer; got 0"),
    ({"workers": 0}, r"workers must be a positive integer; got 0"),
    ({"label_errors": {"method": "cleanlab"}}, r"The 'method' parameter of detect_label_errors"),
    ({"label_errors": {"threshold": 2}}, r"The 'threshold' parameter of detect_label_errors"),
    ({"label_errors": {"window": "9:"}}, r"epochs window '9:' selects none of the recorded"),
], ids=["engine", "engine-typo", "scheduler-local", "chunk-rows", "workers", "method", "threshold",
        "label-window"])
def test_option_errors(run_dir: Path, options: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        dc.load(run_dir).metrics(**options)


@pytest.mark.parametrize(("options", "match"), [
    ({"label_errors": {"methd": "confidence"}},
     r"label_errors: unknown option 'methd'; allowed: method, window, heldout_accuracy, heldout, "
     r"threshold, regions\."),
    ({"regions": {"metod": "quantile"}}, r"regions: unknown option 'metod'; allowed: method, "),
    ({"regions": {"hard_fraction": 2.0}}, r"regions: hard_fraction must be a number in \[0, 1\]"),
    ({"include_ci": "yes"}, r"include_ci must be True or False"),
], ids=["label-errors-typo", "regions-typo", "regions-value", "include-ci"])
def test_option_typos_are_errors_not_fallbacks(run_dir: Path, options: dict, match: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid_in_memory(monkeypatch)
    with pytest.raises(InputError, match=match):
        dc.load(run_dir).metrics(**options)
    with pytest.raises(InputError, match=match):
        compute_metrics(dc.load(run_dir).dynamics(), **options)


def test_dataclass_options_equal_dict_options(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid_in_memory(monkeypatch)
    got = dc.load(run_dir).metrics(
        chunk_rows=64, regions=RegionOptions(method="quantile"),
        label_errors=LabelErrorOptions(method="confidence", window="2:4"))
    want = dc.load(run_dir).metrics(chunk_rows=64, regions={"method": "quantile"},
                                    label_errors={"method": "confidence", "window": "2:4"})
    assert_same(got, want)


def test_no_warning_for_normal_runs(run_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dc.load(run_dir).metrics()
