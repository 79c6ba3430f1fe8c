"""datacarto never loses or alters a user's data.

- ``run --out`` never clears a directory that holds the input or files datacarto did not write;
- ``-o`` never names the input data file or a file inside the run;
- exports and selections keep every byte they do not change (line endings, quoting,
  zero-padded ids, number formats; CSV, TSV, JSON Lines, Parquet);
- decisions never land on the wrong rows: a reordered or different data file is refused;
- bad run metadata, truncated compressed files, nonsense labels and values beyond float32 are
  one-line errors naming the file, row or field, never a traceback or a silently wrong result;
- interrupted writes leave no orphans, disk errors name the file, an incomplete run says so.

The fuzz suite (tests/test_fuzz_inputs.py) covers whole classes of bad input; these tests pin
concrete cases, each of which once lost or altered data.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import datacarto
from datacarto.cli import main
from datacarto.errors import InputError

from builders import assert_cli_error, run_cli, write_allenai

N = 60


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_refused(capsys, argv, text: str) -> str:
    """A one-line ``datacarto: error:`` containing ``text`` (taken literally), exit code 2."""
    return assert_cli_error(capsys, argv, re.escape(text))


def user_csv(path: Path, *, crlf: bool = False) -> Path:
    """A CSV with everything pandas likes to rewrite: zero-padded ids and zip codes, 1.10,
    TRUE, quoted commas, an empty cell; optionally CRLF line endings."""
    rng = np.random.default_rng(1)
    lines = ["id,text,label,zip,price,flag,x1,x2"]
    for i in range(N):
        x1, x2 = rng.normal(size=2)
        label = "pos" if x1 + 0.4 * rng.normal() > 0 else "neg"
        price = ["1.10", "2.50", "3", "1e3"][i % 4]
        flag = ["TRUE", "False", "", "true"][i % 4]
        lines.append(f'{i:05d},"item {i}, nice",{label},{rng.integers(0, 999):05d},{price},{flag},'
                     f"{x1:.3f},{x2:.3f}")
    end = "\r\n" if crlf else "\n"
    path.write_bytes((end.join(lines) + end).encode())
    return path


def run_on(data: Path, out: Path, *extra: str) -> Path:
    code = main(["run", str(data), "--label-column", "label", "--feature-columns", "x1,x2",
                 "--out", str(out), "--epochs", "3", "--heldout", "none", "-q", *extra])
    assert code == 0
    return out


@pytest.fixture()
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    user_csv(tmp_path / "train.csv")
    run_on(Path("train.csv"), Path("run"))
    return tmp_path


# ------------------------------------------------------------- run --out never clears the input
def test_run_out_never_clears_a_directory_holding_the_input(ws: Path, capsys) -> None:
    mydata = ws / "mydata"
    mydata.mkdir()
    shutil.copy(ws / "train.csv", mydata / "data.csv")  # a name datacarto writes itself
    before = sha(mydata / "data.csv")
    argv = ["run", "mydata/data.csv", "--label-column", "label", "--feature-columns", "x1,x2",
            "--out", "mydata", "-q"]
    assert_refused(capsys, argv, "holds the input data file")
    os.symlink("mydata", ws / "link")
    assert_refused(capsys, [*argv[:-2], "link", "-q"], "holds the input data file")
    assert sha(mydata / "data.csv") == before and sorted(os.listdir(mydata)) == ["data.csv"]


def test_run_out_refuses_lookalike_folders_and_keeps_user_files_in_its_own(ws: Path, capsys) -> None:
    look = ws / "look"
    (look / "epochs").mkdir(parents=True)
    (look / "seed-0").mkdir()
    (look / "epochs" / "best.ckpt").write_bytes(b"weights")
    (look / "seed-0" / "notes.txt").write_text("notes")
    (look / "metrics.csv").write_text("mine\n")
    assert_refused(capsys, ["run", "train.csv", "--label-column", "label", "--feature-columns",
                            "x1,x2", "--out", "look", "-q"], "no run.json marked by datacarto")
    assert (look / "epochs" / "best.ckpt").read_bytes() == b"weights"
    # a real earlier run is replaced, but a user's files inside it stay
    (ws / "run" / "epochs" / "best.ckpt").write_bytes(b"weights")
    (ws / "run" / "notes.txt").write_text("mine")
    run_on(Path("train.csv"), Path("run"))
    assert (ws / "run" / "epochs" / "best.ckpt").read_bytes() == b"weights"
    assert (ws / "run" / "notes.txt").read_text() == "mine"
    assert datacarto.load(ws / "run").epochs == [1, 2, 3]


# --------------------------------------------------------- -o never names the input or the run
@pytest.mark.parametrize("argv, match", [
    (["select", "run", "--region", "ambiguous", "--fraction", "0.33", "--data", "train.csv", "-o",
      "train.csv"], "input data file"),
    (["flag", "run", "--data", "train.csv", "--text-column", "text", "-o", "train.csv"],
     "input data file"),
    (["report", "run", "-o", "train.csv"], "input data file"),  # the run records train.csv
    (["metrics", "run", "-o", "run/epochs/epoch-00001.parquet"], "file of the run"),
    (["metrics", "run", "-o", "sub/../train.csv"], "input data file"),
    (["review", "run", "--export", "hard.csv"], "input data file"),
    (["select", "run", "--region", "easy", "--count", "3", "-o", "run/run.json"], "file of the run"),
], ids=["select", "flag", "report", "metrics-shard", "dotdot", "hardlink", "select-run-json"])
def test_outputs_never_overwrite_the_input_or_the_run(ws: Path, capsys, argv, match) -> None:
    (ws / "sub").mkdir()
    os.link(ws / "train.csv", ws / "hard.csv")
    before = {p: sha(p) for p in [ws / "train.csv", *sorted((ws / "run").rglob("*.parquet")),
                                  ws / "run" / "run.json"]}
    assert_refused(capsys, argv, match)
    assert {p: sha(p) for p in before} == before


# ---------------------------------------------------------------------- untouched bytes kept
@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_zero_decision_export_and_full_select_are_byte_identical(tmp_path, monkeypatch, capsys,
                                                                   crlf) -> None:
    monkeypatch.chdir(tmp_path)
    user_csv(tmp_path / "d.csv", crlf=crlf)
    for ids in ([], ["--id-column", "id"]):
        run = run_on(Path("d.csv"), Path(f"r{len(ids)}"), *ids)
        assert run_cli(capsys, "review", run, "--data", "d.csv", *ids, "--export", "fixed.csv")[0] == 0
        assert (tmp_path / "fixed.csv").read_bytes() == (tmp_path / "d.csv").read_bytes()
        assert run_cli(capsys, "select", run, "--by", "confidence", "--fraction", "1", "--data", "d.csv",
                   *ids, "-o", "all.csv")[0] == 0
        assert (tmp_path / "all.csv").read_bytes() == (tmp_path / "d.csv").read_bytes()


def test_a_decision_changes_only_its_cell(ws: Path, capsys) -> None:
    run = datacarto.load(ws / "run")
    metrics = run.metrics()
    from datacarto.review.decisions import DecisionLog

    log = DecisionLog(ws / "run" / "review" / "decisions.jsonl")
    ids = metrics["id"].tolist()
    log.append(id=ids[2], old_label="x", action="relabel", new_label="pos" if
               metrics["label_name"].iloc[2] == "neg" else "neg")
    log.append(id=ids[5], old_label="x", action="drop", new_label=None)
    assert run_cli(capsys, "review", "run", "--export", "fixed.csv")[0] == 0
    before = (ws / "train.csv").read_text().splitlines()
    after = (ws / "fixed.csv").read_text().splitlines()
    assert len(after) == len(before) - 1
    expected = before[:6] + before[7:]  # header + rows 0..4, row 5 dropped
    changed = [i for i, (a, b) in enumerate(zip(expected, after)) if a != b]
    assert changed == [3]  # data row 2
    a, b = expected[3].split(","), after[3].split(",")
    assert [i for i, (x, y) in enumerate(zip(a, b)) if x != y] == [3]  # the label cell only


def test_tsv_jsonl_parquet_keep_bytes_and_types(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    frame = pd.read_csv(user_csv(tmp_path / "d.csv"), dtype=str, keep_default_na=False)
    frame.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    with open(tmp_path / "d.jsonl", "w") as fh:
        for row in frame.to_dict("records"):
            row["x1"], row["x2"] = float(row["x1"]), float(row["x2"])
            fh.write(json.dumps(row) + "\n")
    typed = frame.assign(x1=frame.x1.astype("float32"), x2=frame.x2.astype(float),
                         n=np.arange(N, dtype=np.int16))
    typed.to_parquet(tmp_path / "d.parquet", index=False)
    for ext in ("tsv", "jsonl", "parquet"):
        run = run_on(Path(f"d.{ext}"), Path(f"r-{ext}"))
        assert run_cli(capsys, "review", run, "--export", f"fixed.{ext}")[0] == 0
        if ext == "parquet":
            a, b = pq.read_table(tmp_path / "d.parquet"), pq.read_table(tmp_path / "fixed.parquet")
            assert a.schema.equals(b.schema) and a.equals(b)
        else:
            assert (tmp_path / f"fixed.{ext}").read_bytes() == (tmp_path / f"d.{ext}").read_bytes()


def test_ids_1_and_01_are_different_and_zeros_stay(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    f = pd.read_csv(user_csv(tmp_path / "d.csv"), dtype=str, keep_default_na=False)
    f.loc[0, "id"], f.loc[1, "id"] = "1", "01"
    f.to_csv(tmp_path / "d.csv", index=False)
    run = run_on(Path("d.csv"), Path("r"), "--id-column", "id")
    ids = set(datacarto.load(run).metrics()["id"].tolist())
    assert {"1", "01", "00002"} <= ids


# ------------------------------------------- decisions never land on the wrong rows
def test_a_reordered_file_with_row_ids_is_refused_everywhere(ws: Path, capsys) -> None:
    lines = (ws / "train.csv").read_text().splitlines(keepends=True)
    (ws / "shuffled.csv").write_text(lines[0] + "".join(reversed(lines[1:])))
    for argv in (["review", "run", "--data", "shuffled.csv", "--export", "x.csv"],
                 ["report", "run", "--data", "shuffled.csv", "-o", "x.html"],
                 ["flag", "run", "--data", "shuffled.csv", "--text-column", "text", "-o", "x.csv"],
                 ["select", "run", "--region", "hard", "--fraction", "0.5", "--data", "shuffled.csv",
                  "-o", "x.csv"]):
        assert_refused(capsys, argv, "not the file the run was made from")
    assert not list(ws.glob("x.*"))


def test_with_an_id_column_labels_must_agree_within_the_tolerance(ws: Path, capsys) -> None:
    from datacarto._datamatch import LABEL_MISMATCH_TOLERANCE

    run_on(Path("train.csv"), Path("rid"), "--id-column", "id")
    f = pd.read_csv(ws / "train.csv", dtype=str, keep_default_na=False)
    f = f.iloc[::-1]  # re-ordered: fine with an id column
    f.to_csv(ws / "reordered.csv", index=False)
    assert run_cli(capsys, "review", "rid", "--data", "reordered.csv", "--id-column", "id",
               "--export", "ok.csv")[0] == 0
    few = int(LABEL_MISMATCH_TOLERANCE * N)  # corrected labels: still the same file
    many = N // 3
    for k, ok in ((few, True), (many, False)):
        g = f.copy()
        rows = g.index[:k]
        g.loc[rows, "label"] = np.where(g.loc[rows, "label"] == "pos", "neg", "pos")
        g.to_csv(ws / "relabelled.csv", index=False)
        argv = ["review", "rid", "--data", "relabelled.csv", "--id-column", "id", "--export", "o.csv"]
        if ok:
            assert run_cli(capsys, *argv)[0] == 0
        else:
            assert_refused(capsys, argv, "disagrees with the run's labels")


# ---------------------------------------------------- one-line errors, not tracebacks
@pytest.mark.parametrize("field, value", [("epochs", "abc"), ("classes", 5),
                                          ("shards", {"1": "x"}), ("num_classes", "2"),
                                          ("shards", {"1": ["../train.csv"]})])
def test_run_json_of_the_wrong_shape_is_one_line_naming_file_and_field(ws: Path, capsys, field,
                                                                         value) -> None:
    path = ws / "run" / "run.json"
    meta = json.loads(path.read_text())
    meta[field] = value if field != "shards" or "1" not in value else {**meta["shards"], **value}
    path.write_text(json.dumps(meta))
    for argv in (["metrics", "run", "-o", "m.csv"], ["map", "run", "-o", "m.png"],
                 ["flag", "run"], ["report", "run"], ["review", "run", "--export", "e.csv"],
                 ["select", "run", "--region", "easy", "--count", "2", "-o", "s.txt"]):
        err = assert_refused(capsys, argv, "run.json")
        assert field in err


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress], ids=["gz", "bz2"])
def test_truncated_compressed_inputs(ws: Path, capsys, compress) -> None:
    ext = "gz" if compress is gzip.compress else "bz2"
    blob = compress((ws / "train.csv").read_bytes())
    (ws / f"cut.csv.{ext}").write_bytes(blob[: len(blob) // 2])
    assert_refused(capsys, ["run", f"cut.csv.{ext}", "--label-column", "label", "--feature-columns",
                            "x1,x2", "--out", "new", "-q"], f"cut.csv.{ext}")
    assert_refused(capsys, ["flag", "run", "--data", f"cut.csv.{ext}", "--text-column", "text"],
                   f"cut.csv.{ext}")
    assert not (ws / "new").exists()


# --------------------------------------------------------------------- nonsense labels
def test_nonsense_labels_are_refused(ws: Path, capsys) -> None:
    f = pd.read_csv(ws / "train.csv", dtype=str, keep_default_na=False)
    base = ["--feature-columns", "x1,x2", "--out", "new", "--epochs", "2", "-q"]
    reg = f.assign(label=np.linspace(0, 1, N).round(5))
    reg.to_csv(ws / "reg.csv", index=False)
    assert_refused(capsys, ["run", "reg.csv", "--label-column", "label", *base], "60 different labels")
    assert run_cli(capsys, "run", "reg.csv", "--label-column", "label", *base, "--allow-many-classes",
               "--heldout", "none")[0] == 0
    shutil.rmtree(ws / "new")
    inf = f.assign(label=[1.0, 2.0] * (N // 2))
    inf.loc[7, "label"] = float("inf")
    inf.to_csv(ws / "inf.csv", index=False)
    assert_refused(capsys, ["run", "inf.csv", "--label-column", "label", *base], "row 7")
    with open(ws / "l.jsonl", "w") as fh:
        for i in range(N):
            fh.write(json.dumps({"label": [1, 2] if i == 3 else ["a", "b"][i % 2], "x1": i, "x2": 1}) + "\n")
    assert_refused(capsys, ["run", "l.jsonl", "--label-column", "label", *base], "row 3")
    text = (ws / "train.csv").read_text().replace("id,text,label,zip", "id,text,label,label", 1)
    (ws / "dup.csv").write_text(text)
    assert_refused(capsys, ["run", "dup.csv", "--label-column", "label", *base],
                   "column 'label' appears more than once")
    assert not (ws / "new").exists()


# --------------------------------------------------------------------- float32 overflow
def test_finite_float64_beyond_float32_is_refused(tmp_path: Path) -> None:
    rec = datacarto.Recorder(tmp_path / "r", num_classes=2)
    with pytest.raises(InputError, match=r"outputs\[1, 0\] = 1e\+300 \(id=1\).*float32"):
        rec.update([0, 1], np.array([[1.0, 0.0], [1e300, 0.0]]), [0, 1])
    logits = [[[1e308 if (i, e) == (2, 1) else 0.5, 0.1] for e in range(2)] for i in range(4)]
    write_allenai(tmp_path / "allenai", range(4), [i % 2 for i in range(4)], logits)
    from datacarto.interop.allenai import import_allenai

    with pytest.raises(InputError, match=r"dynamics_epoch_1.jsonl line 3: guid=2.*float32"):
        import_allenai(tmp_path / "allenai", tmp_path / "imported")
    assert not (tmp_path / "imported").exists()


# ---------------------------------------------- temporaries, paths, disk errors, time-outs
def test_orphan_temporaries_are_removed_when_the_run_is_reopened(tmp_path: Path) -> None:
    run = tmp_path / "r"
    with datacarto.Recorder(run, num_classes=2) as rec:
        rec.update([0, 1], np.eye(2), [0, 1])
        rec.end_epoch()
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    orphans = [run / f".run.json.tmp-{dead}", run / "epochs" / f".epoch-00002.parquet.tmp-{dead}"]
    for p in orphans:
        p.write_bytes(b"half")
    with datacarto.Recorder(run, num_classes=2) as rec:
        rec.update([0, 1], np.eye(2), [0, 1])
        rec.end_epoch()
    assert not any(p.exists() for p in orphans)


def test_shard_paths_outside_the_run_are_refused(ws: Path, capsys) -> None:
    path = ws / "run" / "run.json"
    meta = json.loads(path.read_text())
    meta["shards"]["1"] = [str(ws / "run" / "epochs" / "epoch-00001.parquet")]  # absolute
    path.write_text(json.dumps(meta))
    assert_refused(capsys, ["metrics", "run", "-o", "m.csv"], "outside the run directory")


@pytest.mark.filterwarnings("default::UserWarning")
def test_directory_as_data_and_warnings_and_errors_are_one_line(ws: Path, capsys) -> None:
    (ws / "folder.csv").mkdir()
    assert_refused(capsys, ["run", "folder.csv", "--label-column", "label", "--feature-columns",
                            "x1,x2", "--out", "new", "-q"], "is a directory")
    one = ws / "one"
    with datacarto.Recorder(one, classes=["a", "b"]) as rec:
        rec.update([0, 1, 2], np.array([[2.0, 0], [0, 2.0], [1, 0]]), [0, 1, 1])
        rec.end_epoch()
    code, _, err = run_cli(capsys, "metrics", one, "-o", ws / "m1.csv")
    assert code == 0
    warnings_lines = [x for x in err.splitlines() if "only 1 epoch" in x]
    assert warnings_lines == ["datacarto: warning: only 1 epoch recorded: variability is 0 for "
                              "every example"]
    bad = ws / "bad\nname.csv"
    assert_refused(capsys, ["run", bad, "--label-column", "label", "--feature-columns", "x",
                            "--out", "new"], "no such file")


def test_disk_errors_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from datacarto import store

    def full(tmp: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        store.atomic_write(tmp_path / "out.csv", full)
    assert info.value.filename == str(tmp_path / "out.csv")
    assert not list(tmp_path.iterdir())


def test_review_connections_time_out() -> None:
    from datacarto.review.server import ReviewHandler

    assert 0 < ReviewHandler.timeout <= 120


def test_a_run_stopped_early_says_it_is_incomplete(tmp_path: Path, capsys) -> None:
    run = tmp_path / "r"
    rec = datacarto.Recorder(run, classes=["a", "b"], planned_epochs=30)
    for _ in range(2):
        rec.update([0, 1, 2, 3], np.array([[2.0, 0], [0, 2.0], [1, 0], [0, 1]]), [0, 1, 1, 0])
        rec.end_epoch()
    del rec  # killed: no close()
    assert json.loads((run / "run.json").read_text())["planned_epochs"] == 30
    assert datacarto.load(run).incomplete() == "incomplete: 2 of 30 epochs"
    for argv in (["metrics", run, "-o", tmp_path / "m.csv"], ["map", run, "-o", tmp_path / "m.png"],
                 ["flag", run, "-o", tmp_path / "f.csv"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 0 and "incomplete: 2 of 30 epochs" in err


def test_reset_output_details(tmp_path: Path) -> None:
    from datacarto.outputs import CREATED_BY, reset_output

    def ours(d: Path) -> None:
        d.mkdir(parents=True, exist_ok=True)
        (d / "run.json").write_text(json.dumps({"format": "datacarto-run",
                                                "extra": {"created_by": CREATED_BY}}))
        (d / "epochs").mkdir(exist_ok=True)
        (d / "epochs" / "epoch-00001.parquet").write_bytes(b"x")
        (d / "epochs" / ".epoch-00002.parquet.tmp-99999999").write_bytes(b"x")
        (d / ".metrics.csv.tmp-99999999").write_bytes(b"x")

    # --seeds K killed before summary.json: the seeds' markers make it ours
    out = tmp_path / "seeds"
    ours(out / "seed-0")
    ours(out / "seed-1")
    (out / "seed-1" / "notes.txt").write_text("mine")
    reset_output(out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["seed-1", "seed-1/notes.txt"]
    # a marker without the format is not ours; a symlinked file is unlinked, not its target
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "run.json").write_text(json.dumps({"extra": {"created_by": CREATED_BY}}))
    with pytest.raises(InputError, match="no run.json marked by datacarto"):
        reset_output(fake)
    real = tmp_path / "r"
    ours(real)
    precious = tmp_path / "precious.csv"
    precious.write_text("keep")
    os.symlink(precious, real / "metrics.csv")
    reset_output(real)
    assert precious.read_text() == "keep" and not (real / "metrics.csv").exists()
    # a dangling symlink as --out, and a leftover of an interrupted first run
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    with pytest.raises(InputError, match="missing directory"):
        reset_output(tmp_path / "dangling")
    half = tmp_path / "half"
    (half / "cache").mkdir(parents=True)
    (half / "cache" / "minilm-1.npy").write_bytes(b"0")
    (half / "epochs").mkdir()
    (half / "epochs" / ".epoch-00001.parquet.tmp-99999999").write_bytes(b"x")
    reset_output(half)
    assert sorted(p.name for p in half.rglob("*")) == ["cache", "minilm-1.npy"]


def test_check_output_path_rules(tmp_path: Path) -> None:
    from datacarto._paths import check_output_dir, check_output_path

    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    run = tmp_path / "run"
    (run / "epochs").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "epochs" / "epoch-00001.parquet").write_bytes(b"x")
    os.link(run / "epochs" / "epoch-00001.parquet", tmp_path / "alias.parquet")
    for bad in (data, tmp_path / "x" / ".." / "d.csv", run / "run.json", run / "epochs" / "n.csv",
                tmp_path / "alias.parquet", run / "review" / "decisions.jsonl", tmp_path):
        with pytest.raises(InputError):
            check_output_path(bad, inputs=[data], run_dirs=[run])
    for fine in (run / "metrics.parquet", run / "flags.csv", tmp_path / "new.csv"):
        assert check_output_path(fine, inputs=[data], run_dirs=[run]) == fine
    for bad in (tmp_path, run, run / "epochs" / "x"):
        with pytest.raises(InputError):
            check_output_dir(bad, inputs=[data], run_dirs=[run])
    assert check_output_dir(run / "allenai", inputs=[data], run_dirs=[run]) == run / "allenai"
