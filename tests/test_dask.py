"""The dask engine: same metrics as the local engine, over the same shards, on a LocalCluster."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import datacarto as dc
from datacarto import store
from datacarto.errors import InputError, SchemaError

distributed = pytest.importorskip("distributed")

from builders import make_run  # noqa: E402


@pytest.fixture(scope="module")
def cluster():  # noqa: ANN201
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50) as local:
        yield local


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dask")
    return {"logits": make_run(root / "logits", n=700, epochs=5, classes=4, seed=1,
                               ids=np.arange(0, 7 * 700, 7)),
            "no-logits": make_run(root / "no-logits", n=300, epochs=4, classes=5, seed=2,
                                  ids=[f"doc-{i}" for i in range(300)], max_logit_classes=3)}


@pytest.mark.parametrize("kind", ["logits", "no-logits"])
@pytest.mark.parametrize("options", [{}, {"epochs": "2:", "include_ci": True},
                                     pytest.param({"label_errors": {"method": "confident_learning"}},
                                                  marks=pytest.mark.filterwarnings(
                                                      "ignore:method='confident_learning'")),
                                     {"label_errors": {"window": "1:3", "threshold": 0.3}}],
                         ids=["all", "window-ci", "legacy-detector", "detector-window"])
def test_dask_equals_local(cluster, runs: dict[str, Path], kind: str, options: dict) -> None:  # noqa: ANN001
    run = dc.load(runs[kind])
    got = run.metrics(engine="dask", scheduler=cluster.scheduler_address, chunk_rows=128, **options)
    want = run.metrics(engine="local", **options)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=0, atol=1e-9)
    # the engines run the same code on the same rows: bit-identical
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_dask_accepts_a_client(cluster, runs: dict[str, Path]) -> None:  # noqa: ANN001
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        got = dc.load(runs["logits"]).metrics(engine="dask", scheduler=client)
        assert client.status == "running"  # a caller's client is left open
    pd.testing.assert_frame_equal(got, dc.load(runs["logits"]).metrics(), check_exact=True)


def test_no_scheduler_uses_the_default_client_or_a_temporary_cluster(cluster, runs: dict[str, Path]) -> None:  # noqa: ANN001,E501
    want = dc.load(runs["no-logits"]).metrics()
    with distributed.Client(cluster.scheduler_address) as client:  # the default client
        before = client.run(lambda: 1)
        got = dc.load(runs["no-logits"]).metrics(engine="dask")
        assert client.status == "running" and client.run(lambda: 1) == before
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    # no client at all: a LocalCluster is started for the call and closed after it
    got = dc.load(runs["no-logits"]).metrics(engine="dask")
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    with pytest.raises(ValueError, match="No global client found"):
        distributed.get_client()


def test_unreachable_scheduler_is_a_clear_fast_error(runs: dict[str, Path]) -> None:
    start = time.monotonic()
    with pytest.raises(InputError, match=r"dask scheduler tcp://127\.0\.0\.1:9: cannot be reached "
                                         r"within 2 s .*Check the address"):
        dc.load(runs["logits"]).metrics(engine="dask", scheduler="tcp://127.0.0.1:9",
                                        connect_timeout=2.0)
    assert time.monotonic() - start < 15


def test_scheduler_without_workers_is_a_clear_error(runs: dict[str, Path]) -> None:
    with distributed.LocalCluster(n_workers=0, dashboard_address=":0", silence_logs=50) as empty:
        with pytest.raises(InputError, match=r"dask scheduler tcp://.*: no worker connected within "
                                             r"1 s .*Start workers with `dask worker tcp://"):
            dc.load(runs["logits"]).metrics(engine="dask", scheduler=empty.scheduler_address,
                                            connect_timeout=1.0)


def test_bad_shard_fails_before_any_task(cluster, tmp_path: Path) -> None:  # noqa: ANN001
    path = make_run(tmp_path / "run", n=60, epochs=3)
    (path / store.shard_name(2)).unlink()
    with pytest.raises(SchemaError, match=r"epoch-00002.parquet: epoch shard listed in run.json is missing"):
        dc.load(path).metrics(engine="dask", scheduler=cluster.scheduler_address)


def test_label_mismatch_is_raised_before_any_task(cluster, tmp_path: Path) -> None:  # noqa: ANN001
    import pyarrow as pa

    path = make_run(tmp_path / "run", n=60, epochs=3)
    shard = path / store.shard_name(3)
    table = pq.read_table(shard)
    labels = table.column("label").to_numpy().copy()
    labels[5] = (labels[5] + 1) % 3
    pq.write_table(table.set_column(1, "label", pa.array(labels)), shard)
    with pytest.raises(SchemaError, match=r"epoch-00003.parquet row 5 \(id=\d+\): label \d differs"):
        dc.load(path).metrics(engine="dask", scheduler=cluster.scheduler_address)


def test_unsorted_shard_is_an_error_on_dask(cluster, tmp_path: Path) -> None:  # noqa: ANN001
    path = make_run(tmp_path / "run", n=60, epochs=2)
    shard = path / store.shard_name(2)
    table = pq.read_table(shard)
    pq.write_table(table.take(list(range(59, -1, -1))), shard)
    with pytest.raises(SchemaError, match=r"epoch-00002.parquet: rows are not sorted by id; "
                                          r"engine='dask' needs shards sorted by id"):
        dc.load(path).metrics(engine="dask", scheduler=cluster.scheduler_address)


def test_unknown_label_error_option_on_dask(runs: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"label_errors: unknown option 'novel'; allowed: method, "):
        dc.load(runs["logits"]).metrics(engine="dask", label_errors={"novel": 1})
