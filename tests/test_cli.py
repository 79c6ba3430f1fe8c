"""The datacarto CLI, in-process: metrics, map, flag, select, import/export allenai."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datacarto import Recorder, load, select
from datacarto.cli import main
from datacarto.errors import InputError, SchemaError

from builders import CLASSES, make_run, run_cli, write_allenai
from builders import assert_cli_error as assert_error

N, E = 40, 4


#: 40 examples x 4 epochs, labels 0, 1, 2, 0, ... (those of ``data_csv``); every 8th is
#: mislabelled (the model learns another class for it).
make_small_run = partial(make_run, n=N, epochs=E, labels=np.arange(N) % 3, mislabel_every=8)


@pytest.fixture
def run_dir(tmp_path):
    return make_small_run(tmp_path / "run")


@pytest.fixture
def data_csv(tmp_path):
    path = tmp_path / "data.csv"
    pd.DataFrame({"text": [f"example number {i}" for i in range(N)],
                  "label": [CLASSES[i % 3] for i in range(N)]}).to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- metrics
def test_metrics_default_output_and_summary(capsys, run_dir):
    code, out, _ = run_cli(capsys, "metrics", run_dir)
    assert code == 0
    frame = pd.read_parquet(run_dir / "metrics.parquet")
    expected = load(run_dir).metrics()
    assert frame["id"].tolist() == expected["id"].tolist()
    np.testing.assert_allclose(frame["confidence"], expected["confidence"])
    assert out.splitlines()[0] == f"{N} examples, {E} epochs (1-{E}), 3 classes"
    counts = expected["region"].value_counts()
    assert f"easy {counts.get('easy', 0)} (" in out and "regions: " in out
    assert f"Flagged as likely label errors: {int(expected['is_label_error'].sum())} (" in out
    assert f"wrote {run_dir / 'metrics.parquet'}" in out


@pytest.mark.parametrize("name", ["m.csv", "m.tsv", "m.jsonl", "sub/m.parquet"])
def test_metrics_output_formats(capsys, run_dir, tmp_path, name):
    out = tmp_path / name
    assert run_cli(capsys, "metrics", run_dir, "-o", out, "--epochs", "2:3", "--regions",
                   "quantile")[0] == 0
    from datacarto.datafiles import read_data

    frame = read_data(out)
    assert len(frame) == N and "variability" in frame.columns
    assert not (run_dir / "metrics.parquet").exists()


def test_metrics_window_and_include_ci(capsys, run_dir, tmp_path):
    code, out, _ = run_cli(capsys, "metrics", run_dir, "-o", tmp_path / "m.csv", "--epochs", "2:",
                           "--include-ci")
    assert code == 0 and out.startswith(f"{N} examples, 3 epochs (2-4)")
    frame = pd.read_csv(tmp_path / "m.csv")
    expected = load(run_dir).metrics(epochs="2:", include_ci=True)
    np.testing.assert_allclose(frame["variability"], expected["variability"])


def test_metrics_aggregates_several_runs(capsys, run_dir, tmp_path):
    other = make_small_run(tmp_path / "run2", seed=1)
    code, out, _ = run_cli(capsys, "metrics", run_dir, other, "-o", tmp_path / "agg.csv")
    assert code == 0 and "mean of 2 runs" in out
    frame = pd.read_csv(tmp_path / "agg.csv")
    a, b = load(run_dir).metrics(), load(other).metrics()
    np.testing.assert_allclose(frame["confidence"], (a["confidence"] + b["confidence"]) / 2)
    np.testing.assert_allclose(frame["confidence_std"], abs(a["confidence"] - b["confidence"]) / 2)
    assert (frame["n_runs"] == 2).all()


def test_metrics_errors(capsys, run_dir, tmp_path):
    other = make_small_run(tmp_path / "run2", seed=1)
    assert_error(capsys, ["metrics", run_dir, other], r"several runs .* give -o FILE",
                 absent=[run_dir / "metrics.parquet"])
    (tmp_path / "notrun").mkdir()
    assert_error(capsys, ["metrics", tmp_path / "notrun"],
                 r"notrun: not a datacarto run \(no run\.json\)",
                 absent=[tmp_path / "notrun" / "metrics.parquet"])
    assert_error(capsys, ["metrics", tmp_path / "missing"], r"missing: no such run directory")
    assert_error(capsys, ["metrics", run_dir, "-o", tmp_path / "m.xlsx"],
                 r"m\.xlsx: unsupported file type", absent=[tmp_path / "m.xlsx"])
    assert_error(capsys, ["metrics", run_dir, tmp_path / "notrun", "-o", tmp_path / "a.csv"],
                 r"notrun: not a datacarto run", absent=[tmp_path / "a.csv"])
    assert_error(capsys, ["metrics", run_dir, "--epochs", "7:9"], r"selects none of the recorded")
    shifted = make_small_run(tmp_path / "run3", ids=np.arange(N) + 1)
    assert_error(capsys, ["metrics", run_dir, shifted, "-o", tmp_path / "a.csv"],
                 r"datacarto metrics .*run .*run3: aggregate_runs: run 2 has different ids",
                 absent=[tmp_path / "a.csv"])


def test_debug_reraises(tmp_path):
    (tmp_path / "notrun").mkdir()
    with pytest.raises(SchemaError, match=r"not a datacarto run"):
        main(["--debug", "metrics", str(tmp_path / "notrun")])
    with pytest.raises(InputError, match=r"'fraction' parameter of datacarto select"):
        main(["--debug", "select", str(tmp_path / "notrun"), "--region", "easy", "--fraction",
              "2", "-o", str(tmp_path / "ids.txt")])


# ------------------------------------------------------------------------------- map
def test_map_default_png_and_svg(capsys, run_dir, tmp_path):
    code, out, _ = run_cli(capsys, "map", run_dir)
    assert code == 0 and f"({N} examples)" in out
    assert (run_dir / "datamap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, _ = run_cli(capsys, "map", run_dir, "-o", tmp_path / "m.svg", "--title", "My <map>")
    assert code == 0
    svg = (tmp_path / "m.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "My &lt;map&gt;" in svg


def test_map_errors(capsys, run_dir, tmp_path):
    assert_error(capsys, ["map", run_dir, "-o", tmp_path / "m.jpg"],
                 r"m\.jpg: unsupported image type '\.jpg'; use \.png, \.svg, \.pdf",
                 absent=[tmp_path / "m.jpg"])
    (tmp_path / "notrun").mkdir()
    assert_error(capsys, ["map", tmp_path / "notrun"], r"not a datacarto run",
                 absent=[tmp_path / "notrun" / "datamap.png"])


# ------------------------------------------------------------------------------ flag
def test_flag_default(capsys, run_dir):
    code, out, _ = run_cli(capsys, "flag", run_dir)
    assert code == 0
    table = pd.read_csv(run_dir / "flags.csv")
    assert list(table.columns) == ["id", "label_name", "suggested_label_name", "label_error_score",
                                   "confidence", "variability", "correctness", "region",
                                   "assessment"]
    m = load(run_dir).metrics().set_index("id")
    expected = m.index[m["is_label_error"] | (m["region"] != "easy")]
    assert sorted(table["id"]) == sorted(expected)
    scores = table["label_error_score"].to_numpy()
    assert (np.diff(scores) <= 0).all()
    flagged = m.loc[table["id"], "is_label_error"].to_numpy()
    assert (table["assessment"][flagged] == "likely mislabeled").all()
    assert (table["assessment"][~flagged] == m.loc[table["id"], "region"][~flagged].to_numpy()).all()
    assert set(table["assessment"]) <= {"likely mislabeled", "ambiguous", "hard"}
    assert flagged.sum() > 0  # the fixture has examples whose label the model rejects
    from datacarto.commands._common import detector_notes

    lines = out.splitlines()
    notes = detector_notes(m)
    assert lines[0].startswith(f"{len(table)} of {N} examples listed (")
    assert lines[1:1 + len(notes)] == notes
    # summary, detector notes, header, rows, wrote
    assert len(lines) == 1 + len(notes) + 1 + min(10, len(table)) + 1
    assert lines[2 + len(notes)].split()[0] == str(table["id"][0])


def test_flag_all_with_text_from_data(capsys, run_dir, data_csv, tmp_path):
    out = tmp_path / "flags.jsonl"
    code, stdout, _ = run_cli(capsys, "flag", run_dir, "--all", "--data", data_csv,
                              "--text-column", "text", "-o", out)
    assert code == 0
    table = pd.read_json(out, lines=True)
    assert len(table) == N and list(table.columns[:2]) == ["id", "text"]
    assert (table["text"] == [f"example number {i}" for i in table["id"]]).all()
    assert "easy" in set(table["assessment"])
    assert "example number" in stdout


def test_flag_joins_by_id_column(capsys, tmp_path):
    ids = np.array([f"doc-{i:03d}" for i in range(N)])
    run = make_small_run(tmp_path / "run", ids=ids)
    data = pd.DataFrame({"uid": ids, "body": [f"text of {i}" for i in ids]}).sample(frac=1, random_state=0)
    data.to_parquet(tmp_path / "d.parquet")
    code, _, _ = run_cli(capsys, "flag", run, "--all", "--data", tmp_path / "d.parquet",
                         "--text-column", "body", "--id-column", "uid")
    assert code == 0
    table = pd.read_csv(run / "flags.csv")
    assert (table["body"] == "text of " + table["id"]).all()


def test_flag_errors(capsys, run_dir, data_csv, tmp_path):
    flags = run_dir / "flags.csv"
    assert_error(capsys, ["flag", run_dir, "--data", data_csv, "--text-column", "body"],
                 r"data\.csv: no column 'body'; columns are \['text', 'label'\]", absent=[flags])
    pd.DataFrame({"text": ["a", "b"]}).to_csv(tmp_path / "short.csv", index=False)
    assert_error(capsys, ["flag", run_dir, "--data", tmp_path / "short.csv", "--text-column", "text"],
                 r"short\.csv: 38 of the run's 40 ids are not in the data file \(ids from row "
                 r"numbers 0\.\.1; first missing: 2\)", absent=[flags])
    assert_error(capsys, ["flag", run_dir, "--data", data_csv, "--text-column", "text",
                          "--id-column", "nope"], r"data\.csv: no column 'nope'", absent=[flags])
    assert_error(capsys, ["flag", run_dir, "-o", tmp_path / "f.txt"], r"f\.txt: unsupported file type",
                 absent=[tmp_path / "f.txt"])


# ---------------------------------------------------------------------------- select
def test_select_region_fraction_ids(capsys, run_dir, tmp_path):
    out = tmp_path / "ids.txt"
    code, stdout, _ = run_cli(capsys, "select", run_dir, "--region", "ambiguous", "--fraction",
                              "0.33", "-o", out)
    assert code == 0
    got = out.read_text().splitlines()
    expected = select(load(run_dir).metrics(), region="ambiguous", fraction=0.33)
    assert len(got) == int(np.floor(0.33 * N)) == 13
    assert got == [str(i) for i in expected]  # rank order, best first
    manifest = json.loads((tmp_path / "ids.txt.manifest.json").read_text())
    assert manifest["region"] == "ambiguous" and manifest["fraction"] == 0.33
    assert manifest["n_selected"] == 13 and manifest["n_examples"] == N
    assert manifest["run"] == str(run_dir.resolve()) and manifest["output_kind"] == "ids"
    assert manifest["datacarto_version"] and sum(manifest["selected_by_label"].values()) == 13
    assert f"selected 13 of {N} examples by region ambiguous, fraction 0.33" in stdout


def test_select_by_metric_count_stratified(capsys, run_dir, tmp_path):
    out = tmp_path / "ids.txt"
    assert run_cli(capsys, "select", run_dir, "--by", "confidence", "--ascending", "--count", "9",
                   "--stratify", "-o", out)[0] == 0
    expected = select(load(run_dir).metrics(), by="confidence", ascending=True, count=9,
                      stratify=True)
    assert out.read_text().splitlines() == [str(i) for i in expected]
    manifest = json.loads((tmp_path / "ids.txt.manifest.json").read_text())
    assert manifest["by"] == "confidence" and manifest["ascending"] is True
    assert manifest["selected_by_label"] == {"neg": 3, "neu": 3, "pos": 3}


@pytest.mark.parametrize("ext", [".csv", ".jsonl", ".parquet"])
def test_select_with_data_keeps_file_order(capsys, run_dir, data_csv, tmp_path, ext):
    out = tmp_path / f"subset{ext}"
    assert run_cli(capsys, "select", run_dir, "--region", "easy", "--fraction", "0.5", "--data",
                   data_csv, "-o", out)[0] == 0
    from datacarto.datafiles import read_data

    subset = read_data(out)
    chosen = select(load(run_dir).metrics(), region="easy", fraction=0.5)
    rows = sorted(int(i) for i in chosen)
    assert subset["text"].tolist() == [f"example number {i}" for i in rows]
    assert list(subset.columns) == ["text", "label"]
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["order"] == "data file order" and manifest["output_kind"] == "data"
    assert manifest["data_fingerprint"].startswith("sha256:")


def test_select_with_id_column(capsys, tmp_path):
    ids = np.arange(N) * 10 + 5
    run = make_small_run(tmp_path / "run", ids=ids)
    data = pd.DataFrame({"key": ids[::-1], "text": [f"t{i}" for i in ids[::-1]]})
    data.to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "sub.csv"
    assert run_cli(capsys, "select", run, "--by", "variability", "--count", "5", "--data",
                   tmp_path / "d.csv", "--id-column", "key", "-o", out)[0] == 0
    subset = pd.read_csv(out)
    chosen = set(select(load(run).metrics(), by="variability", count=5).tolist())
    assert set(subset["key"]) == chosen
    assert subset["key"].tolist() == sorted(chosen, reverse=True)  # the file's (descending) order


@pytest.mark.parametrize("fraction", ["0", "1.5", "-0.1", "nan"])
def test_select_fraction_outside_unit_interval(capsys, run_dir, tmp_path, fraction):
    out = tmp_path / "ids.txt"
    assert_error(capsys, ["select", run_dir, "--region", "easy", "--fraction", fraction, "-o", out],
                 r"The 'fraction' parameter of datacarto select must be a float in \(0, 1\]",
                 absent=[out, f"{out}.manifest.json"])


def test_select_errors(capsys, run_dir, data_csv, tmp_path):
    out = tmp_path / "ids.txt"
    never = [out, f"{out}.manifest.json"]
    assert_error(capsys, ["select", run_dir, "--region", "easy", "--count", "41", "-o", out],
                 r"'count' parameter of select is 41 but the run has only 40", absent=never)
    assert_error(capsys, ["select", run_dir, "--region", "easy", "--count", "-1", "-o", out],
                 r"'count' parameter of datacarto select must be a non-negative", absent=never)
    assert_error(capsys, ["select", run_dir, "--by", "confidnce", "--count", "3", "-o", out],
                 r"'by' parameter of select must be one of .* Did you mean 'confidence'\?",
                 absent=never)
    assert_error(capsys, ["select", run_dir, "--region", "easy", "--count", "3", "--id-column", "x",
                          "-o", out], r"--id-column needs --data", absent=never)
    assert_error(capsys, ["select", run_dir, "--region", "easy", "--count", "3", "--data", data_csv,
                          "-o", out], r"ids\.txt: unsupported file type", absent=never)
    (tmp_path / "notrun").mkdir()
    assert_error(capsys, ["select", tmp_path / "notrun", "--region", "easy", "--count", "3",
                          "-o", out], r"notrun: not a datacarto run", absent=never)
    with pytest.raises(SystemExit) as exc:  # argparse: both --region and --by
        main(["select", str(run_dir), "--region", "easy", "--by", "aum", "--count", "3",
              "-o", str(out)])
    assert exc.value.code == 2
    capsys.readouterr()


# ------------------------------------------------------------------ import / export
BASE = [(0, 0, [[2.0, 0.0, -1.0], [2.5, 0.0, -1.0]]),
        (1, 1, [[0.0, 1.0, 0.5], [0.0, 2.0, 0.5]]),
        (2, 2, [[0.5, 0.0, 1.0], [0.2, 0.0, 1.5]])]


def write_base(folder: Path, edit=None) -> Path:
    """BASE in allenai's layout; ``edit = (epoch, fn)`` rewrites that epoch's file text."""
    guids, gold, logits = zip(*BASE)
    return write_allenai(folder, guids, gold, logits, edit=None if edit is None else (
        lambda e, lines: edit[1]("\n".join(lines) + "\n") if e == edit[0] else None))


def test_import_export_allenai(capsys, tmp_path):
    src = write_base(tmp_path / "model")
    code, out, _ = run_cli(capsys, "import", "allenai", src, "--out", tmp_path / "run",
                           "--classes", "a, b ,c")
    assert code == 0 and "imported 3 examples x 2 epochs, 3 classes" in out
    run = load(tmp_path / "run")
    assert run.classes == ("a", "b", "c") and run.meta.extra["source"] == "allenai"
    code, out, _ = run_cli(capsys, "export", "allenai", tmp_path / "run", tmp_path / "exp",
                           "--epochs", ":1")
    assert code == 0 and "td_metrics.jsonl" in out
    rows = [json.loads(x) for x in (tmp_path / "exp" / "td_metrics.jsonl").read_text().splitlines()]
    assert [r["correctness"] for r in rows] == [1, 1, 1]  # window ":1" = allenai's --burn_out 1
    assert sorted(os.listdir(tmp_path / "exp" / "training_dynamics")) == [
        "dynamics_epoch_0.jsonl", "dynamics_epoch_1.jsonl"]
    assert run_cli(capsys, "metrics", tmp_path / "run")[0] == 0


def _replace(old: str, new: str):
    return lambda text: text.replace(old, new, 1)


IMPORT_ERRORS = [
    ("nan-logits", (1, _replace("[0.0, 2.0, 0.5]", "[0.0, NaN, 0.5]")),
     r"dynamics_epoch_1\.jsonl line 2: NaN is not a finite number"),
    ("inf-logits", (0, _replace("[0.5, 0.0, 1.0]", "[0.5, Infinity, 1.0]")),
     r"dynamics_epoch_0\.jsonl line 3: Infinity is not a finite number"),
    ("label-out-of-range", (0, _replace('"gold": 2', '"gold": 5')),
     r"dynamics_epoch_0\.jsonl line 3: guid=2: gold 5 is outside 0\.\.2"),
    ("wrong-logits-length", (1, _replace("[0.0, 2.0, 0.5]", "[0.0, 2.0]")),
     r"dynamics_epoch_1\.jsonl line 2: guid=1: logits_epoch_1 has 2 values but the run has 3"),
    ("empty-file", (1, lambda text: ""), r"dynamics_epoch_1\.jsonl: the file is empty"),
    ("truncated-last-line", (0, lambda text: text[:-15]),
     r"dynamics_epoch_0\.jsonl line 3: invalid JSON .*truncated"),
    ("non-utf8", (1, lambda text: text.encode().replace(b'"gold": 1', b'"gold": "\xc3\x28"')),
     r"dynamics_epoch_1\.jsonl line 2: not UTF-8 text"),
    ("guid-two-golds", (1, _replace('"guid": 2, "logits_epoch_1": [0.2, 0.0, 1.5], "gold": 2',
                                    '"guid": 2, "logits_epoch_1": [0.2, 0.0, 1.5], "gold": 1')),
     r"dynamics_epoch_1\.jsonl line 3: guid=2 has gold 1 but line 3 of dynamics_epoch_0\.jsonl "
     r"has gold 2"),
    ("guid-missing", (1, lambda text: "\n".join(text.splitlines()[:2]) + "\n"),
     r"dynamics_epoch_1\.jsonl: guid=2 \(line 3 of dynamics_epoch_0\.jsonl\) is missing"),
]


@pytest.mark.parametrize("edit, match", [c[1:] for c in IMPORT_ERRORS], ids=[c[0] for c in IMPORT_ERRORS])
def test_import_allenai_bad_input(capsys, tmp_path, edit, match):
    src = write_base(tmp_path / "model", edit)
    before = sorted(os.listdir(tmp_path))
    assert_error(capsys, ["import", "allenai", src, "--out", tmp_path / "run"], match,
                 absent=[tmp_path / "run"])
    assert sorted(os.listdir(tmp_path)) == before


def test_import_export_errors(capsys, tmp_path):
    assert_error(capsys, ["import", "allenai", tmp_path / "nothing", "--out", tmp_path / "run"],
                 r"nothing: no such directory", absent=[tmp_path / "run"])
    src = write_base(tmp_path / "model")
    assert_error(capsys, ["import", "allenai", src, "--out", src],
                 r"model: already exists and is not empty")
    (tmp_path / "notrun").mkdir()
    assert_error(capsys, ["export", "allenai", tmp_path / "notrun", tmp_path / "exp"],
                 r"notrun: not a datacarto run", absent=[tmp_path / "exp"])
    with pytest.raises(SystemExit) as exc:  # a format is required
        main(["import", str(src)])
    assert exc.value.code == 2
    capsys.readouterr()


def test_import_warning_goes_to_stderr_as_one_line(capsys, tmp_path):
    td = tmp_path / "model"
    td.mkdir()
    (td / "dynamics_epoch_0.jsonl").write_text(
        '{"guid": 0, "logits_epoch_0": [1.0, 1.000000000001], "gold": 1}\n'
        '{"guid": 1, "logits_epoch_0": [2.0, 0.0], "gold": 0}\n')
    code, _, err = run_cli(capsys, "import", "allenai", td, "--out", tmp_path / "run")
    assert code == 0
    assert err.startswith("datacarto: warning: import_allenai: 1 rows have logits")


def test_metrics_engine_dask_equals_local(tmp_path) -> None:  # noqa: ANN001
    """`--engine dask` computes the same table as the local engine (a temporary LocalCluster)."""
    pytest.importorskip("distributed")
    rng = np.random.default_rng(0)
    with Recorder(tmp_path / "run", num_classes=3) as rec:
        for _ in range(3):
            rec.update(np.arange(40), rng.normal(size=(40, 3)), np.arange(40) % 3)
            rec.end_epoch()
    assert main(["metrics", str(tmp_path / "run"), "-o", str(tmp_path / "local.parquet")]) == 0
    assert main(["metrics", str(tmp_path / "run"), "--engine", "dask",
                 "-o", str(tmp_path / "dask.parquet")]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local.parquet"),
                                  pd.read_parquet(tmp_path / "dask.parquet"))


def test_detector_notes_say_window_calibration_and_missing_parts() -> None:
    from datacarto.commands._common import detector_notes

    frame = pd.DataFrame({"id": [1]})
    assert detector_notes(frame) == []
    frame.attrs["label_errors"] = {"message": "memorisation from epoch 3; scored on epochs 1-3",
                                   "calibration": "top 12 by score", "unavailable": ["entropy"]}
    assert detector_notes(frame) == ["label errors: memorisation from epoch 3; scored on epochs 1-3",
                                     "flag calibration: top 12 by score",
                                     "unavailable from this run: entropy"]
