"""End-to-end tests of ``datacarto run`` and ``datacarto demo``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datacarto import load
from datacarto.cli import main
from datacarto.commands import demo as demo_cmd
from datacarto.progress import Progress
from datacarto.train import featurize

pytest.importorskip("sklearn")

WORDS = {"positive": "good great lovely fun superb", "negative": "bad awful dull boring poor",
         "neutral": "plot story man woman city"}


def text_frame(n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.array(list(WORDS))[np.arange(n) % 3]
    texts = [" ".join(rng.choice(WORDS[y].split(), 4)) for y in labels]
    return pd.DataFrame({"review": texts, "sentiment": labels})


def tabular_frame(n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return pd.DataFrame({"uid": [f"u{i:04d}" for i in range(n)],
                         "a": y * 2.0 + rng.normal(size=n), "b": rng.normal(size=n),
                         "shape": np.array(["round", "square", "flat"])[y],
                         "cls": np.array(["x", "y", "z"])[y]})


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_text_csv_end_to_end(tmp_path, capsys):
    data = tmp_path / "reviews.csv"
    text_frame().to_csv(data, index=False)
    out = tmp_path / "run"
    code, stdout, stderr = run_cli(capsys, "run", data, "--label-column", "sentiment",
                                   "--text-column", "review", "--out", out, "--epochs", "3")
    assert code == 0, stderr
    for name in ("run.json", "metrics.parquet", "metrics.csv", "datamap.png", "suspects.csv",
                 "heldout.parquet", "summary.json", "summary.txt"):
        assert (out / name).is_file(), name
    run = load(out)
    assert run.classes == ("negative", "neutral", "positive") and run.epochs == [1, 2, 3]
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert metrics["id"].tolist() == list(range(90))  # every row, ids = row numbers
    assert set(metrics["label_name"]) == {"negative", "neutral", "positive"}
    assert metrics[["confidence", "variability", "correctness"]].notna().all().all()
    assert len(pd.read_csv(out / "metrics.csv")) == 90
    suspects = pd.read_csv(out / "suspects.csv")
    assert list(suspects.columns[:4]) == ["id", "given_label", "suggested_label", "label_error_score"]
    assert "review" in suspects.columns
    meta = json.loads((out / "run.json").read_text())
    assert meta["data_fingerprint"].startswith("sha256:")
    curve = meta["extra"]["curve"]
    assert [p["epoch"] for p in curve] == [1, 2, 3] and "heldout_acc" in curve[0]
    assert "Accuracy on the given labels per epoch" in stdout and "Regions:" in stdout
    assert "epoch 3/3:" in stderr and "ex/s" in stderr  # plain progress lines (not a terminal)
    assert (out / "summary.txt").read_text().strip() == stdout.strip()
    # other commands read the run as it is
    assert load(out).metrics()["id"].tolist() == list(range(90))


def test_run_tabular_jsonl_string_ids_mlp_eval(tmp_path, capsys):
    data = tmp_path / "rows.jsonl"
    tabular_frame().to_json(data, orient="records", lines=True)
    out = tmp_path / "tab"
    code, stdout, stderr = run_cli(capsys, "run", data, "--label-column", "cls", "--feature-columns",
                                   "a,b,shape", "--id-column", "uid", "--out", out, "--model", "mlp",
                                   "--capture", "eval", "--epochs", "3", "--quiet")
    assert code == 0, stderr
    assert stdout == "" and stderr == ""
    run = load(out)
    assert run.capture == "eval" and run.meta.id_type == "str"
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert sorted(metrics["id"]) == [f"u{i:04d}" for i in range(90)]
    assert (out / "summary.txt").read_text().startswith("90 examples, 3 classes (x, y, z)")


def test_run_seeds_layout_and_aggregation(tmp_path, capsys):
    data = tmp_path / "t.parquet"
    tabular_frame(60).to_parquet(data)
    out = tmp_path / "multi"
    code, stdout, _ = run_cli(capsys, "run", data, "--label-column", "cls", "--feature-columns",
                              "a,b", "--out", out, "--seeds", "2", "--epochs", "2",
                              "--heldout", "none")
    assert code == 0
    assert load(out / "seed-0").meta.seed == 0 and load(out / "seed-1").meta.seed == 1
    assert not (out / "run.json").exists()
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert len(metrics) == 60 and (metrics["n_runs"] == 2).all() and "confidence_std" in metrics
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run_dirs"] == ["seed-0", "seed-1"] and summary["memorisation_epoch"] is None
    assert "no held-out curve" in stdout and "2 seeds" in stdout
    # a rerun into the same directory replaces the earlier one
    code, _, _ = run_cli(capsys, "run", data, "--label-column", "cls", "--feature-columns", "a",
                         "--out", out, "--epochs", "2", "-q")
    assert code == 0 and (out / "run.json").is_file() and not (out / "seed-1").exists()


def test_run_tsv_crossfit(tmp_path, capsys):
    data = tmp_path / "t.tsv"
    text_frame(45).to_csv(data, sep="\t", index=False)
    code, stdout, _ = run_cli(capsys, "run", data, "--label-column", "sentiment", "--text-column",
                              "review", "--out", tmp_path / "cf", "--heldout", "crossfit",
                              "--epochs", "2")
    assert code == 0 and "--heldout crossfit" in stdout
    assert load(tmp_path / "cf").meta.extra["heldout"] == "crossfit"


def _bad(tmp_path: Path, name: str, frame: pd.DataFrame | None = None, raw: bytes | None = None) -> Path:
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
    else:
        assert frame is not None
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("case, args, message", [
    ("missing label", ["--label-column", "nope", "--text-column", "review"],
     r"data\.csv: no label column 'nope'; columns are \['review', 'sentiment', 'key'\]"),
    ("missing text", ["--label-column", "sentiment", "--text-column", "body"],
     r"data\.csv: no text column 'body'"),
    ("missing id", ["--label-column", "sentiment", "--text-column", "review", "--id-column", "pk"],
     r"data\.csv: no id column 'pk'"),
    ("duplicate ids", ["--label-column", "sentiment", "--text-column", "review", "--id-column", "key"],
     r"data\.csv row 4: id 'k1' appears more than once in column 'key'"),
    ("empty label", ["--label-column", "sentiment", "--text-column", "review"],
     r"data\.csv row 2: empty label in column 'sentiment'"),
    ("single class", ["--label-column", "sentiment", "--text-column", "review"],
     r"data\.csv: column 'sentiment' has a single class \('positive'\)"),
])
def test_run_bad_input(tmp_path, capsys, case, args, message):
    frame = text_frame(9)
    frame["key"] = [f"k{i}" for i in range(9)]
    if case == "duplicate ids":
        frame.loc[4, "key"] = "k1"
    if case == "empty label":
        frame.loc[2, "sentiment"] = ""
    if case == "single class":
        frame["sentiment"] = "positive"
    data = _bad(tmp_path, "data.csv", frame)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, "run", data, *args, "--out", out)
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("datacarto: error: ")
    import re

    assert re.search(message, stderr), stderr
    assert not out.exists()  # nothing half-written


def test_run_non_utf8_and_unreadable(tmp_path, capsys):
    data = _bad(tmp_path, "latin.csv", raw="review,sentiment\ncafé,positive\nbad,negative\n"
                .encode("latin-1"))
    code, _, stderr = run_cli(capsys, "run", data, "--label-column", "sentiment", "--text-column",
                              "review", "--out", tmp_path / "o1")
    assert code == 2 and "latin.csv: not UTF-8 text (line 2" in stderr
    code, _, stderr = run_cli(capsys, "run", tmp_path / "missing.csv", "--label-column", "s",
                              "--text-column", "r", "--out", tmp_path / "o2")
    assert code == 2 and "missing.csv: no such file" in stderr
    assert not (tmp_path / "o1").exists()


def test_run_unreadable_file(tmp_path, capsys, monkeypatch):
    locked = _bad(tmp_path, "locked.csv", text_frame(6))
    if os.geteuid() == 0:  # root reads any file: make the read fail as it would for a user
        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(pd, "read_csv", denied)
    else:
        locked.chmod(0)
    try:
        code, _, stderr = run_cli(capsys, "run", locked, "--label-column", "sentiment",
                                  "--text-column", "review", "--out", tmp_path / "o3")
    finally:
        locked.chmod(0o644)
    assert code == 2 and "locked.csv: cannot read as csv" in stderr and "Permission denied" in stderr
    assert not (tmp_path / "o3").exists()


def test_run_minilm_without_text_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(featurize, "is_available", lambda module: False)
    data = _bad(tmp_path, "d.csv", text_frame(9))
    code, _, stderr = run_cli(capsys, "run", data, "--label-column", "sentiment", "--text-column",
                              "review", "--model", "minilm", "--out", tmp_path / "o")
    assert code == 2
    assert "--model minilm needs 'sentence_transformers'" in stderr
    assert "pip install 'datacarto[text]'" in stderr
    assert not (tmp_path / "o").exists()


def test_run_refuses_foreign_out_dir(tmp_path, capsys):
    data = _bad(tmp_path, "d.csv", text_frame(9))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    code, _, stderr = run_cli(capsys, "run", data, "--label-column", "sentiment", "--text-column",
                              "review", "--out", out)
    assert code == 2 and "choose a new or empty --out directory" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_run_minilm_tiny(tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip(featurize.MINILM_PACKAGE)
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    data = _bad(tmp_path, "d.csv", text_frame(40))
    out = tmp_path / "mini"
    args = ["run", data, "--label-column", "sentiment", "--text-column", "review", "--model",
            "minilm", "--epochs", "2", "--out", out]
    code, _, stderr = run_cli(capsys, *args)
    assert code == 0, stderr
    assert len(list((out / "cache").glob("minilm-*.npy"))) == 1
    assert load(out).meta.extra["model"]["input"] == "minilm"
    code, _, stderr = run_cli(capsys, *args)  # rerun: embeddings from the cache
    assert code == 0 and "from cache" in stderr


# ---------------------------------------------------------------------------------- demo
def test_demo_digits_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, stderr = run_cli(capsys, "demo", "--dataset", "digits", "--out", out,
                                   "--epochs", "3")
    assert code == 0, stderr
    flips = pd.read_csv(out / "injected_flips.csv")
    assert len(flips) == round(0.05 * 1797) and (flips["original_label"] != flips["given_label"]).all()
    meta = load(out).meta
    assert sorted(meta.extra["injected_flips"]) == sorted(flips["id"].tolist())
    data = pd.read_parquet(out / "data.parquet")
    assert "original_label" not in data.columns  # the detector never sees the truth
    given = data.set_index("id").loc[flips["id"], "label"].astype(str).tolist()
    assert given == flips["given_label"].astype(str).tolist()
    summary = json.loads((out / "summary.json").read_text())["demo"]
    assert summary["flips"] == 90 and summary["average_precision"] > 0.5
    assert "precision" in stdout and "average precision of label_error_score" in stdout
    assert "[flip]" in stdout and (out / "datamap.png").is_file()


def test_demo_fashion_mnist_missing_says_apt_get(tmp_path, capsys):
    code, _, stderr = run_cli(capsys, "demo", "--dataset", "fashion-mnist", "--data-dir",
                              tmp_path / "none", "--out", tmp_path / "o")
    assert code == 2 and "apt-get install dataset-fashion-mnist" in stderr
    assert not (tmp_path / "o").exists()


def test_demo_fashion_mnist_from_files(tmp_path, capsys):
    from test_datasets import fake_fashion_mnist

    root = fake_fashion_mnist(tmp_path / "fm", n=60)
    code, stdout, stderr = run_cli(capsys, "demo", "--dataset", "fashion-mnist", "--data-dir", root,
                                   "--out", tmp_path / "o", "--epochs", "2", "--noise", "0.1")
    assert code == 0, stderr
    assert "6 labels flipped (10%)" in stdout


def test_demo_bad_noise(tmp_path, capsys):
    code, _, stderr = run_cli(capsys, "demo", "--dataset", "digits", "--noise", "1.5", "--out",
                              tmp_path / "o")
    assert code == 2 and "--noise must be a fraction in [0, 1)" in stderr


def test_flip_labels_and_average_precision():
    labels = np.array(["a", "b", "c"] * 20, dtype=object)
    noisy, rows = demo_cmd.flip_labels(labels, 0.1)
    assert len(rows) == 6 and (noisy[rows] != labels[rows]).all()
    assert (np.delete(noisy, rows) == np.delete(labels, rows)).all()
    again, rows2 = demo_cmd.flip_labels(labels, 0.1)
    assert rows.tolist() == rows2.tolist() and again.tolist() == noisy.tolist()
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    truth = rng.random(200) < 0.2
    scores = np.round(rng.random(200) + truth * 0.3, 1)  # ties on purpose
    assert demo_cmd.average_precision(truth, scores) == pytest.approx(
        sklearn_metrics.average_precision_score(truth, scores))
    assert np.isnan(demo_cmd.average_precision(np.zeros(3, bool), np.ones(3)))


# ------------------------------------------------------------------------------ progress
def test_progress_terminal_bar_and_quiet():
    stream = io.StringIO()
    p = Progress(stream=stream, tty=True)
    p.start("epoch 1/1", total=10)
    p.advance(10)
    p.finish("done")
    text = stream.getvalue()
    assert "\r" in text and "[" in text and "epoch 1/1: 10 ex in" in text and "done" in text
    quiet = io.StringIO()
    q = Progress(stream=quiet, quiet=True)
    q.message("hello")
    q.start("x", 1)
    q.advance(1)
    q.finish()
    assert quiet.getvalue() == ""


# -------------------------------------------------------------------- pixels and figures
def pixel_frame(n: int = 90, side: int = 8, seed: int = 0) -> pd.DataFrame:
    """``n`` images of ``side`` x ``side`` pixels (columns px_0..), the class in the top rows."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    pixels = rng.integers(0, 4, size=(n, side * side)).astype(float)
    pixels[:, :side] += 8.0 * (y[:, None] == 0)
    pixels[:, side:2 * side] += 8.0 * (y[:, None] == 1)
    frame = pd.DataFrame(pixels, columns=[f"px_{i}" for i in range(side * side)])
    frame["digit"] = np.array(["zero", "one", "two"])[y]
    return frame


def test_run_describes_pixel_rows_as_images_and_passes_the_axes(tmp_path, capsys, monkeypatch):
    from datacarto.plot import datamap

    drawn = {}
    real = datamap.plot_data_map

    def spy(*args, **kwargs):
        drawn.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(datamap, "plot_data_map", spy)
    data = tmp_path / "digits.csv"
    pixel_frame().to_csv(data, index=False)
    code, stdout, stderr = run_cli(capsys, "run", data, "--label-column", "digit",
                                   "--feature-columns", "px_*", "--out", tmp_path / "run",
                                   "--epochs", "3", "--model", "linear", "--axes", "paper",
                                   "--top", "3")
    assert code == 0, stderr
    assert drawn["axes"] == "paper"
    assert "[8x8 image, mean 0." in stdout and "px_0=" not in stdout
    code, stdout, _ = run_cli(capsys, "flag", tmp_path / "run", "--all")
    assert code == 0 and "[8x8 image, mean 0." in stdout and "px_0=" not in stdout
    code, stdout, _ = run_cli(capsys, "flag", tmp_path / "run", "--all", "--image-shape", "4,16")
    assert code == 0 and "[4x16 image, mean 0." in stdout
    code, _, stderr = run_cli(capsys, "run", data, "--label-column", "digit", "--feature-columns",
                              "px_*", "--out", tmp_path / "bad", "--image-shape", "4,4")
    assert code == 2 and "--image-shape 4,4 needs 16 feature columns; the data has 64" in stderr
    assert not (tmp_path / "bad").exists()  # refused before any output


def test_run_metrics_and_flag_print_each_figure_from_one_source(tmp_path, capsys):
    data = tmp_path / "reviews.csv"
    text_frame(n=150).to_csv(data, index=False)
    out = tmp_path / "run"
    code, run_out, stderr = run_cli(capsys, "run", data, "--label-column", "sentiment",
                                    "--text-column", "review", "--out", out, "--epochs", "6",
                                    "--model", "linear")
    assert code == 0, stderr
    _, metrics_out, _ = run_cli(capsys, "metrics", out)
    _, flag_out, _ = run_cli(capsys, "flag", out)
    memorisation = [line.strip() for line in run_out.splitlines()
                    if line.strip().startswith(("Memorisation from epoch", "No memorisation"))]
    assert len(memorisation) == 1
    recorded = load(out).meta.memorisation_epoch
    assert memorisation[0].startswith(f"Memorisation from epoch {recorded}:" if recorded
                                      else "No memorisation")
    for text in (metrics_out, flag_out):  # the same line, from the same definition
        assert memorisation[0] in text.splitlines()
    shared = [line for line in run_out.splitlines()
              if line.startswith(("fit check", "label errors:", "flag calibration:",
                                  "Flagged as likely label errors:"))]
    assert len(shared) == 4
    for line in shared:
        assert line in metrics_out.splitlines()


def test_flag_refuses_an_image_shape_that_does_not_fit_in_one_line(tmp_path, capsys):
    data = tmp_path / "digits.csv"
    pixel_frame(n=60).to_csv(data, index=False)
    assert run_cli(capsys, "run", data, "--label-column", "digit", "--feature-columns", "px_*",
                   "--out", tmp_path / "run", "--epochs", "2", "--model", "linear", "-q")[0] == 0
    code, _, stderr = run_cli(capsys, "flag", tmp_path / "run", "--image-shape", "5,5")
    assert code == 2 and stderr.count("\n") == 1
    assert "--image-shape 5,5 needs 25 feature columns; the data has 64" in stderr
