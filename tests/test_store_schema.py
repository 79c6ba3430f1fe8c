"""Shard schema versions: schema 2 stores logits as flat ``logit_k`` columns, schema 1 (one
fixed-size list column ``logits``) is still read, alone or mixed with schema 2 in one run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datacarto as dc
from datacarto import store
from datacarto.dynamics import derive_from_logits
from datacarto.errors import SchemaError
from datacarto.metrics import compute_metrics
from datacarto.probability import epoch_softmax_summary
from datacarto.runmeta import SCHEMA_VERSION

N, E, K = 300, 4, 3


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, N)
    logits = rng.normal(size=(N, E, K)).astype(np.float32)
    logits[np.arange(N), :, labels] += np.linspace(0, 3, E, dtype=np.float32)
    return rng.permutation(5 * N)[:N], logits, labels


def _record(path: Path, ids: np.ndarray, logits: np.ndarray, labels: np.ndarray,
            epochs: range) -> None:
    with dc.Recorder(path, num_classes=K) as rec:
        for e in epochs:
            rec.update(ids, logits[:, e], labels)
            rec.end_epoch()


def write_schema_1_shard(path: Path, epoch: int, ids: np.ndarray, labels: np.ndarray,
                         logits: np.ndarray | None, *, row_group_size: int = 128) -> None:
    """A shard as datacarto with schema 1 wrote it: logits in one fixed-size list column."""
    order = np.argsort(ids)
    ids, labels = ids[order], labels[order]
    derived = derive_from_logits(logits[order], labels) if logits is not None else None
    columns = {"id": pa.array(ids.astype(np.int64)), "label": pa.array(labels.astype(np.int32))}
    columns |= {name: pa.array(derived[name]) for name in
                ("gold_prob", "pred", "runner_up", "margin", "loss")}
    if logits is not None:
        columns["logits"] = pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(logits[order], dtype=np.float32).reshape(-1)),
            logits.shape[1])
    table = pa.table(columns).replace_schema_metadata(
        {"datacarto_schema_version": "1", "datacarto_version": "0.1.0", "epoch": str(epoch)})
    pq.write_table(table, path, row_group_size=row_group_size, compression="zstd")


def _as_schema_1(run: Path, ids: np.ndarray, logits: np.ndarray, labels: np.ndarray,
                 epochs: list[int]) -> None:
    """Rewrite the shards of ``epochs`` (and run.json, when all are) in schema 1."""
    for epoch in epochs:
        write_schema_1_shard(run / store.shard_name(epoch), epoch, ids, labels, logits[:, epoch - 1])
    meta = json.loads((run / store.RUN_FILE).read_text())
    if sorted(epochs) == meta["epochs"]:
        meta["schema_version"] = 1
        (run / store.RUN_FILE).write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same dynamics twice: recorded (schema 2) and rewritten in schema 1."""
    ids, logits, labels = _data()
    new = tmp_path_factory.mktemp("schema") / "v2"
    _record(new, ids, logits, labels, range(E))
    old = new.with_name("v1")
    shutil.copytree(new, old)
    _as_schema_1(old, ids, logits, labels, list(range(1, E + 1)))
    return old, new


def test_schema_2_stores_flat_logit_columns(runs: tuple[Path, Path]) -> None:
    _, new = runs
    table = pq.read_table(new / store.shard_name(1))
    assert table.schema.metadata[b"datacarto_schema_version"] == str(SCHEMA_VERSION).encode() == b"2"
    assert table.column_names[-K:] == ["logit_0", "logit_1", "logit_2"]
    assert all(table.schema.field(f"logit_{k}").type == pa.float32() for k in range(K))
    chunks = pq.ParquetFile(new / store.shard_name(1)).metadata.row_group(0)
    codecs = {chunks.column(i).path_in_schema: chunks.column(i).compression
              for i in range(chunks.num_columns)}
    assert codecs == {**dict.fromkeys(table.column_names[:-K], "ZSTD"),
                      **dict.fromkeys(table.column_names[-K:], "SNAPPY")}
    ids, logits, _ = _data()
    frame = table.to_pandas()  # plain columns: readable as-is by pandas
    want = logits[np.argsort(ids), 0]
    np.testing.assert_array_equal(frame[["logit_0", "logit_1", "logit_2"]].to_numpy(), want)
    assert json.loads((new / store.RUN_FILE).read_text())["schema_version"] == 2


def test_schema_1_shard_reads_as_schema_2(runs: tuple[Path, Path]) -> None:
    old, new = runs
    for epoch in range(1, E + 1):
        a = store.read_shard(old / store.shard_name(epoch), n_classes=K, id_type="int")
        b = store.read_shard(new / store.shard_name(epoch), n_classes=K, id_type="int")
        assert list(a) == list(b)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
            assert a[name].dtype == b[name].dtype, name
        assert b["logits"].shape == (N, K) and b["logits"].dtype == np.float32


@settings(max_examples=30, deadline=None)
@given(start=st.integers(0, N), length=st.integers(0, N))
def test_row_ranges_agree_across_schemas(runs: tuple[Path, Path], start: int, length: int) -> None:
    old, new = runs
    stop = min(start + length, N)
    with store.ShardReader(old / store.shard_name(2), n_classes=K) as a, \
            store.ShardReader(new / store.shard_name(2), n_classes=K) as b:
        assert a.schema_version == 1 and b.schema_version == 2
        assert a.columns == b.columns
        got, want = a.read_rows(start, stop, ["logits", "id"]), b.read_rows(start, stop, ["logits", "id"])
        np.testing.assert_array_equal(got["logits"], want["logits"])
        np.testing.assert_array_equal(got["id"], want["id"])
        assert got["logits"].shape == (stop - start, K)


def test_metrics_are_equal_on_both_schemas(runs: tuple[Path, Path]) -> None:
    old, new = runs
    a, b = dc.load(old), dc.load(new)
    assert a.meta.schema_version == 1
    np.testing.assert_array_equal(a.dynamics().logits, b.dynamics().logits)
    got = a.metrics(chunk_rows=64)
    pd.testing.assert_frame_equal(got, b.metrics(chunk_rows=64))
    # the streaming engine on schema 1 shards equals compute_metrics on the whole run
    want = compute_metrics(b.dynamics())
    pd.testing.assert_frame_equal(got.drop(columns="entropy"), want.drop(columns="entropy"))
    np.testing.assert_allclose(got["entropy"], want["entropy"], rtol=0, atol=1e-12)


def test_resumed_schema_1_run_mixes_both(tmp_path: Path, runs: tuple[Path, Path]) -> None:
    _, new = runs
    ids, logits, labels = _data()
    run = tmp_path / "run"
    _record(run, ids, logits, labels, range(2))
    _as_schema_1(run, ids, logits, labels, [1, 2])
    _record(run, ids, logits, labels, range(2, E))  # resumes: epochs 3 and 4 in schema 2
    versions = [store.ShardReader(run / store.shard_name(e)).schema_version for e in range(1, E + 1)]
    assert versions == [1, 1, 2, 2]
    # the run now needs a reader of schema 2
    assert json.loads((run / store.RUN_FILE).read_text())["schema_version"] == 2
    mixed, same = dc.load(run), dc.load(new)
    np.testing.assert_array_equal(mixed.dynamics().logits, same.dynamics().logits)
    pd.testing.assert_frame_equal(mixed.metrics(chunk_rows=64), same.metrics(chunk_rows=64))


# ------------------------------------------------------------------------------ errors
def test_newer_schemas_are_refused(runs: tuple[Path, Path], tmp_path: Path) -> None:
    _, new = runs
    run = tmp_path / "run"
    shutil.copytree(new, run)
    shard = run / store.shard_name(2)
    table = pq.read_table(shard)
    pq.write_table(table.replace_schema_metadata({"datacarto_schema_version": "3"}), shard)
    with pytest.raises(SchemaError, match=r"epoch-00002.parquet: schema version '3' is not one this "
                                          r"datacarto \(schema 2\) reads"):
        dc.load(run).metrics()
    meta = json.loads((run / store.RUN_FILE).read_text())
    (run / store.RUN_FILE).write_text(json.dumps({**meta, "schema_version": 3}))
    with pytest.raises(SchemaError, match=r"run.json: schema_version 3 is newer than this datacarto"):
        dc.load(run)


@pytest.mark.parametrize("schema", [1, 2])
def test_run_with_logits_but_a_shard_without(runs: tuple[Path, Path], tmp_path: Path,
                                             schema: int) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs[schema - 1], run)
    shard = run / store.shard_name(3)
    table = pq.read_table(shard)
    pq.write_table(table.drop_columns(["logits"] if schema == 1 else store.logit_columns(K)), shard)
    for read in (lambda r: r.metrics(), lambda r: r.dynamics()):
        with pytest.raises(SchemaError, match=r"epoch-00003.parquet: this run stored no full logits"):
            read(dc.load(run))


@pytest.mark.parametrize("schema", [1, 2])
def test_logits_of_the_wrong_width(tmp_path: Path, schema: int) -> None:
    ids, logits, labels = _data()
    run = tmp_path / "run"
    _record(run, ids, logits, labels, range(2))
    wide = np.concatenate([logits[:, 1], logits[:, 1, :1]], axis=1)  # K + 1 values per row
    if schema == 1:
        write_schema_1_shard(run / store.shard_name(2), 2, ids, labels, wide)
    else:
        shard = run / store.shard_name(2)
        table = pq.read_table(shard)
        pq.write_table(table.append_column("logit_3", pa.array(wide[np.argsort(ids), 3])), shard)
    for read in (lambda r: r.metrics(), lambda r: r.dynamics()):
        with pytest.raises(SchemaError, match=r"epoch-00002.parquet: logits have 4 values per row "
                                              r"but the run has 3 classes"):
            read(dc.load(run))


def test_logit_columns_out_of_order(runs: tuple[Path, Path], tmp_path: Path) -> None:
    shard = tmp_path / "epoch.parquet"
    table = pq.read_table(runs[1] / store.shard_name(1))
    pq.write_table(table.drop_columns(["logit_1"]), shard)
    with pytest.raises(SchemaError, match=r"epoch.parquet: logit columns must be logit_0 .. "
                                          r"logit_\{K-1\} in order; found logit_0, logit_2"):
        store.ShardReader(shard)
    logit_0 = table.schema.get_field_index("logit_0")
    pq.write_table(table.set_column(logit_0, "logit_0", table.column("logit_0").cast(pa.string())),
                   shard)
    with pytest.raises(SchemaError, match=r"logit column logit_0 is string, not float32"):
        store.ShardReader(shard)


def test_schema_1_logits_that_are_not_a_fixed_size_list(runs: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    shard = tmp_path / "epoch.parquet"
    table = pq.read_table(runs[0] / store.shard_name(1))
    ragged = pa.array(table.column("logits").to_pylist(), pa.list_(pa.float32()))
    pq.write_table(table.set_column(table.schema.get_field_index("logits"), "logits", ragged), shard)
    with pytest.raises(SchemaError, match=r"epoch.parquet: column 'logits' must be a fixed-size "
                                          r"list of floats in schema 1"):
        store.ShardReader(shard)


def test_reading_hands_out_logits_that_the_softmax_leaves_alone(runs: tuple[Path, Path]) -> None:
    """Schema 2 logits come in the softmax's own (K, n, E) layout: it must not write into them."""
    run = dc.load(runs[1])
    whole = run.dynamics()
    plan = store.RunReader(run.path, run.meta).plan(chunk_rows=64)
    with store.ChunkReader(plan) as reader:
        chunk = reader.dynamics(1)
    for dyn in (whole, chunk):
        before = dyn.logits.copy()
        epoch_softmax_summary(dyn.logits)
        np.testing.assert_array_equal(dyn.logits, before)
    np.testing.assert_array_equal(chunk.logits, whole.logits[64:128])
    assert chunk.logits.shape == (64, E, K) and chunk.logits.dtype == np.float32
