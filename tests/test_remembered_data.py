"""Commands after ``datacarto run`` use the data file and columns it recorded, say so in one
line, and go on without it (or refuse to copy rows) when that file is gone or changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datacarto import load, select
from datacarto.report.source import choose_data
from datacarto.runmeta import DataRecord, RunMeta

from builders import assert_cli_error, make_run, run_cli

pytest.importorskip("sklearn")

WORDS = {"positive": "good great lovely fun superb", "negative": "bad awful dull boring poor"}
N = 60


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``datacarto run`` of a CSV with an id column (``uid``) and a text column (``review``)."""
    from datacarto.cli import main

    root = tmp_path_factory.mktemp("remembered")
    rng = np.random.default_rng(0)
    labels = np.array(list(WORDS))[np.arange(N) % 2]
    frame = pd.DataFrame({"uid": [f"r{i:03d}" for i in range(N)],
                          "review": [" ".join(rng.choice(WORDS[y].split(), 4)) for y in labels],
                          "sentiment": labels})
    frame.to_csv(root / "reviews.csv", index=False)
    assert main(["run", str(root / "reviews.csv"), "--label-column", "sentiment", "--text-column",
                 "review", "--id-column", "uid", "--out", str(root / "run"), "--epochs", "3",
                 "--model", "linear", "-q"]) == 0
    return root


def _copy(text_run: Path, tmp_path: Path) -> Path:
    """The run and its data file side by side in ``tmp_path`` (the data recorded by name)."""
    import shutil

    shutil.copytree(text_run / "run", tmp_path / "run")
    shutil.copy(text_run / "reviews.csv", tmp_path / "reviews.csv")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    meta["extra"]["source"]["path"] = str(tmp_path / "reviews.csv")
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    return tmp_path / "run"


def test_flag_shows_the_recorded_text_and_says_where_it_came_from(capsys, text_run, tmp_path):
    run = _copy(text_run, tmp_path)
    code, out, err = run_cli(capsys, "flag", run, "--all")
    assert code == 0
    assert f"data: {tmp_path / 'reviews.csv'} (recorded by datacarto run; --data to change)" in err
    table = pd.read_csv(run / "flags.csv")
    data = pd.read_csv(tmp_path / "reviews.csv").set_index("uid")
    assert list(table.columns[:2]) == ["id", "review"]  # text by the recorded id column
    assert (table["review"] == data.loc[table["id"], "review"].to_numpy()).all()
    assert table["review"].iloc[0].split()[0] in out  # and in the preview


def test_an_option_overrides_the_recorded_column(capsys, text_run, tmp_path):
    run = _copy(text_run, tmp_path)
    code, _, _ = run_cli(capsys, "flag", run, "--all", "--text-column", "sentiment")
    assert code == 0
    assert list(pd.read_csv(run / "flags.csv").columns[:2]) == ["id", "sentiment"]
    other = tmp_path / "other.csv"
    pd.read_csv(tmp_path / "reviews.csv").to_csv(other, index=False)
    code, _, err = run_cli(capsys, "flag", run, "--data", other)
    assert code == 0 and f"data: {other} (--data)" in err


def test_select_copies_the_recorded_rows_or_writes_ids(capsys, text_run, tmp_path):
    run = _copy(text_run, tmp_path)
    code, _, err = run_cli(capsys, "select", run, "--region", "easy", "--count", "5", "-o",
                           tmp_path / "subset.csv")
    assert code == 0 and "data: " in err and "recorded by datacarto run" in err
    subset = pd.read_csv(tmp_path / "subset.csv")
    chosen = select(load(run).metrics(), region="easy", count=5)
    assert list(subset.columns) == ["uid", "review", "sentiment"]
    assert sorted(subset["uid"]) == sorted(chosen)  # matched by the recorded id column
    manifest = json.loads((tmp_path / "subset.csv.manifest.json").read_text())
    assert manifest["output_kind"] == "data" and manifest["id_column"] == "uid"
    code, _, err = run_cli(capsys, "select", run, "--region", "easy", "--count", "5", "-o",
                           tmp_path / "ids.txt")
    assert code == 0 and "data: not copied (ids.txt is an id list" in err
    assert (tmp_path / "ids.txt").read_text().splitlines() == [str(i) for i in chosen]


def test_a_changed_or_missing_data_file_is_said_and_not_used(capsys, text_run, tmp_path):
    run = _copy(text_run, tmp_path)
    data = tmp_path / "reviews.csv"
    with data.open("a") as fh:
        fh.write("r999,good good,positive\n")
    code, _, err = run_cli(capsys, "flag", run)
    assert code == 0
    assert f"data: none ({data}, recorded by datacarto run, has changed since the run (its " \
           "fingerprint differs); --data DATA to give the file)" in err
    assert "review" not in pd.read_csv(run / "flags.csv").columns  # flag goes on without text
    out = tmp_path / "subset.csv"
    assert_cli_error(capsys, ["select", run, "--region", "easy", "--count", "3", "-o", out],
                     r"cannot copy the selected rows to .*subset\.csv: .*reviews\.csv, recorded "
                     r"by datacarto run, has changed since the run", absent=[out])
    data.unlink()
    code, _, err = run_cli(capsys, "flag", run)
    assert code == 0 and "recorded by datacarto run, is gone" in err
    assert_cli_error(capsys, ["select", run, "--region", "easy", "--count", "3", "-o", out],
                     r"reviews\.csv, recorded by datacarto run, is gone\. Give --data DATA, or "
                     r"write an id list with -o FILE\.txt", absent=[out])
    code, _, err = run_cli(capsys, "report", run, "-o", tmp_path / "r.html")
    assert code == 0 and "is gone; --data DATA to give the file)" in err


def test_choose_data_prefers_options_and_checks_the_fingerprint(tmp_path):
    from datacarto import store

    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\n")
    meta = RunMeta(classes=("x", "y"), data_fingerprint=store.fingerprint_file(data),
                   source=DataRecord(path=str(data), text_column="text", id_column="key"))
    chosen = choose_data(tmp_path, meta)
    assert (chosen.origin, chosen.source.text_column, chosen.source.id_column) == \
        ("recorded", "text", "key")
    given = choose_data(tmp_path, meta, data=tmp_path / "e.csv", id_column="other")
    assert (given.origin, given.source.path, given.source.id_column) == \
        ("option", tmp_path / "e.csv", "other")
    assert given.line == f"data: {tmp_path / 'e.csv'} (--data)"
    data.write_text("text,label\nb,y\n")
    assert choose_data(tmp_path, meta).source is None
    assert "has changed since the run" in choose_data(tmp_path, meta).line
    no_record = choose_data(tmp_path, RunMeta(classes=("x", "y")))
    assert no_record.source is None and no_record.line == (
        "data: none (the run records no data file; --data DATA to give one)")


def test_a_run_of_your_own_loop_still_needs_data_for_rows(capsys, tmp_path):
    run = make_run(tmp_path / "run", n=30, epochs=3)
    out = tmp_path / "sub.csv"
    assert run_cli(capsys, "select", run, "--region", "easy", "--count", "3", "-o",
                   tmp_path / "ids.txt")[0] == 0  # an id list, as before
    assert_cli_error(capsys, ["select", run, "--region", "easy", "--count", "3", "--id-column",
                              "k", "-o", out], r"--id-column needs --data DATA", absent=[out])
    code, _, err = run_cli(capsys, "flag", run)
    assert code == 0 and "data: none (the run records no data file" in err
