"""Tests for datacarto.train and the run workflow: models, featurizers, the epoch loop, data
preparation and the workflow's stages."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from datacarto import Recorder, load
from datacarto.errors import InputError, MissingDependencyError, SchemaError
from datacarto.progress import Progress
from datacarto import workflow
from datacarto.commands import _summary
from datacarto.commands.flag import flag_table
from datacarto.outputs import CREATED_BY
from datacarto.train import featurize, loop, models, preparation, trainer
from datacarto.train.preparation import RunOptions


# ------------------------------------------------------------------------------- models
def _blobs(n: int = 120, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centers = rng.normal(0, 3, size=(k, 4))
    return centers[y] + rng.normal(size=(n, 4)), y


@pytest.mark.parametrize("cls", [models.SoftmaxRegression, models.MLP])
def test_models_learn_and_pass_logits_come_before_the_update(cls):
    X, y = _blobs()
    model = cls(X, y, 3, lr=0.05, batch_size=16, seed=0)
    rng = np.random.default_rng(0)
    seen: list[np.ndarray] = []

    def on_batch(batch, logits):
        assert logits.shape == (len(batch), 3)
        # the logits handed out are those of the forward pass, before this batch's update
        np.testing.assert_allclose(logits, model.logits(batch))
        seen.append(batch)

    for _ in range(5):
        model.fit_epoch(np.arange(len(y)), rng, on_batch)
    assert sorted(np.concatenate(seen[-8:]).tolist()) == list(range(len(y)))
    assert (model.logits(np.arange(len(y))).argmax(1) == y).mean() > 0.95


def test_model_trains_only_on_given_rows():
    X, y = _blobs()
    model = models.SoftmaxRegression(X, y, 3, lr=0.05, seed=0)
    rows = np.arange(0, 120, 2)
    batches: list[np.ndarray] = []
    model.fit_epoch(rows, np.random.default_rng(0), lambda b, z: batches.append(b))
    assert sorted(np.concatenate(batches).tolist()) == rows.tolist()


def test_models_accept_sparse_features():
    sp = pytest.importorskip("scipy.sparse")
    X, y = _blobs()
    model = models.SoftmaxRegression(sp.csr_matrix(X), y, 3, lr=0.05, seed=0)
    for _ in range(5):
        model.fit_epoch(np.arange(len(y)), np.random.default_rng(1))
    assert (model.logits(np.arange(len(y))).argmax(1) == y).mean() > 0.9


def test_softmax_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 3))
    y = np.array([0, 2, 1, 1])

    def loss(zz):
        return -models.log_softmax(zz)[np.arange(4), y].mean()

    g = models.softmax_xent_grad(z, y)
    eps = 1e-6
    num = np.zeros_like(z)
    for i in range(4):
        for j in range(3):
            d = np.zeros_like(z)
            d[i, j] = eps
            num[i, j] = (loss(z + d) - loss(z - d)) / (2 * eps)
    np.testing.assert_allclose(g, num, atol=1e-7)


# ---------------------------------------------------------------------------- featurize
def test_tfidf_features_unit_rows_and_empty_texts():
    pytest.importorskip("sklearn")
    X = featurize.tfidf_features(["a good film", "", "bad film"])
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms[[0, 2]], 1.0)
    assert norms[1] == 0.0
    only_empty = featurize.tfidf_features(["", ""])
    assert only_empty.shape[0] == 2


def test_tabular_features_standardise_and_one_hot():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan], "flag": [True, False, True, True],
                          "const": [5, 5, 5, 5], "color": ["red", None, "blue", "red"]})
    X, names = featurize.tabular_features(frame, ["x", "flag", "const", "color"])
    assert names == ["x", "flag", "const", "color=<missing>", "color=blue", "color=red"]
    np.testing.assert_allclose(X[:3, 0], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)])
    assert X[3, 0] == 0.0 and (X[:, 2] == 0).all()
    assert X[:, 3:].sum(axis=1).tolist() == [1, 1, 1, 1]


def test_tabular_many_categories_share_other(monkeypatch):
    monkeypatch.setattr(featurize, "MAX_CATEGORIES", 2)
    frame = pd.DataFrame({"c": ["a", "a", "b", "b", "c", "d"]})
    X, names = featurize.tabular_features(frame, ["c"])
    assert names == ["c=a", "c=b", "c=<other>"]
    assert X[4:, 2].tolist() == [1.0, 1.0]


def test_minilm_missing_names_the_extra(monkeypatch):
    monkeypatch.setattr(featurize, "is_available", lambda module: module != "sentence_transformers")
    with pytest.raises(MissingDependencyError, match=r"pip install 'datacarto\[text\]'"):
        featurize.check_minilm_available()


def test_minilm_model_dir_missing(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match="is not installed"):
        featurize.minilm_model_dir()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_minilm_embeddings_are_cached(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip(featurize.MINILM_PACKAGE)
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    texts = ["a fine film", "a dull film", "plot: a man walks"]
    emb, cached = featurize.minilm_embeddings(texts, cache_dir=tmp_path)
    assert emb.shape == (3, featurize.MINILM_DIM) and not cached
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    again, cached = featurize.minilm_embeddings(texts, cache_dir=tmp_path)
    assert cached and np.array_equal(emb, again)


# ------------------------------------------------------------------------------- loop
def test_stratified_folds_balance_each_class():
    y = np.repeat([0, 1, 2], [10, 7, 1])
    folds = loop.stratified_folds(y, np.random.default_rng(3))
    for c, n in [(0, 10), (1, 7)]:
        assert abs(int((folds[y == c] == 0).sum()) - n / 2) <= 0.5
    assert abs(int((folds == 0).sum()) - 9) <= 1


def test_memorisation_epoch_needs_the_gap_to_last():
    curve = [{"epoch": 1, "gap": 0.1}, {"epoch": 2, "gap": 0.01}, {"epoch": 3, "gap": 0.06},
             {"epoch": 4, "gap": 0.2}]
    assert loop.memorisation_epoch(curve) == 3
    assert loop.memorisation_epoch(curve[:2]) is None
    assert loop.memorisation_epoch([{"epoch": 1, "train_acc": 1.0}]) is None


@pytest.mark.parametrize("heldout", ["side", "crossfit", "none"])
@pytest.mark.parametrize("capture", ["pass", "eval"])
def test_train_and_record_every_row_every_epoch(heldout, capture):
    X, y = _blobs(60)
    ids = np.arange(100, 160)
    rec = Recorder(None, num_classes=3, capture=capture)
    make = lambda rows, seed: models.SoftmaxRegression(X, y, 3, lr=0.05, seed=seed)  # noqa: E731
    res = loop.train_and_record(make, y, ids, n_classes=3, recorder=rec, epochs=3, capture=capture,
                                heldout=heldout, seed=0, progress=Progress(quiet=True))
    dyn = rec.to_dynamics()
    assert dyn.gold_prob.shape == (60, 3) and dyn.ids.tolist() == ids.tolist()
    assert [p["epoch"] for p in res.curve] == [1, 2, 3]
    if heldout == "none":
        assert res.heldout_logits is None and "heldout_acc" not in res.curve[0]
    else:
        assert res.heldout_logits.shape == (3, 60, 3)
        assert np.abs(res.heldout_logits[-1]).sum(axis=1).min() > 0  # every row held out
        assert res.curve[-1]["heldout_acc"] > 0.8
        assert res.curve[-1]["gap"] == pytest.approx(
            res.curve[-1]["halves_train_acc"] - res.curve[-1]["heldout_acc"], abs=1e-6)
    if heldout == "crossfit":
        assert res.curve[-1]["train_acc"] == res.curve[-1]["halves_train_acc"]


def test_train_and_record_is_deterministic():
    X, y = _blobs(40)

    def once():
        rec = Recorder(None, num_classes=3)
        loop.train_and_record(lambda r, s: models.MLP(X, y, 3, hidden=8, seed=s), y, np.arange(40),
                              n_classes=3, recorder=rec, epochs=2, capture="pass", heldout="side",
                              seed=7, progress=Progress(quiet=True))
        return rec.to_dynamics().gold_prob

    np.testing.assert_array_equal(once(), once())


# ---------------------------------------------------------------------- preparation
def test_encode_labels_numbers_sort_numerically():
    idx, names = preparation.encode_labels(pd.Series([10, 2, 2.0, 10]), name="y", source="f")
    assert names == ["2", "10"] and idx.tolist() == [1, 0, 0, 1]
    idx, names = preparation.encode_labels(pd.Series([True, False]), name="y", source="f")
    assert names == ["False", "True"]
    _, names = preparation.encode_labels(pd.Series([0.5, 1.5]), name="y", source="f")
    assert names == ["0.5", "1.5"]


def test_encode_labels_errors():
    with pytest.raises(InputError, match=r"f\.csv row 1: empty label in column 'y'"):
        preparation.encode_labels(pd.Series(["a", "  ", "b"]), name="y", source="f.csv")
    with pytest.raises(InputError, match=r"f\.csv row 2: empty label"):
        preparation.encode_labels(pd.Series([1.0, 2.0, np.nan]), name="y", source="f.csv")
    with pytest.raises(InputError, match=r"single class \('a'\)"):
        preparation.encode_labels(pd.Series(["a", "a"]), name="y", source="f.csv")


def _frame(n: int = 30) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"text {i}" for i in range(n)], "y": ["a", "b", "c"] * (n // 3),
                         "x1": np.arange(n, dtype=float), "x2": np.ones(n)})


@pytest.mark.parametrize("options, error, message", [
    (dict(text_column="text", feature_columns="x1"), InputError, "not both"),
    (dict(text_column="nope"), SchemaError, r"no text column 'nope'; columns are"),
    (dict(text_column="y"), InputError, "also the label or id column"),
    (dict(feature_columns="x*,q"), SchemaError, r"no column 'q' \(feature columns\)"),
    (dict(feature_columns=" , "), InputError, "--feature-columns is empty"),
    (dict(feature_columns="x1,y"), InputError, "feature column 'y' is also the label"),
    (dict(text_column="text", model="mlp"), InputError, "--model mlp is for tabular"),
    (dict(feature_columns="x1", model="minilm"), InputError, "--model minilm reads text"),
    (dict(text_column="text", model="finetune"), InputError, "needs --base PATH"),
    (dict(text_column="text", model="svm"), InputError, "--model.*Got 'svm'"),
    (dict(text_column="text", seeds=0), InputError, r"--seeds must be an integer >= 1"),
    (dict(text_column="text", epochs=0), InputError, r"--epochs must be an integer >= 1"),
    (dict(text_column="text", lr=-1.0), InputError, r"--lr must be a positive number"),
    (dict(text_column="text", batch_size=0), InputError, r"--batch-size must be an integer"),
    (dict(text_column="text", heldout="half"), InputError, r"--heldout"),
])
def test_prepare_errors(options, error, message):
    with pytest.raises(error, match=message):
        preparation.prepare(_frame(), RunOptions(label_column="y", **options), source="d.csv")


def test_prepare_missing_label_column():
    with pytest.raises(SchemaError, match=r"d\.csv: no label column 'label'"):
        preparation.prepare(_frame(), RunOptions(label_column="label", text_column="text"),
                            source="d.csv")


def test_prepare_finetune_base_checks(tmp_path):
    with pytest.raises(InputError, match="not a Hugging Face model directory"):
        preparation.prepare(_frame(), RunOptions(label_column="y", text_column="text",
                                                 model="finetune", base=str(tmp_path)))


def test_prepare_resolves_patterns_and_defaults():
    prep = preparation.prepare(_frame(), RunOptions(label_column="y", feature_columns="x*"))
    # auto is resolved in training, from held-out curves: nothing chosen yet
    assert prep.feature_columns == ["x1", "x2"] and prep.model == "auto" and prep.epochs is None
    assert prep.ids.tolist() == list(range(30))
    prep = preparation.prepare(_frame(), RunOptions(label_column="y", feature_columns=["x2"],
                                                    model="mlp", hidden=7, epochs=2))
    assert prep.hyper["hidden"] == 7 and prep.epochs == 2


def test_reset_output_refuses_foreign_directories(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty and holds no earlier `datacarto run`"):
        workflow.reset_output(tmp_path)
    assert (tmp_path / "notes.txt").exists()
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(InputError, match="is not a directory"):
        workflow.reset_output(target)


def test_reset_output_refuses_a_run_from_elsewhere(tmp_path):
    rec = Recorder(tmp_path / "r", num_classes=2)
    rec.update([0, 1], np.array([[1.0, 0.0], [0.0, 1.0]]), [0, 1])
    rec.end_epoch()
    with pytest.raises(InputError, match="holds no earlier `datacarto run`"):
        workflow.reset_output(tmp_path / "r")
    assert load(tmp_path / "r").epochs == [1]


def test_reset_output_clears_earlier_outputs_keeps_cache(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "minilm-x.npy").write_bytes(b"0")
    (tmp_path / "seed-0").mkdir()
    (tmp_path / "metrics.csv").write_text("id\n")
    (tmp_path / "summary.json").write_text(json.dumps({"created_by": CREATED_BY}))
    (tmp_path / "other.txt").write_text("kept")
    workflow.reset_output(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "other.txt"]


def test_execute_writes_everything_and_curve_in_run_json(tmp_path):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    words = {"a": "good great fine", "b": "bad awful poor", "c": "plot story man"}
    labels = ["a", "b", "c"] * 20
    frame = pd.DataFrame({"t": [" ".join(rng.choice(words[y].split(), 3)) for y in labels],
                          "y": labels, "key": [f"k{i:03d}" for i in range(60)]})
    options = RunOptions(label_column="y", text_column="t", id_column="key", epochs=3)
    prep = preparation.prepare(frame, options, source="mem")
    out = workflow.reset_output(tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = workflow.execute(prep, options, out, progress=Progress(quiet=True))
    meta = json.loads((out / "run.json").read_text())
    assert meta["extra"]["created_by"] == CREATED_BY
    assert [p["epoch"] for p in meta["extra"]["curve"]] == [1, 2, 3]
    assert meta["classes"] == ["a", "b", "c"] and meta["id_type"] == "str"
    assert sorted(result.metrics["id"]) == sorted(frame["key"])
    text = workflow.summarize(result, top=3)
    assert "Regions:" in text and "epoch  train" in text
    heldout = pd.read_parquet(out / "heldout.parquet")
    # 60 rows: a small data set gets 4 side models (folds)
    assert len(heldout) == 3 * 60 and set(heldout["fold"]) == {0, 1, 2, 3}


def test_train_runs_records_the_runs_and_writes_no_outputs(tmp_path):
    frame = _frame(60)
    options = RunOptions(label_column="y", feature_columns="x*", model="linear", epochs=2, seeds=2)
    prep = preparation.prepare(frame, options, source="mem")
    trained = trainer.train_runs(prep, options, tmp_path, extra={"note": 1},
                                 progress=Progress(quiet=True))
    assert trained.run_dirs == [tmp_path / "seed-0", tmp_path / "seed-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed-0", "seed-1"]  # no metrics, map
    assert [len(c) for c in trained.curves] == [2, 2]
    assert set(trained.timings) == {"featurize_s", "search_s", "train_s", "heldout_s"}
    meta = json.loads((tmp_path / "seed-1" / "run.json").read_text())
    assert meta["extra"]["note"] == 1 and "created_by" not in meta["extra"]
    assert meta["extra"]["model"]["name"] == "linear" and len(meta["extra"]["curve"]) == 2


def _metrics_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [0, 1, 2, 3, 4], "label": [0, 1, 2, 0, 1],
        "label_name": ["a", "b", "c", "a", "b"], "suggested_label_name": ["b", "a", "c", "c", "b"],
        "label_error_score": [0.9, 0.2, 0.5, 0.9, 0.1], "confidence": [0.1, 0.6, 0.4, 0.2, 0.9],
        "variability": [0.1, 0.3, 0.2, 0.1, 0.0], "correctness": [0.0, 0.5, 0.5, 0.0, 1.0],
        "region": ["hard", "ambiguous", "hard", "hard", "easy"],
        "is_label_error": [True, False, False, True, False],
        "assessment": ["likely mislabeled", "ambiguous", "hard", "likely mislabeled", "easy"],
        "n_conflicting_duplicates": [0, 0, 0, 0, 1], "reason": ["r0", "", "", "r3", "dup"],
    })


def test_suspects_are_the_flag_tables_flagged_rows_with_the_users_data():
    metrics = _metrics_frame()
    assert flag_table(metrics)["id"].tolist() == [0, 3, 2, 1, 4]  # ambiguous and hard too
    assert flag_table(metrics, flagged_only=True)["id"].tolist() == [0, 3, 4]
    prep = preparation.prepare(_frame(6).iloc[:5], RunOptions(label_column="y", text_column="text"))
    suspects = workflow.build_suspects(metrics, prep, prep.options)
    assert suspects["id"].tolist() == [0, 3, 4]  # score desc, ties by id; the duplicate too
    assert list(suspects.columns) == ["id", "given_label", "suggested_label", "label_error_score",
                                      "confidence", "variability", "region", "reason",
                                      "n_conflicting_duplicates", "text"]
    assert suspects["text"].tolist() == ["text 0", "text 3", "text 4"]
    assert suspects["given_label"].tolist() == ["a", "a", "b"]


def test_summary_lines_show_each_suspects_row():
    prep = preparation.prepare(_frame(6), RunOptions(label_column="y", feature_columns="x1"))
    table = pd.DataFrame({"id": [4, 1], "label_error_score": [0.91, 0.5],
                          "given_label": ["b", "b"], "suggested_label": ["a", "c"]})
    assert _summary.suspect_lines(prep, table, injected={4}) == [
        "  0.91 b -> a [flip]  id=4: x1=4.0", "  0.50 b -> c [    ]  id=1: x1=1.0"]


@pytest.mark.parametrize("old, home", [("RunOptions", "datacarto.workflow"),
                                       ("run_file", "datacarto.workflow"),
                                       ("encode_labels", "datacarto.train.preparation"),
                                       ("SMALL_DATA_EPOCHS", "datacarto.train.trainer"),
                                       ("CREATED_BY", "datacarto.outputs")])
def test_the_old_pipeline_names_still_work_with_a_deprecation_warning(old, home):
    import importlib

    from datacarto.train import pipeline

    with pytest.warns(DeprecationWarning, match=rf"pipeline\.{old} is deprecated; use {home}"):
        value = getattr(pipeline, old)
    assert value is getattr(importlib.import_module(home), old)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pipeline.nope  # noqa: B018


def test_datacarto_train_keeps_the_workflow_names_and_imports_no_workflow():
    import subprocess
    import sys

    code = ("import sys, warnings; warnings.simplefilter('error'); import datacarto.train as t; "
            "assert t.RunOptions and t.prepare and t.MODELS; "
            "assert 'datacarto.workflow' not in sys.modules, 'eager'; "
            "assert 'datacarto.commands._workflow' not in sys.modules, 'eager'")
    subprocess.run([sys.executable, "-c", code], check=True)
    import datacarto.train as train

    with pytest.warns(DeprecationWarning, match=r"datacarto\.train\.run_file is deprecated"):
        assert train.run_file is workflow.run_file
    with pytest.raises(AttributeError):
        train.nope  # noqa: B018


def test_round_robin_and_trim():
    f = pd.DataFrame({"g": ["x", "x", "y", "y", "z"], "v": range(5)})
    assert _summary.round_robin(f, "g", 4)["v"].tolist() == [0, 2, 4, 1]
    assert _summary.round_robin(f.head(0), "g", 3).empty
    assert _summary.trim("abc", 10) == "abc"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_finetune_tiny(tmp_path):
    """1 epoch on 16 texts, max_length 32, --heldout crossfit: the cheapest real fine-tune."""
    pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    pytest.importorskip(featurize.MINILM_PACKAGE)
    torch.set_num_threads(1)
    base = featurize.minilm_model_dir()
    frame = pd.DataFrame({"t": ["great fun", "dull and bad"] * 8, "y": ["pos", "neg"] * 8})
    options = RunOptions(label_column="y", text_column="t", model="finetune", base=str(base),
                         epochs=1, max_length=32, heldout="crossfit", batch_size=8)
    prep = preparation.prepare(frame, options)
    out = workflow.reset_output(tmp_path / "ft")
    result = workflow.execute(prep, options, out, progress=Progress(quiet=True))
    assert len(result.metrics) == 16
    assert load(out).epochs == [1]


def test_feature_patterns_skip_the_label_and_id_columns():
    frame = _frame().drop(columns=["text"]).assign(key=[f"k{i}" for i in range(len(_frame()))])
    prepared = preparation.prepare(frame, RunOptions(label_column="y", id_column="key",
                                                     feature_columns="*"), source="d.csv")
    assert prepared.feature_columns == ["x1", "x2"]
    with pytest.raises(SchemaError, match=r"no column 'y\*' \(feature columns\)"):
        preparation.prepare(frame, RunOptions(label_column="y", feature_columns="y*"),
                            source="d.csv")
