"""Recorder: streaming equals batch, duplicates, missing ids, resume, crash safety, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datacarto as dc
from datacarto.errors import InputError, StateError


def _logits(n: int, e: int, k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, e, k)).astype(np.float32)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 40), st.integers(1, 4), st.integers(2, 4), st.integers(0, 2**16))
def test_streaming_shuffled_split_merged_equals_batch(n: int, e: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = _logits(n, e, k, seed)
    labels = rng.integers(0, k, n)
    ids = rng.permutation(10 * n)[:n]  # arbitrary, non-contiguous ids
    batch = dc.Recorder(None, num_classes=k)
    main, other = dc.Recorder(None, num_classes=k), dc.Recorder(None, num_classes=k)
    for epoch in range(e):
        batch.update(ids, logits[:, epoch], labels)
        batch.end_epoch()
        order = rng.permutation(n)
        cut = rng.integers(0, n + 1)
        start = 0
        while start < n:  # random batch sizes, alternating between two "ranks"
            size = int(rng.integers(1, n + 1))
            rows = order[start:start + size]
            (main if start < cut else other).update(ids[rows], logits[rows, epoch], labels[rows])
            start += size
        main.merge(other)
        other.reset()
        other.num_classes = k
        main.end_epoch()
    a, b = batch.to_dynamics(), main.to_dynamics()
    np.testing.assert_array_equal(a.ids, np.sort(ids))
    for field in ("ids", "labels", "gold_prob", "pred", "runner_up", "margin", "loss", "logits"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_identical_duplicates_kept_once_and_different_ones_rejected() -> None:
    rec = dc.Recorder(None, num_classes=2)
    rec.update([0, 1, 2], [[1, 0], [0, 1], [2, 0]], [0, 1, 0])
    rec.update([2], [[2, 0]], [0])  # DistributedSampler-style padding
    assert rec.end_epoch() == 1
    assert rec.to_dynamics().n_examples == 3
    rec.update([0, 1, 2], [[1, 0], [0, 1], [2, 0]], [0, 1, 0])
    rec.update([2], [[0, 3]], [0])
    with pytest.raises(InputError, match=r"epoch 2\): id 2 was seen twice with different outputs"):
        rec.end_epoch()


def test_duplicate_policy_first_keeps_first() -> None:
    rec = dc.Recorder(None, num_classes=2, on_duplicate="first")
    rec.update(["x", "y"], [[1, 0], [0, 1]], [0, 1])
    rec.update(["x"], [[0, 5]], [0])
    rec.end_epoch()
    assert rec.to_dynamics().pred[:, 0].tolist() == [0, 1]


def test_duplicate_with_different_labels_is_error() -> None:
    rec = dc.Recorder(None, num_classes=2, on_duplicate="first")
    rec.update([7, 7], [[1, 0], [1, 0]], [0, 1])
    with pytest.raises(InputError, match=r"id 7 was seen with labels 0 and 1"):
        rec.end_epoch()


def test_missing_and_extra_ids_name_the_first_ones() -> None:
    rec = dc.Recorder(None, num_classes=2)
    rec.update(["a", "b", "c", "d"], np.zeros((4, 2)) + [1, 0], [0, 0, 0, 0])
    rec.end_epoch()
    rec.update(["a", "d"], np.zeros((2, 2)) + [1, 0], [0, 0])
    with pytest.raises(InputError, match=r"epoch 2 misses 2 of 4 ids \(first: 'b', 'c'\)"):
        rec.end_epoch()
    rec.reset()


def test_extra_ids_and_changed_labels() -> None:
    rec = dc.Recorder(None, num_classes=2)
    rec.update([1, 2], [[1, 0], [1, 0]], [0, 0])
    rec.end_epoch()
    rec.update([1, 2, 3], [[1, 0], [1, 0], [1, 0]], [0, 0, 0])
    with pytest.raises(InputError, match=r"has 1 ids not seen in earlier epochs \(first: 3\)"):
        rec.end_epoch()
    rec2 = dc.Recorder(None, num_classes=2)
    rec2.update([1, 2], [[1, 0], [1, 0]], [0, 0])
    rec2.end_epoch()
    rec2.update([1, 2], [[1, 0], [1, 0]], [0, 1])
    with pytest.raises(InputError, match=r"epoch 2: id 2 has label 1 but had 0 in earlier epochs"):
        rec2.end_epoch()


@pytest.mark.parametrize(("ids", "outputs", "labels", "match"), [
    ([0, 1], [[0.0, np.nan], [1, 0]], [0, 1], r"batch 1\): outputs\[0, 1\] = nan is not finite"),
    ([0, 1], [[0.0, np.inf], [1, 0]], [0, 1], r"outputs\[0, 1\] = inf is not finite"),
    ([0, 1], [[0.0, 1.0, 2.0], [1, 0, 0]], [0, 1], r"outputs have 3 columns but the run has 2 classes"),
    ([0, 1], [[0.0, 1.0], [1, 0]], [0, 2], r"labels\[1\] \(id=1\) = 2 is outside 0\.\.1"),
    ([0, 1], [[0.0, 1.0], [1, 0]], [0, -1], r"labels\[1\].* = -1 is outside 0\.\.1"),
    ([0, 1, 2], [[0.0, 1.0], [1, 0]], [0, 1], r"ids has 3 entries, outputs has 2 rows and labels has 2"),
    ([0, "a"], [[0.0, 1.0], [1, 0]], [0, 1], r"ids must be integers or strings|mixes types"),
    ([0.5, 1.5], [[0.0, 1.0], [1, 0]], [0, 1], r"ids must be integers or strings; got float values"),
    (np.array([0.5, 1]), [[0.0, 1.0], [1, 0]], [0, 1], r"ids must be integers or strings; got dtype float64"),
    ([0, 1], [0, 1], [0, 1], r"outputs must be 2-D"),
    ([0, 1], [[0.0, 1.0], [1, 0]], [0.5, 1], r"labels\[0\].* = 0\.5 is not an integer class index"),
    ([0, 1], [[0.0, 1.0], [1, 0]], ["a", "b"], r"labels must be integer class indices; got dtype"),
], ids=["nan", "inf", "wrong-length", "label-high", "label-negative", "length-mismatch", "mixed-ids",
        "float-ids", "float-array-ids", "1d-outputs", "fractional-label", "string-labels"])
def test_update_errors_name_the_batch(ids, outputs, labels, match) -> None:  # noqa: ANN001
    rec = dc.Recorder(None, num_classes=2)
    with pytest.raises(InputError, match=match):
        rec.update(ids, np.asarray(outputs, dtype=float) if not isinstance(outputs[0], str) else outputs,
                   labels)


def test_more_update_errors() -> None:
    with pytest.raises(InputError, match=r"outputs have 1 column; a classifier needs K >= 2"):
        dc.Recorder(None).update([0], [[0.3]], [0])
    with pytest.raises(InputError, match=r"outputs row 0 \(id=4\) is not a probability vector"):
        dc.Recorder(None, inputs="probs", num_classes=2).update([4], [[0.3, 0.3]], [0])
    with pytest.raises(InputError, match=r"The 'capture' parameter of Recorder must be one of 'pass', "
                                         r"'eval'\. Got 'evl' instead\. Did you mean 'eval'\?"):
        dc.Recorder(None, capture="evl").update([0], [[0.0, 1.0]], [0])
    with pytest.raises(InputError, match=r"classes has 2 names but num_classes is 3"):
        dc.Recorder(None, classes=["a", "b"], num_classes=3).update([0], [[0.0, 1.0]], [0])
    with pytest.raises(InputError, match=r"num_classes must be at least 2"):
        dc.Recorder(None, num_classes=1).update([0], [[0.0]], [0])
    rec = dc.Recorder(None, num_classes=2)
    rec.update([0], [[0.0, 1.0]], [0])
    with pytest.raises(InputError, match=r"ids are str but earlier batches had int ids"):
        rec.update(["a"], [[0.0, 1.0]], [0])


def test_state_errors() -> None:
    rec = dc.Recorder(None, num_classes=2)
    with pytest.raises(StateError, match=r"epoch 1 has no rows"):
        rec.end_epoch()
    with pytest.raises(StateError, match=r"to_dynamics\(\) was called before any epoch was committed"):
        rec.to_dynamics()
    rec.close()
    with pytest.raises(StateError, match=r"update\(\) was called after close\(\)"):
        rec.update([0], [[0.0, 1.0]], [0])
    with pytest.raises(StateError, match=r"end_epoch\(\) was called after close\(\)"):
        rec.end_epoch()


def test_probability_looking_logits_warn() -> None:
    rec = dc.Recorder(None, num_classes=2)
    with pytest.warns(UserWarning, match="these look like probabilities"):
        rec.update(np.arange(8), np.tile([[0.3, 0.7], [0.6, 0.4]], (4, 1)), np.zeros(8, int))


def test_close_discards_unfinished_epoch_with_warning() -> None:
    rec = dc.Recorder(None, num_classes=2)
    rec.update([0], [[0.0, 1.0]], [0])
    with pytest.warns(UserWarning, match=r"discarding 1 rows of unfinished epoch 1"):
        rec.close()


def test_on_disk_run_reopens_and_continues_numbering(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "run"
    logits = _logits(6, 4, 3)
    labels = np.array([0, 1, 2, 0, 1, 2])
    with dc.Recorder(path, classes=["a", "b", "c"], seed=7, capture="eval") as rec:
        for e in range(2):
            rec.update(np.arange(6), logits[:, e], labels)
            assert rec.end_epoch() == e + 1
    with dc.Recorder(path) as rec:
        assert rec.epoch == 3
        for e in range(2, 4):
            rec.update(np.arange(6), logits[:, e], labels)
            rec.end_epoch()
    run = dc.load(path)
    assert run.epochs == [1, 2, 3, 4] and run.classes == ("a", "b", "c") and run.capture == "eval"
    meta = json.loads((path / "run.json").read_text())
    assert meta["seed"] == 7 and meta["schema_version"] == 2
    memory = dc.Recorder(None, num_classes=3)
    for e in range(4):
        memory.update(np.arange(6), logits[:, e], labels)
        memory.end_epoch()
    np.testing.assert_array_equal(run.dynamics().gold_prob, memory.to_dynamics().gold_prob)
    np.testing.assert_array_equal(run.dynamics().logits, memory.to_dynamics().logits)


def test_reopen_checks_classes_and_ids(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "run"
    with dc.Recorder(path, classes=["a", "b"]) as rec:
        rec.update([1, 2], [[1, 0], [0, 1]], [0, 1])
        rec.end_epoch()
    with pytest.raises(InputError, match=r"run has classes \['a', 'b'\] but the Recorder was given"):
        dc.Recorder(path, classes=["x", "y"]).update([1], [[1, 0]], [0])
    rec = dc.Recorder(path)
    rec.update([1], [[1, 0]], [0])
    with pytest.raises(InputError, match=r"epoch 2 misses 1 of 2 ids \(first: 2\)"):
        rec.end_epoch()


def test_crash_mid_epoch_leaves_last_committed_epoch(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom"):
        with dc.Recorder(path, num_classes=2) as rec:
            rec.update([0, 1], [[1, 0], [0, 1]], [0, 1])
            rec.end_epoch()
            rec.update([0], [[1, 0]], [0])
            raise RuntimeError("boom")
    assert dc.load(path).epochs == [1]
    assert not list(path.rglob("*.tmp-*"))


def test_failed_shard_write_keeps_run_intact(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import pyarrow.parquet as pq

    path = tmp_path / "run"
    rec = dc.Recorder(path, num_classes=2)
    rec.update([0, 1], [[1, 0], [0, 1]], [0, 1])
    rec.end_epoch()
    before = (path / "run.json").read_bytes()

    def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", fail)
    rec.update([0, 1], [[1, 0], [0, 1]], [0, 1])
    with pytest.raises(OSError, match="disk full"):
        rec.end_epoch()
    assert (path / "run.json").read_bytes() == before
    assert not list(path.rglob("*.tmp-*"))
    assert dc.load(path).epochs == [1]


def test_torch_tensors_are_accepted_without_import_at_module_level() -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    rec = dc.Recorder(None, num_classes=3)
    logits = torch.randn(4, 3, dtype=torch.bfloat16, requires_grad=True)
    rec.update(torch.arange(4), logits * 1, torch.tensor([0, 1, 2, 0]))
    rec.end_epoch()
    dyn = rec.to_dynamics()
    np.testing.assert_array_equal(dyn.pred[:, 0], logits.float().argmax(dim=1).numpy())


def test_state_dict_roundtrip_mid_epoch() -> None:
    rec = dc.Recorder(None, num_classes=2)
    rec.update([0, 1], [[1, 0], [0, 1]], [0, 1])
    rec.end_epoch()
    rec.update([0], [[1, 0]], [0])
    state = rec.state_dict()
    assert set(state) >= {"epoch", "ids", "outputs", "labels"}
    fresh = dc.Recorder(None, num_classes=2)
    fresh.update([0, 1], [[1, 0], [0, 1]], [0, 1])
    fresh.end_epoch()
    fresh.load_state_dict(state)
    fresh.update([1], [[0, 1]], [1])
    assert fresh.end_epoch() == 2
    stale = dc.Recorder(None, num_classes=2)
    with pytest.raises(StateError, match=r"state is from after epoch 1 but this run has committed 0"):
        stale.load_state_dict(state)


def test_large_k_stores_no_logits(tmp_path) -> None:  # noqa: ANN001
    rec = dc.Recorder(tmp_path / "run", num_classes=5, max_logit_classes=3)
    rec.update([0, 1], _logits(2, 1, 5)[:, 0], [0, 4])
    rec.end_epoch()
    dyn = dc.load(tmp_path / "run").dynamics()
    assert dyn.logits is None
    frame = dc.compute_metrics(dyn) if dyn.n_epochs > 1 else None
    assert frame is None  # one epoch: compute_metrics would warn; checked elsewhere


# ------------------------------------------------------------------- settings and the probs rule
def test_settings_are_validated_at_construction() -> None:
    with pytest.raises(InputError, match=r"'inputs' parameter of Recorder must be one of 'logits', "
                                         r"'probs'\. Got 'prob' instead"):
        dc.Recorder(None, inputs="prob")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"'on_duplicate' parameter of Recorder must be one of "
                                         r"'error', 'first'"):
        dc.Recorder(None, on_duplicate="last")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"Recorder: planned_epochs must be a positive integer; got 0"):
        dc.Recorder(None, planned_epochs=0)
    with pytest.raises(InputError, match=r"Recorder: seed must be an integer; got 'x'"):
        dc.Recorder(None, seed="x")  # type: ignore[arg-type]


def test_config_object_or_keywords() -> None:
    from datacarto.recording_config import RecordingConfig

    cfg = RecordingConfig(classes=["a", "b"], capture="eval", seed=3, meta={"note": "x"})
    rec = dc.Recorder(None, config=cfg)
    assert (rec.capture, rec.seed, rec.num_classes, rec.classes) == ("eval", 3, 2, ["a", "b"])
    assert rec.on_duplicate == "error" and rec.meta == {"note": "x"}
    rec.update([0, 1], [[1.0, 0.0], [0.0, 1.0]], [0, 1])
    rec.end_epoch()
    assert rec.to_dynamics().meta["note"] == "x"
    with pytest.raises(InputError, match=r"Recorder: pass the settings either as config= or as "
                                         r"keywords, not both"):
        dc.Recorder(None, config=cfg, seed=4)
    with pytest.raises(AttributeError):
        cfg.capture = "pass"  # type: ignore[misc]


PROBS_BATCHES = {
    "two-prob-rows": np.array([[0.3, 0.7], [0.6, 0.4]]),
    "one-prob-row": np.array([[0.3, 0.7]]),
    "one-hot": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]),
    "logits": np.array([[2.0, -1.0], [0.1, 0.3]]),
    "float16-probs": np.array([[0.3, 0.7], [0.6, 0.4]], dtype=np.float16),
}


@pytest.mark.parametrize("name", sorted(PROBS_BATCHES))
def test_recorder_warns_exactly_where_adapters_raise(name: str) -> None:
    import warnings

    from datacarto.integrations._adapter import AdapterRecorder
    from datacarto.probability import looks_like_probs
    from datacarto.recording_config import RecordingConfig

    out = PROBS_BATCHES[name]
    ids, labels = np.arange(len(out)), np.zeros(len(out), dtype=np.int64)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        dc.Recorder(None, num_classes=2).update(ids, out, labels)
    warned = any("look like probabilities" in str(w.message) for w in seen)
    adapter = AdapterRecorder("MyAdapter", None, RecordingConfig(num_classes=2))
    try:
        adapter.add(ids, out, labels)
        raised = False
    except InputError as err:
        assert str(err).startswith("MyAdapter (epoch 1, batch 1): the outputs look like probabilities")
        raised = True
    assert warned == raised == looks_like_probs(out)
    assert raised == (name in ("two-prob-rows", "float16-probs"))
    # declared as probabilities, the same batches are accepted exactly where they look like them
    if raised:
        dc.Recorder(None, num_classes=2, inputs="probs").update(ids, out, labels)
