"""The run directory: layout, validation and errors that name the file, row and id."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import datacarto as dc
from datacarto import store
from datacarto.errors import DatacartoError, InputError, SchemaError


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    rng = np.random.default_rng(0)
    with dc.Recorder(path, classes=["a", "b", "c"], data_fingerprint="sha256:abc") as rec:
        for _ in range(3):
            rec.update([f"ex-{i}" for i in range(10)], rng.normal(size=(10, 3)), np.arange(10) % 3)
            rec.end_epoch()
    return path


def test_layout_and_metadata(run_dir: Path) -> None:
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["format"] == "datacarto-run" and meta["epochs"] == [1, 2, 3]
    assert meta["classes"] == ["a", "b", "c"] and meta["data_fingerprint"] == "sha256:abc"
    assert meta["datacarto_version"] == dc.__version__ and meta["id_type"] == "str"
    shard = run_dir / "epochs" / "epoch-00002.parquet"
    table = pq.read_table(shard)
    assert table.schema.metadata[b"datacarto_schema_version"] == b"2"
    assert {"id", "label", "gold_prob", "pred", "margin", "loss", "logit_0", "logit_1",
            "logit_2"} <= set(table.column_names)
    frame = table.to_pandas()  # readable as-is by pandas
    assert frame["id"].tolist() == sorted(f"ex-{i}" for i in range(10))


def test_fingerprint_file(tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_text("a,b\n1,2\n")
    assert store.fingerprint_file(f) == store.fingerprint_file(f)
    assert store.fingerprint_file(f).startswith("sha256:")


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing: no such run directory"):
        dc.load(tmp_path / "missing")
    with pytest.raises(SchemaError, match=r"not a datacarto run \(no run.json\)"):
        dc.load(tmp_path)


@pytest.mark.parametrize(("content", "match"), [
    ("{not json", r"run.json: not valid JSON"),
    ('{"format": "other"}', r"run.json: not a datacarto run file"),
    ('{"format": "datacarto-run", "schema_version": 99}', r"schema_version 99 is newer than this datacarto"),
    ('{"format": "datacarto-run", "schema_version": 1}', r"run.json: missing key 'classes'"),
], ids=["bad-json", "wrong-format", "newer-schema", "missing-key"])
def test_bad_run_json(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(SchemaError, match=match):
        dc.load(tmp_path)


def test_non_utf8_run_json(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_bytes(b'{"format": "\xff"}')
    with pytest.raises(SchemaError, match=r"run.json: not valid JSON"):
        dc.load(tmp_path)


def test_missing_shard(run_dir: Path) -> None:
    (run_dir / "epochs" / "epoch-00002.parquet").unlink()
    with pytest.raises(SchemaError, match=r"epoch-00002.parquet: epoch shard listed in run.json is missing"):
        dc.load(run_dir).dynamics()


def test_truncated_shard(run_dir: Path) -> None:
    shard = run_dir / "epochs" / "epoch-00003.parquet"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(SchemaError, match=r"epoch-00003.parquet: not a readable Parquet file"):
        dc.load(run_dir).dynamics()


def test_shard_with_other_ids(run_dir: Path) -> None:
    shard = run_dir / "epochs" / "epoch-00002.parquet"
    table = pq.read_table(shard)
    ids = table.column("id").to_pylist()
    ids[3] = "zz-other"
    new = table.set_column(0, "id", __import__("pyarrow").array(ids))
    pq.write_table(new, shard)
    with pytest.raises(SchemaError, match=r"epoch-00002.parquet: epoch 2 ids disagree with the first epoch"):
        dc.load(run_dir).dynamics()


def test_shard_with_label_out_of_range(run_dir: Path) -> None:
    import pyarrow as pa

    shard = run_dir / "epochs" / "epoch-00001.parquet"
    table = pq.read_table(shard)
    labels = table.column("label").to_pylist()
    labels[4] = 7
    pq.write_table(table.set_column(1, "label", pa.array(labels, pa.int32())), shard)
    with pytest.raises(SchemaError, match=r"epoch-00001.parquet row 4 \(id='ex-4'\): label 7 is outside 0..2"):
        dc.load(run_dir).dynamics()


def test_shard_missing_columns(run_dir: Path) -> None:
    shard = run_dir / "epochs" / "epoch-00001.parquet"
    table = pq.read_table(shard).drop_columns(["gold_prob", "loss"])
    pq.write_table(table.replace_schema_metadata({"datacarto_schema_version": "1"}), shard)
    with pytest.raises(SchemaError, match=r"expected columns id, label, .*; missing gold_prob, loss"):
        dc.load(run_dir).dynamics()


def test_shard_without_schema_version(run_dir: Path) -> None:
    shard = run_dir / "epochs" / "epoch-00001.parquet"
    pq.write_table(pq.read_table(shard).replace_schema_metadata({}), shard)
    with pytest.raises(SchemaError, match=r"schema version '0' is not one this datacarto"):
        dc.load(run_dir).dynamics()


def test_run_without_epochs(tmp_path: Path) -> None:
    meta = store.RunMeta(classes=("a", "b"), capture="pass", inputs="logits", id_type="int",
                         logits_stored=True)
    store.write_run_json(tmp_path, meta)
    with pytest.raises(SchemaError, match=r"the run has no committed epochs yet"):
        dc.load(tmp_path).dynamics()


def test_only_datacarto_errors_escape_for_garbage(tmp_path: Path, run_dir: Path) -> None:
    rng = np.random.default_rng(1)
    shard = run_dir / "epochs" / "epoch-00001.parquet"
    original = shard.read_bytes()
    for trial in range(20):
        data = bytearray(original)
        for _ in range(5):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        shard.write_bytes(bytes(data))
        try:
            dc.load(run_dir).metrics()
        except DatacartoError:
            pass  # the only acceptable failure
    shard.write_bytes(original)
    assert len(dc.load(run_dir).metrics()) == 10


def test_atomic_write_text_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def explode(tmp: Path) -> None:
        tmp.write_text("partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        store.atomic_write(target, explode)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


# ------------------------------------------------------------------------------ RunReader
def _same_dynamics(got: dc.TrainingDynamics, want: dc.TrainingDynamics) -> None:
    for name in ("ids", "labels", "gold_prob", "pred", "runner_up", "margin", "loss", "logits",
                 "epochs"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert got.classes == want.classes


@pytest.mark.parametrize("chunk_rows", [1, 3, 4, 100])
def test_chunks_read_in_lockstep_make_the_whole_run(run_dir: Path, chunk_rows: int) -> None:
    run = dc.load(run_dir)
    whole = run.dynamics(epochs="2:")
    plan = store.RunReader(run.path, run.meta).plan(epochs="2:", chunk_rows=chunk_rows)
    assert plan.epoch_numbers.tolist() == [2, 3] and plan.n == 10
    assert plan.train_accuracy.tolist() == (whole.pred == whole.labels[:, None]).mean(axis=0).tolist()
    with store.ChunkReader(plan) as reader:
        chunks = [reader.dynamics(c) for c in range(plan.n_chunks)]
    joined = dc.TrainingDynamics.from_epochs(
        [{"id": np.concatenate([c.ids for c in chunks]),
          "label": np.concatenate([c.labels for c in chunks]),
          **{name: np.concatenate([getattr(c, name)[:, e] for c in chunks])
             for name in ("gold_prob", "pred", "runner_up", "margin", "loss", "logits")}}
         for e in range(2)], epoch_numbers=[2, 3], classes=whole.classes)
    _same_dynamics(joined, whole)


def test_recorder_in_memory_equals_the_run_it_writes(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    logits, labels = rng.normal(size=(3, 25, 4)), rng.integers(0, 4, 25)
    on_disk, in_memory = dc.Recorder(tmp_path / "run", num_classes=4), dc.Recorder(None, num_classes=4)
    for rec in (on_disk, in_memory):
        for epoch in range(3):
            order = rng.permutation(25)
            rec.update(order * 2, logits[epoch, order], labels[order])
            rec.end_epoch()
    _same_dynamics(in_memory.to_dynamics(), on_disk.to_dynamics())
    _same_dynamics(on_disk.to_dynamics(), dc.load(tmp_path / "run").dynamics())


def test_merge_by_id_keeps_the_first_copy_of_a_repeat() -> None:
    parts = [{"id": np.array([1, 4, 6]), "v": np.array([10, 40, 60])},
             {"id": np.array([2, 4, 5]), "v": np.array([20, 41, 50])}]
    merged = store.merge_by_id(parts)
    assert merged["id"].tolist() == [1, 2, 4, 5, 6] and merged["v"].tolist() == [10, 20, 40, 50, 60]


@pytest.mark.parametrize(("ids", "labels", "n_rows", "match"), [
    (np.array([1, 2, 9]), None, None,
     r"^s.parquet: epoch 4 ids disagree with the first epoch \(1 missing, 1 extra; first: id=3\)\.$"),
    (None, None, 2, r"^s.parquet: epoch 4 ids disagree with the first epoch \(2 rows from row 5 "),
    (np.array([1, 2, 3]), np.array([0, 2, 1]), None,
     r"^s.parquet row 6 \(id=2\): label 2 differs from the first epoch's 1\.$"),
])
def test_one_check_that_epochs_hold_the_same_examples(ids, labels, n_rows, match: str) -> None:  # noqa: ANN001
    with pytest.raises(SchemaError, match=match):
        store.check_same_examples("s.parquet", 4, np.array([1, 2, 3]), np.array([0, 1, 1]), ids,
                                  labels, n_rows=n_rows, row0=5)
    store.check_same_examples("s.parquet", 4, np.array([1, 2, 3]), np.array([0, 1, 1]),
                              np.array([1, 2, 3]), np.array([0, 1, 1]), row0=5)
