"""Why is it flagged? Per-suspect evidence: anchors, properties, store, CLI, report, review."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import datacarto
from datacarto import evidence as ev
from datacarto.cli import main
from datacarto.errors import InputError

from builders import run_cli


# ------------------------------------------------------------------ (a) persistent prediction
def test_persistent_prediction_anchor() -> None:
    pred = [[2, 2, 0, 1],   # given 0: 2 twice, 1 once -> 2, 2 epochs
            [0, 0, 0, 0],   # always the given label -> -1, 0
            [1, 2, 2, 1],   # given 0: tie 1 vs 2 (2 each) -> the lower class, 1
            [3, 1, 3, 3]]   # given 1: 3 three times
    cls, n = ev.persistent_prediction(pred, [0, 0, 0, 1])
    assert cls.tolist() == [2, -1, 1, 3] and n.tolist() == [2, 0, 2, 3]
    cls, n = ev.persistent_prediction(np.zeros((2, 0), dtype=int), [0, 1])
    assert cls.tolist() == [-1, -1] and n.tolist() == [0, 0]
    with pytest.raises(InputError, match="pred must be"):
        ev.persistent_prediction([1, 2], [0, 0])


@st.composite
def preds_and_labels(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 12))
    e = draw(st.integers(1, 8))
    k = draw(st.integers(2, 5))
    pred = draw(hnp.arrays(np.int32, (n, e), elements=st.integers(0, k - 1)))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return pred, labels


@settings(max_examples=60, deadline=None)
@given(preds_and_labels(), st.randoms(use_true_random=False))
def test_persistent_prediction_properties(data, rnd) -> None:
    pred, labels = data
    cls, n = ev.persistent_prediction(pred, labels)
    e = pred.shape[1]
    for i in range(len(labels)):  # brute force
        counts = {c: int((pred[i] == c).sum()) for c in set(pred[i].tolist()) if c != labels[i]}
        if counts:
            best = max(counts.values())
            assert n[i] == best and cls[i] == min(c for c, v in counts.items() if v == best)
        else:
            assert cls[i] == -1 and n[i] == 0
    assert ((n >= 0) & (n <= e)).all() and (cls != labels).all()
    rows, cols = list(range(len(labels))), list(range(e))
    rnd.shuffle(rows)
    rnd.shuffle(cols)
    cls2, n2 = ev.persistent_prediction(pred[rows][:, cols], labels[rows])
    assert cls2.tolist() == cls[rows].tolist() and n2.tolist() == n[rows].tolist()


# ------------------------------------------------------------------------ (b) held-out
def test_heldout_gold_probability_anchor() -> None:
    z = np.array([[[0.0, 0.0], [2.0, 0.0]],            # epoch 1: p = 0.5 ; softmax(2, 0)[0]
                  [[0.0, np.log(3.0)], [0.0, 0.0]]])   # epoch 2: p(1) = 3/4 ; 0.5
    p = ev.heldout_gold_probability(z, [1, 0])
    s = 1.0 / (1.0 + np.exp(-2.0))
    assert np.allclose(p, [(0.5 + 0.75) / 2, (s + 0.5) / 2])
    assert np.allclose(ev.heldout_gold_probability(z, [1, 0], keep=[False, True]), [0.75, 0.5])
    z[0, 1, 0] = np.nan
    out = ev.heldout_gold_probability(z, [1, 0])
    assert np.isnan(out[1]) and np.isfinite(out[0])
    with pytest.raises(InputError, match="at least one True"):
        ev.heldout_gold_probability(z, [1, 0], keep=[False, False])
    with pytest.raises(InputError, match="labels must be in"):
        ev.heldout_gold_probability(z, [2, 0])


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4), st.integers(1, 10), st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_heldout_gold_probability_properties(e, n, k, seed) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 4, (e, n, k)).astype(np.float32)
    y = rng.integers(0, k, n)
    p = ev.heldout_gold_probability(z, y)
    assert ((p >= 0) & (p <= 1)).all()
    # a per-row shift of the logits changes nothing; nor does the order of epochs or rows
    shifted = z + rng.normal(0, 10, (e, n, 1)).astype(np.float32)
    assert np.allclose(ev.heldout_gold_probability(shifted, y), p, atol=1e-4)
    assert np.allclose(ev.heldout_gold_probability(z[::-1], y), p)
    perm = rng.permutation(n)
    assert np.allclose(ev.heldout_gold_probability(z[:, perm], y[perm]), p[perm])


def test_window_mask_and_heldout_for_run(tmp_path: Path) -> None:
    assert ev.window_mask([1, 2, 3], None).all()
    assert ev.window_mask([1, 2, 3], ":2").tolist() == [True, True, False]
    assert ev.heldout_for_run(tmp_path, [0], [0]) is None   # no heldout.parquet
    from datacarto import store

    logits = np.zeros((2, 3, 2), dtype=np.float32)
    logits[0, :, 1] = np.log(3.0)                           # epoch 1: p(1) = 0.75
    store.write_heldout(tmp_path / store.HELDOUT_FILE, np.array([5, 6, 7]), np.array([0, 1, 0]),
                        logits)
    out = ev.heldout_for_run(tmp_path, [7, 5, 9], [1, 1, 0], window="1:1")
    assert np.allclose(out[:2], [0.75, 0.75]) and np.isnan(out[2])   # id 9 is not in the file
    assert np.allclose(ev.heldout_for_run(tmp_path, [5], [1]), [(0.75 + 0.5) / 2])


# ---------------------------------------------------------------------- (c) neighbours
def test_nearest_neighbours_and_agreement_anchor() -> None:
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.3], [0.0, 1.0], [0.1, 0.9], [0.0, 0.0]])
    y = np.array([0, 0, 1, 1, 1, 0])
    nb = ev.nearest_neighbours(X, 2)
    # cos(0,1) = .9939, cos(0,2) = .9363, cos(1,2) = .9694, cos(3,4) = .9939, cos(2,4) = .4520
    assert nb.index.tolist() == [[1, 2], [0, 2], [1, 0], [4, 2], [3, 2], [-1, -1]]
    assert np.allclose(nb.similarity[2], [0.9694, 0.9363], atol=1e-4)
    assert np.isnan(nb.similarity[5]).all()                # an all-zero row has no neighbours
    a, m = ev.neighbour_agreement(X, y, k=2)
    assert a[:5].tolist() == [0.5, 0.5, 0.0, 1.0, 1.0] and np.isnan(a[5])
    assert m.tolist() == [0, 0, 0, 1, 1, -1]                 # ties to the lower class
    a1, m1 = ev.neighbour_agreement([[1.0, 2.0]], [0])
    assert np.isnan(a1).all() and m1.tolist() == [-1]
    with pytest.raises(InputError, match="2-D numeric"):
        ev.neighbour_agreement(np.array(["a", "b"]), [0, 1])
    with pytest.raises(InputError, match="NaN"):
        ev.neighbour_agreement([[np.nan, 1.0], [1.0, 1.0]], [0, 1])


def test_neighbours_sparse_equals_dense_and_projection_reranks_exactly() -> None:
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(3)
    dense = rng.random((60, 40)) * (rng.random((60, 40)) < 0.2)
    y = rng.integers(0, 3, 60)
    X = sp.csr_matrix(dense)
    a_dense, m_dense = ev.neighbour_agreement(dense, y, k=5)
    a_sparse, m_sparse = ev.neighbour_agreement(X, y, k=5)
    assert np.allclose(a_dense, a_sparse, equal_nan=True) and (m_dense == m_sparse).all()
    # 40 > max_dims = 8: a projected search, then candidates re-ranked by their exact cosine
    nb = ev.nearest_neighbours(X, 3, max_dims=8, rerank=59)
    exact = ev.nearest_neighbours(dense, 3)
    assert np.allclose(nb.similarity, exact.similarity, equal_nan=True, atol=1e-6)
    assert (nb.index == exact.index).mean() > 0.95           # up to exact ties


def test_inverted_file_search_matches_exhaustive_search() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 16))
    X = centres[rng.integers(0, 12, 1500)] + rng.normal(scale=0.4, size=(1500, 16))
    exact = ev.nearest_neighbours(X, 10)
    approx = ev.nearest_neighbours(X, 10, exact_rows=100)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx.index, exact.index)])
    assert recall > 0.97
    assert (approx.index != np.arange(1500)[:, None]).all()   # never its own neighbour


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 30), st.integers(3, 6), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_neighbour_agreement_properties(n, d, k, seed) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, 3, n)
    a, m = ev.neighbour_agreement(X, y, k=k)
    assert ((a >= 0) & (a <= 1)).all() and np.isin(m, [0, 1, 2]).all()
    # agreement is a multiple of 1/min(k, n-1)
    kk = min(k, n - 1)
    assert np.allclose(np.round(a * kk), a * kk)
    # cosine: positive row scales change nothing; permuting rows permutes the result
    a2, m2 = ev.neighbour_agreement(X * rng.uniform(0.1, 10, (n, 1)), y, k=k)
    perm = rng.permutation(n)
    a3, m3 = ev.neighbour_agreement(X[perm], y[perm], k=k)
    assert np.allclose(a2, a) and (m2 == m).all()
    assert np.allclose(a3, a[perm]) and (m3 == m[perm]).all()


# ---------------------------------------------------------------------- (d) duplicates
def test_conflicting_duplicates_by_text() -> None:
    texts = ["Good  film", "good film", "GOOD FILM\t", "bad", "bad", "", "  ", "other"]
    labels = [0, 1, 0, 1, 1, 0, 1, 0]
    d = ev.conflicting_duplicates(labels, [f"r{i}" for i in range(8)], texts=texts)
    assert d.ids.tolist() == ["r1", "r0;r2", "r1", "", "", "", "", ""]
    assert d.count.tolist() == [1, 2, 1, 0, 0, 0, 0, 0]      # same labels and empty texts: none
    assert d.kind.tolist() == ["exact", "exact", "exact", "", "", "", "", ""]
    assert ev.normalize_text(" A\n b ") == "a b"


def test_conflicting_duplicates_near_threshold_features_and_cap() -> None:
    c96, c94 = np.arccos(0.96), np.arccos(0.94)
    X = np.array([[1.0, 0.0], [np.cos(c96), np.sin(c96)], [np.cos(-c94), np.sin(-c94)],
                  [0.0, 5.0], [0.0, 5.0]])
    d = ev.conflicting_duplicates([0, 1, 1, 0, 1], [10, 11, 12, 13, 14], X=X)
    # 10-11: cosine 0.96 >= 0.95 (near); 10-12: 0.94 (not); 13-14: identical rows (exact)
    assert d.ids.tolist() == ["11", "10", "", "14", "13"]
    assert d.kind.tolist() == ["near", "near", "", "exact", "exact"]
    assert ev.NEAR_DUPLICATE == 0.95
    # many copies: at most MAX_LISTED ids are listed, all are counted
    n = ev.MAX_LISTED + 6
    big = ev.conflicting_duplicates([0] + [1] * (n - 1), list(range(n)), texts=["same"] * n)
    assert big.count[0] == n - 1 and len(big.ids[0].split(";")) == ev.MAX_LISTED
    assert big.ids[1] == "0" and (big.count[1:] == 1).all()


def test_conflicting_duplicates_exact_and_near_together() -> None:
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.99, 0.05], [0.0, 1.0]])
    d = ev.conflicting_duplicates([0, 1, 1, 0], ["a", "b", "c", "d"], texts=["x", "x", "y", "z"],
                                  X=X)
    assert d.ids[0] == "b;c" and d.kind[0] == "exact+near" and d.count[0] == 2
    assert d.kind[2] == "near" and d.ids[2] == "a"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["a", "A ", "b", "c", ""]), min_size=1, max_size=12),
       st.integers(0, 2**32 - 1))
def test_conflicting_duplicates_are_symmetric(texts, seed) -> None:
    y = np.random.default_rng(seed).integers(0, 2, len(texts))
    d = ev.conflicting_duplicates(y, list(range(len(texts))), texts=texts)
    pairs = {(i, int(j)) for i, s in enumerate(d.ids) for j in s.split(";") if s}
    assert pairs == {(j, i) for i, j in pairs}
    assert all(y[i] != y[j] for i, j in pairs)
    assert (d.count == [len(s.split(";")) if s else 0 for s in d.ids]).all()


# --------------------------------------------------------------------- frame and store
def frame_with_evidence() -> pd.DataFrame:
    ev_frame = ev.compute_evidence(
        [3, 1, 2], [0, 1, 1], ["neg", "pos"], pred=[[1, 1], [1, 1], [0, 1]],
        heldout_prob=[0.1, 0.9, np.nan], texts=["same", "other", "Same"],
        features=np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.01]]),
        is_label_error=[True, False, False], label_error_score=[0.8, 0.1, 0.3])
    return ev_frame


def test_compute_evidence_columns_and_reasons() -> None:
    f = frame_with_evidence()
    assert list(f.columns) == ["id", *ev.COLUMNS]
    assert f["kept_predicting"].tolist()[0] == "pos"
    assert f["kept_predicting_epochs"].tolist() == [2, 0, 1]
    assert f["epochs_recorded"].tolist() == [2, 2, 2]
    assert f["neighbour_label"].tolist() == ["pos", "neg", "neg"]
    assert f["conflicting_duplicates"].tolist() == ["2", "", "3"]
    assert f["reason"].tolist() == [
        "likely mislabeled (label-error score 0.80); exact duplicate of id 2 (pos)", "",
        "exact duplicate of id 3 (neg)"]
    # tokens (finetune) are not features: no neighbours, duplicates by text only
    g = ev.compute_evidence([0, 1], [0, 1], ["a", "b"], features=object(), texts=["x", "x"])
    assert g["neighbour_agreement"].isna().all()
    assert g["n_conflicting_duplicates"].tolist() == [1, 1]
    assert g["epochs_recorded"].tolist() == [0, 0] and g["heldout_given_prob"].isna().all()


def test_describe_evidence() -> None:
    rec = {"label_name": "pos", "kept_predicting": "neg", "kept_predicting_epochs": 5,
           "epochs_recorded": 6, "heldout_given_prob": 0.08, "neighbour_agreement": 0.2,
           "neighbour_label": "neg"}
    assert ev.describe_evidence(rec) == ("predicted neg in 5 of 6 epochs; held-out p(pos) 0.08; "
                                         "20% of nearest neighbours labelled pos (most: neg)")
    rec.update(kept_predicting=np.nan, heldout_given_prob=np.nan, neighbour_label="pos",
               neighbour_agreement=1.0)
    assert ev.describe_evidence(rec) == ("predicted pos in all 6 epochs; 100% of nearest "
                                         "neighbours labelled pos")
    assert ev.describe_evidence({}) == ""


def test_write_read_attach(tmp_path: Path) -> None:
    assert ev.read_evidence(tmp_path) is None
    f = frame_with_evidence()
    path = ev.write_evidence(tmp_path, f)
    assert path == tmp_path / "evidence.parquet" and [p.name for p in tmp_path.iterdir()] == [
        "evidence.parquet"]                                     # no temporary file left behind
    back = ev.read_evidence(tmp_path)
    pd.testing.assert_frame_equal(back, f, check_dtype=False)
    with pytest.raises(InputError, match="lacks column"):
        ev.write_evidence(tmp_path, f.drop(columns="reason"))
    metrics = pd.DataFrame({"id": [1, 2, 3, 4], "label_name": ["pos", "pos", "neg", "neg"],
                            "is_label_error": [True, False, False, False],
                            "label_error_score": [0.9, 0.3, 0.2, 0.1]})
    metrics.attrs["epochs"] = [1, 2]
    assert ev.attach_evidence(metrics, None) is metrics
    joined = ev.attach_evidence(metrics, back)
    assert joined.attrs["epochs"] == [1, 2]
    assert joined["conflicting_duplicates"].tolist() == ["", "3", "2", ""]   # id 4: not in it
    # reason follows the frame's own flags (here id 1 flagged, id 3 not)
    assert joined["reason"].tolist() == ["likely mislabeled (label-error score 0.90)",
                                         "exact duplicate of id 3 (neg)",
                                         "exact duplicate of id 2 (pos)", ""]
    assert np.isnan(joined["heldout_given_prob"].iloc[3])


# ------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("sklearn")
    root = tmp_path_factory.mktemp("evidence")
    rng = np.random.default_rng(0)
    words = {"positive": "good great lovely fun superb", "negative": "bad awful dull boring poor"}
    labels = np.array(list(words))[np.arange(80) % 2]
    texts = [" ".join(rng.choice(words[y].split(), 5)) + f" w{i}" for i, y in enumerate(labels)]
    texts[40] = "An utterly  ORIGINAL <b>sentence</b>"     # the same text twice, opposite labels
    texts[41] = "an utterly original <b>sentence</b>"
    labels[40], labels[41] = "positive", "negative"
    data = root / "reviews.csv"
    pd.DataFrame({"review": texts, "sentiment": labels}).to_csv(data, index=False)
    out = root / "run"
    code = main(["run", str(data), "--label-column", "sentiment", "--text-column", "review",
                 "--out", str(out), "--epochs", "3", "--model", "linear", "--quiet"])
    assert code == 0
    return out, data


def test_run_writes_evidence_and_suspects(text_run) -> None:
    out, _ = text_run
    evidence = pd.read_parquet(out / "evidence.parquet")
    assert len(evidence) == 80 and list(evidence.columns) == ["id", *ev.COLUMNS]
    assert set(evidence["epochs_recorded"]) == {3}
    assert evidence["heldout_given_prob"].between(0, 1).all()
    assert evidence["neighbour_agreement"].between(0, 1).all()
    suspects = pd.read_csv(out / "suspects.csv", dtype={"conflicting_duplicates": str})
    pair = suspects.set_index("id").loc[[40, 41]]
    assert pair["conflicting_duplicates"].tolist() == ["41", "40"]
    dup = r"exact duplicate of id 4[01] \((?:negative|positive)\)"
    assert pair["reason"].str.contains(dup).all()
    assert list(suspects.columns[:8]) == ["id", "given_label", "suggested_label",
                                          "label_error_score", "confidence", "variability",
                                          "region", "reason"]
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert set(ev.COLUMNS) <= set(metrics.columns)


def test_flag_and_metrics_show_evidence(text_run, capsys, tmp_path: Path) -> None:
    out, _ = text_run
    code, stdout, _ = run_cli(capsys, "flag", out, "-o", tmp_path / "flags.csv")
    assert code == 0
    assert "with a duplicate labelled differently" in stdout and "Why" in stdout
    assert re.search(r"id=40: .*exact duplicate of id 41 \(negative\)", stdout)
    assert re.search(r"id=41: .*exact duplicate of id 40 \(positive\) \| predicted", stdout)
    flags = pd.read_csv(tmp_path / "flags.csv")
    assert {40, 41} <= set(flags["id"]) and "heldout_given_prob" in flags.columns
    code, stdout, _ = run_cli(capsys, "metrics", out, "-o", tmp_path / "m.parquet")
    assert code == 0 and "with a duplicate labelled differently (also suspects): 2" in stdout
    m = pd.read_parquet(tmp_path / "m.parquet")
    assert m.set_index("id").loc[40, "conflicting_duplicates"] == "41"


def test_runs_without_evidence_are_unchanged(tmp_path: Path, capsys) -> None:
    run = tmp_path / "own"
    rng = np.random.default_rng(0)
    with datacarto.Recorder(run, classes=["a", "b"]) as rec:
        for _ in range(2):
            rec.update(np.arange(20), rng.normal(size=(20, 2)), np.arange(20) % 2)
            rec.end_epoch()
    code, stdout, _ = run_cli(capsys, "flag", run)
    assert code == 0 and "Why" not in stdout
    assert "reason" not in pd.read_csv(run / "flags.csv").columns
    code, _, _ = run_cli(capsys, "metrics", run)
    assert code == 0 and "reason" not in pd.read_parquet(run / "metrics.parquet").columns


def test_seeds_tabular_evidence(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    frame = pd.DataFrame({"a": y * 3.0 + rng.normal(size=40), "b": rng.normal(size=40),
                          "cls": np.array(["x", "y"])[y]})
    frame.loc[5, ["a", "b"]] = frame.loc[6, ["a", "b"]].to_numpy()  # same features, labels y / x
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "multi"
    code, _, err = run_cli(capsys, "run", data, "--label-column", "cls", "--feature-columns", "a,b",
                           "--out", out, "--seeds", "2", "--epochs", "2", "--model", "linear",
                           "--quiet")
    assert code == 0, err
    top = pd.read_parquet(out / "evidence.parquet").set_index("id")
    assert set(top["epochs_recorded"]) == {4}                  # 2 seeds x 2 epochs, pooled
    assert top.loc[5, "conflicting_duplicates"] == "6" and top.loc[5, "duplicate_kind"] == "exact"
    for s in (0, 1):
        seed = pd.read_parquet(out / f"seed-{s}" / "evidence.parquet")
        assert set(seed["epochs_recorded"]) == {2}
    assert {5, 6} <= set(pd.read_csv(out / "suspects.csv")["id"])


# ----------------------------------------------------------------------- report, review
def test_report_shows_evidence_escaped(text_run, tmp_path: Path, capsys) -> None:
    pytest.importorskip("plotly")
    out, data = text_run
    code, _, _ = run_cli(capsys, "report", out, "-o", tmp_path / "r.html", "--quiet")
    assert code == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="dc-data">(.*?)</script>', page, re.S)
    points = json.loads(m.group(1))["points"]
    i = points["id"].index("40")
    assert "exact duplicate of id 41 (negative)" in points["reason"][i]
    assert points["evidence"][i].startswith("predicted ")
    reasons = dict(zip(points["id"], points["reason"]))
    assert all((r is None) == (not row_reason) for r, row_reason in
               zip(points["reason"], pd.read_parquet(out / "evidence.parquet")["reason"]))
    assert reasons["41"] and 'data-key="why"' in page and "P.reason" in page
    assert "<b>sentence</b>" not in page                      # the text stays escaped


def test_review_card_shows_evidence(text_run) -> None:
    from datacarto.report.source import load_source, resolve_source
    from datacarto.review.session import ReviewSession

    out, data = text_run
    run = datacarto.load(out)
    from datacarto.commands._common import with_evidence

    metrics = with_evidence(out, run.metrics())
    loaded = load_source(resolve_source(out, run.meta, data=data, text_column="review"),
                         metrics["id"].to_numpy())
    session = ReviewSession(out, metrics, run.classes, loaded)
    queued = {item["id"] for item in session.queue_items()}
    assert {"40", "41"} <= queued                             # duplicates are always suspects
    card = session.example("41")
    assert "exact duplicate of id 40 (positive)" in card["reason"]
    assert card["evidence"].startswith("predicted ") and "held-out p(negative)" in card["evidence"]
    plain = ReviewSession(out, run.metrics(), run.classes, loaded)  # without evidence: as before
    assert "reason" not in plain.example("41")
    static = Path(datacarto.__file__).parent / "review" / "static" / "app.js"
    assert "ex.reason" in static.read_text(encoding="utf-8")  # shown with textContent like the rest
