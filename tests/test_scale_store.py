"""Bounded-memory recording and row-range reading: spills, row groups, ShardReader."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datacarto as dc
from datacarto import recorder as recorder_mod
from datacarto import store
from datacarto.errors import InputError, SchemaError


@pytest.fixture(autouse=True)
def small_row_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    # small row groups so that a few hundred rows exercise the multi-group paths
    # the recorder cuts epochs at store.ROW_GROUP_ROWS, the shard writer at its own module's
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 64)
    monkeypatch.setattr(store.shards, "ROW_GROUP_ROWS", 64)


def _record(path: Path | None, ids: np.ndarray, logits: np.ndarray, labels: np.ndarray, *,
            batch: int = 37, seed: int = 0, **kwargs: object) -> dc.Recorder:
    rng = np.random.default_rng(seed)
    rec = dc.Recorder(path, num_classes=logits.shape[2], **kwargs)
    for e in range(logits.shape[1]):
        order = rng.permutation(len(ids))
        for s in range(0, len(ids), batch):
            rows = order[s:s + batch]
            rec.update(ids[rows], logits[rows, e], labels[rows])
        rec.end_epoch()
    rec.close()
    return rec


def _data(n: int = 300, e: int = 3, k: int = 4, seed: int = 0, str_ids: bool = False):
    rng = np.random.default_rng(seed)
    ids = rng.permutation(10 * n)[:n]
    if str_ids:
        ids = np.array([f"ex-{i:05d}" for i in ids])
    return ids, rng.normal(size=(n, e, k)).astype(np.float32), rng.integers(0, k, n)


@pytest.mark.parametrize("str_ids", [False, True], ids=["int-ids", "str-ids"])
def test_spilled_epochs_write_the_same_shards(tmp_path: Path, str_ids: bool) -> None:
    ids, logits, labels = _data(str_ids=str_ids)
    _record(tmp_path / "memory", ids, logits, labels)
    _record(tmp_path / "spilled", ids, logits, labels, max_pending_rows=50)
    for epoch in (1, 2, 3):
        a = pq.read_table(tmp_path / "memory" / store.shard_name(epoch))
        b = pq.read_table(tmp_path / "spilled" / store.shard_name(epoch))
        assert a.equals(b)
        layout = pq.ParquetFile(tmp_path / "spilled" / store.shard_name(epoch)).metadata
        assert [layout.row_group(i).num_rows for i in range(layout.num_row_groups)] == [64] * 4 + [44]
    assert not (tmp_path / "spilled" / recorder_mod.PENDING_DIR).exists()
    assert not list((tmp_path / "spilled").rglob("*.npy"))


def test_spill_keeps_duplicate_policy_across_parts(tmp_path: Path) -> None:
    rec = dc.Recorder(tmp_path / "run", num_classes=2, on_duplicate="first", max_pending_rows=2)
    rec.update([5, 6], [[3, 0], [0, 1]], [0, 1])
    rec.update([7, 5], [[0, 2], [0, 9]], [1, 0])  # 5 again, different output, in a later part
    assert len(rec._spilled) == 2
    rec.end_epoch()
    dyn = dc.load(tmp_path / "run").dynamics()
    assert dyn.ids.tolist() == [5, 6, 7] and dyn.pred[:, 0].tolist() == [0, 1, 1]

    strict = dc.Recorder(tmp_path / "strict", num_classes=2, max_pending_rows=2)
    strict.update([5, 6], [[3, 0], [0, 1]], [0, 1])
    strict.update([7, 5], [[0, 2], [0, 9]], [1, 0])
    with pytest.raises(InputError, match=r"epoch 1\): id 5 was seen twice with different outputs"):
        strict.end_epoch()
    strict.update([1], [[1, 0]], [1])
    strict.update([1], [[1, 0]], [0])
    with pytest.raises(InputError, match=r"id 1 was seen with labels 1 and 0"):
        strict.end_epoch()
    strict.reset()
    assert not (tmp_path / "strict" / recorder_mod.PENDING_DIR).exists()


def test_spilled_rows_are_checked_against_earlier_epochs(tmp_path: Path) -> None:
    rec = dc.Recorder(tmp_path / "run", num_classes=2, max_pending_rows=1)
    rec.update([1, 2, 3], np.zeros((3, 2)) + [1, 0], [0, 0, 0])
    rec.end_epoch()
    rec.update([1], [[1, 0]], [0])
    rec.update([3], [[1, 0]], [0])
    with pytest.raises(InputError, match=r"epoch 2 misses 1 of 3 ids \(first: 2\)"):
        rec.end_epoch()
    with pytest.warns(UserWarning, match=r"discarding 2 rows of unfinished epoch 2"):
        rec.close()
    assert not (tmp_path / "run" / recorder_mod.PENDING_DIR).exists()


def test_state_dict_and_merge_include_spilled_rows(tmp_path: Path) -> None:
    ids, logits, labels = _data(n=40, e=1, k=3)
    rec = dc.Recorder(tmp_path / "a", num_classes=3, max_pending_rows=8)
    rec.update(ids[:30], logits[:30, 0], labels[:30])
    assert rec._spilled and rec._pending_rows < 8
    state = rec.state_dict()
    assert sorted(state["ids"].tolist()) == sorted(ids[:30].tolist())
    other = dc.Recorder(tmp_path / "b", num_classes=3, max_pending_rows=8)
    other.load_state_dict(state)
    rank2 = dc.Recorder(tmp_path / "c", num_classes=3, max_pending_rows=4)
    rank2.update(ids[30:], logits[30:, 0], labels[30:])
    other.merge(rank2)
    rank2.reset()
    other.end_epoch()
    ref = dc.Recorder(None, num_classes=3)
    ref.update(ids, logits[:, 0], labels)
    ref.end_epoch()
    got, want = dc.load(tmp_path / "b").dynamics(), ref.to_dynamics()
    for field in ("ids", "labels", "gold_prob", "pred", "margin", "logits"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
    rec.reset()
    for name in ("a", "b", "c"):
        assert not (tmp_path / name / recorder_mod.PENDING_DIR).exists()


def test_crash_mid_epoch_removes_spill_files(tmp_path: Path) -> None:
    path = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom"):
        with dc.Recorder(path, num_classes=2, max_pending_rows=1) as rec:
            rec.update([0, 1], [[1, 0], [0, 1]], [0, 1])
            rec.end_epoch()
            rec.update([0], [[1, 0]], [0])
            assert list(path.rglob("*.npy"))
            raise RuntimeError("boom")
    assert dc.load(path).epochs == [1]
    assert not list(path.rglob("*.npy")) and not list(path.rglob("*.tmp-*"))


def test_stale_spill_of_dead_process_is_removed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "run"
    _record(path, *_data(n=10, e=1, k=2))
    host = socket.gethostname().replace("-", "_")
    dead = path / recorder_mod.PENDING_DIR / f"{host}-{2**22 + 12345}-deadbeef"  # no such pid
    alive = path / recorder_mod.PENDING_DIR / f"{host}-{os.getpid()}-cafe"
    other_host = path / recorder_mod.PENDING_DIR / "elsewhere-1-beef"
    for folder in (dead, alive, other_host):
        folder.mkdir(parents=True)
        (folder / "part-00001.ids.npy").write_bytes(b"x")
    rec = dc.Recorder(path)
    assert rec.epoch == 2
    assert not dead.exists() and alive.exists() and other_host.exists()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_max_pending_rows_must_be_positive_int(bad: object) -> None:
    with pytest.raises(InputError, match=r"Recorder: max_pending_rows must be a positive integer"):
        dc.Recorder(None, num_classes=2, max_pending_rows=bad).update([0], [[0.0, 1.0]], [0])  # type: ignore[arg-type]


def test_memory_recorder_never_spills() -> None:
    ids, logits, labels = _data(n=50, e=2, k=3)
    rec = _record(None, ids, logits, labels, max_pending_rows=1)
    assert rec.to_dynamics().n_examples == 50


def test_failed_chunked_write_keeps_run_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "run"
    rec = dc.Recorder(path, num_classes=2, max_pending_rows=2)
    rec.update([0, 1, 2], [[1, 0], [0, 1], [1, 0]], [0, 1, 0])
    rec.end_epoch()
    before = (path / "run.json").read_bytes()

    class Exploding(pq.ParquetWriter):
        def write_table(self, *args: object, **kwargs: object) -> None:
            raise OSError("disk full")

    monkeypatch.setattr(pq, "ParquetWriter", Exploding)
    rec.update([0, 1, 2], [[1, 0], [0, 1], [1, 0]], [0, 1, 0])
    with pytest.raises(OSError, match="disk full"):
        rec.end_epoch()
    assert (path / "run.json").read_bytes() == before
    assert not list(path.rglob("*.tmp-*"))
    assert dc.load(path).epochs == [1]


def test_write_shard_chunks_without_rows_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"epoch-00001.parquet: no rows to write for epoch 1"):
        store.write_shard_chunks(tmp_path / store.shard_name(1), epoch=1, chunks=iter([]))
    assert not list(tmp_path.rglob("*.parquet"))


# ------------------------------------------------------------------------------ ShardReader
def test_shard_reader_row_ranges_match_whole_reads(tmp_path: Path) -> None:
    ids, logits, labels = _data(n=300, e=1, k=4, str_ids=True)
    _record(tmp_path / "run", ids, logits, labels)
    shard = tmp_path / "run" / store.shard_name(1)
    whole = store.read_shard(shard)
    with store.ShardReader(shard, n_classes=4, id_type="str") as reader:
        assert reader.num_rows == 300 and reader.row_group_rows == 64
        for start, stop in [(0, 300), (0, 64), (64, 128), (10, 20), (60, 70), (63, 200), (299, 300),
                            (70, 75), (75, 80), (5, 5)]:
            part = reader.read_rows(start, stop)
            for name, values in whole.items():
                np.testing.assert_array_equal(part[name], values[start:stop])


def test_shard_reader_errors_name_the_file_row(tmp_path: Path) -> None:
    ids, logits, labels = _data(n=200, e=1, k=3)
    _record(tmp_path / "run", ids, logits, labels)
    shard = tmp_path / "run" / store.shard_name(1)
    table = pq.read_table(shard)
    bad = table.column("label").to_numpy().copy()
    bad[150] = 9
    pq.write_table(table.set_column(1, "label", pa.array(bad)), shard, row_group_size=64)
    with store.ShardReader(shard, n_classes=3) as reader:
        reader.read_rows(0, 100, ["id", "label"])  # rows before the bad one read fine
        with pytest.raises(SchemaError, match=rf"epoch-00001.parquet row 150 \(id={np.sort(ids)[150]}\): "
                                              r"label 9 is outside 0..2"):
            reader.read_rows(128, 192, ["id", "label"])
    with pytest.raises(SchemaError, match=r"epoch-00009.parquet: epoch shard listed in run.json is missing"):
        store.ShardReader(tmp_path / "run" / store.shard_name(9))


def test_pending_rows_ids_and_discard_epoch(tmp_path: Path) -> None:
    rec = dc.Recorder(tmp_path / "run", num_classes=2, max_pending_rows=3)
    assert rec.pending_rows == 0 and rec.pending_ids().tolist() == []
    rec.update([4, 2, 9], np.zeros((3, 2)), [0, 1, 0])  # spilled (sorted)
    rec.update([7, 2], np.zeros((2, 2)), [1, 1])  # in memory
    assert rec.pending_rows == 5
    assert sorted(rec.pending_ids().tolist()) == [2, 2, 4, 7, 9]
    rec.discard_epoch()
    assert rec.pending_rows == 0 and not list((tmp_path / "run").rglob("*.npy"))
    rec.update([1], [[0.0, 1.0]], [1])
    assert rec.end_epoch() == 1
