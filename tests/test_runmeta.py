"""RunMeta: run.json's one typed owner (round trip, typed extra fields, errors, deprecated keys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import datacarto as dc
from datacarto import store
from datacarto.errors import SchemaError
from datacarto.runmeta import FORMAT_NAME, SCHEMA_VERSION, DataRecord, RunMeta


def _meta() -> RunMeta:
    return RunMeta(classes=("neg", "pos"), capture="eval", inputs="logits", seed=3,
                   id_type="str", logits_stored=True).with_extra(
        source={"path": "data.csv", "label_column": "label", "text_column": "text",
                "id_column": None, "feature_columns": None},
        curve=[{"epoch": 1, "train_acc": 0.5, "heldout_acc": 0.4}],
        memorisation_epoch=None, created_by="datacarto run", integration="torch")


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    meta = _meta().with_epoch(2, ["epochs/epoch-00002.parquet"], planned_epochs=5)
    store.write_run_json(tmp_path, meta)
    back = store.read_run_json(tmp_path)
    assert back == meta
    assert back.source == DataRecord(path="data.csv", label_column="label", text_column="text")
    assert back.curve[0]["heldout_acc"] == 0.4 and back.created_by == "datacarto run"
    assert dict(back.extra) == {"integration": "torch"}
    assert back.epochs == (2,) and back.planned_epochs == 5 and back.num_classes == 2
    doc = json.loads((tmp_path / "run.json").read_text())
    # the file keeps the documented layout: datacarto's own fields inside "extra"
    assert doc["format"] == FORMAT_NAME and doc["schema_version"] == SCHEMA_VERSION
    assert doc["extra"]["source"]["path"] == "data.csv" and doc["extra"]["integration"] == "torch"
    assert doc["shards"] == {"2": ["epochs/epoch-00002.parquet"]}


def test_changes_make_new_objects() -> None:
    meta = _meta().with_epoch(1, ["a.parquet"]).with_epoch(3, ["c.parquet"])
    assert meta.epochs == (1, 3)
    cut = meta.truncated(1)
    assert cut.epochs == (1,) and set(cut.shards) == {"1"} and meta.epochs == (1, 3)
    with pytest.raises(AttributeError):
        meta.seed = 4  # type: ignore[misc]


def test_version_0_1_data_key_is_read_as_the_source(tmp_path: Path) -> None:
    doc = _meta().to_json()
    doc["extra"]["data"] = doc["extra"].pop("source")
    (tmp_path / "run.json").write_text(json.dumps(doc))
    assert store.read_run_json(tmp_path).source.path == "data.csv"  # type: ignore[union-attr]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("curve", [{"epoch": "one"}], r"field 'extra.curve\[\].epoch' must be an integer"),
    ("source", {"path": 3}, r"field 'extra.source.path' must be a string or null"),
    ("heldout_accuracy", ["high"], r"field 'extra.heldout_accuracy' must be a list of numbers"),
])
def test_bad_extra_fields_name_the_file_and_field(tmp_path: Path, field: str, value: object,
                                                  message: str) -> None:
    doc = _meta().to_json()
    doc["extra"][field] = value
    (tmp_path / "run.json").write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=rf"run.json: {message}"):
        store.read_run_json(tmp_path)


def test_a_recorder_meta_with_a_bad_curve_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    import numpy as np

    rec = dc.Recorder(tmp_path / "run", classes=["a", "b"], meta={"curve": "steep"})
    rec.update(np.arange(4), np.zeros((4, 2)), np.array([0, 1, 0, 1]))
    with pytest.raises(SchemaError, match=r"field 'extra.curve' must be a list of objects"):
        rec.end_epoch()
    assert not (tmp_path / "run" / "run.json").exists()


def test_item_access_of_version_0_1_still_works_and_warns(tmp_path: Path) -> None:
    store.write_run_json(tmp_path, _meta())
    run = dc.load(tmp_path)
    with pytest.warns(DeprecationWarning, match=r"run.meta\['classes'\] is deprecated"):
        assert run.meta["classes"] == ["neg", "pos"]
    with pytest.warns(DeprecationWarning, match=r"use the typed attribute"):
        assert run.meta.get("extra")["integration"] == "torch"
    with pytest.warns(DeprecationWarning):
        assert run.meta.get("nothing", 7) == 7


def test_write_run_json_takes_only_a_run_meta(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="write_run_json takes a RunMeta"):
        store.write_run_json(tmp_path, {"format": FORMAT_NAME})  # type: ignore[arg-type]
