"""Users' data files: formats, round trips and errors naming the file and row."""

from __future__ import annotations

import bz2
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datacarto.datafiles import data_format, example_ids, read_data, write_data
from datacarto.errors import InputError, SchemaError

FRAME = pd.DataFrame({"id": ["r1", "r2", "r3"], "text": ["good", "bad, <b>really</b>", "é ok"],
                      "label": ["pos", "neg", "pos"]})


@pytest.mark.parametrize("name", ["d.csv", "d.tsv", "d.jsonl", "d.parquet", "d.csv.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_data(FRAME, path)
    back = read_data(path)
    assert back["text"].tolist() == FRAME["text"].tolist()
    assert back["id"].astype(str).tolist() == ["r1", "r2", "r3"]


def test_jsonl_bz2(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl.bz2"
    path.write_bytes(bz2.compress(b'{"a": 1}\n{"a": 2}\n'))
    assert read_data(path)["a"].tolist() == [1, 2]


@pytest.mark.parametrize(("name", "content", "match"), [
    ("d.txt", b"x", r"d.txt: unsupported file type; use .csv, .tsv, .jsonl or .parquet"),
    ("d.csv", b"", r"d.csv: the file is empty"),
    ("d.csv", b"a,b\n", r"d.csv: the file has no rows"),
    ("d.csv", b"a,b\n1,2\n\xff\xfe,3\n", r"d.csv: not UTF-8 text \(line 3"),
    ("d.jsonl", b'{"a": 1}\n{"a": 2', r"d.jsonl line 2: invalid JSON .* may be truncated"),
    ("d.jsonl", b'{"a": 1}\n[1, 2]\n', r"d.jsonl line 2: expected a JSON object, got list"),
    ("d.parquet", b"PAR1garbage", r"d.parquet: cannot read as parquet"),
    ("d.csv", b'a,b\n1,"unterminated\n', r"d.csv: malformed CSV"),
], ids=["extension", "empty", "header-only", "non-utf8", "truncated-json", "json-not-object",
        "bad-parquet", "bad-csv"])
def test_read_errors(tmp_path: Path, name: str, content: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=match):
        read_data(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope.csv: no such file"):
        read_data(tmp_path / "nope.csv")
    assert data_format("x.PARQUET") == "parquet"


def test_example_ids(tmp_path: Path) -> None:
    frame = pd.DataFrame({"key": [10, 11, 12], "k2": ["a", "b", "a"], "k3": ["a", None, "c"]})
    assert example_ids(frame, None, path="f").tolist() == [0, 1, 2]
    assert example_ids(frame, "key", path="f").dtype == np.int64
    with pytest.raises(SchemaError, match=r"f: no column 'kee'; columns are \['key', 'k2', 'k3'\]"):
        example_ids(frame, "kee", path="f")
    with pytest.raises(InputError, match=r"f row 2: id 'a' appears more than once in column 'k2'"):
        example_ids(frame, "k2", path="f")
    with pytest.raises(InputError, match=r"f row 1: id column 'k3' is empty"):
        example_ids(frame, "k3", path="f")


def test_failed_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.csv"
    write_data(FRAME, path)
    before = path.read_bytes()

    def boom(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        write_data(FRAME.head(1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.csv"]
