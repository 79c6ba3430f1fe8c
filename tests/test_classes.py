"""Missing and merged classes: ``missing_class_score``, ``suggest_classes`` and ``datacarto
classes`` on small synthetic runs whose faults are planted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import assert_cli_error, record_arrays, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

import datacarto
from datacarto.classes import ClassEvidence, missing_class_score
from datacarto.classes.proposals import MIN_SIZE, propose
from datacarto.classes.stats import indistinguishability
from datacarto.engine import compute_run_metrics
from datacarto.errors import InputError

EPOCHS = 6
CLASSES = ["A", "B", "C"]


def synthetic(n_clean: int = 240, *, mixed: int = 0, off_topic: int = 0, mislabeled: int = 0,
              split: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Logits (n, E, K) of a model over time and the given labels, with planted groups.

    Clean rows are learned (the gold logit grows each epoch); mislabeled rows are learned as
    their true class (another than the given one); ``mixed`` rows swing between A and B (labels
    A or B at random); ``off_topic`` rows fit no class (labels at random). With ``split``, class
    C's rows are named C or D at random and the model cannot tell the two apart.
    Returns logits, labels and the rows of each group.
    """
    rng = np.random.default_rng(seed)
    k = 4 if split else 3
    true = rng.integers(0, 3, n_clean)
    labels = true.copy()
    if split:
        labels[(true == 2) & (rng.random(n_clean) < 0.5)] = 3
    flip = np.zeros(n_clean, dtype=bool)
    flip[rng.choice(n_clean, mislabeled, replace=False)] = True
    labels[flip] = (true[flip] + 1) % 3
    e = np.arange(1, EPOCHS + 1)
    z = rng.normal(0, 0.3, (n_clean, EPOCHS, k))
    z[np.arange(n_clean), :, true] += e
    if split:
        is_c = true == 2
        z[is_c, :, 3] = z[is_c, :, 2] + rng.normal(0, 0.3, (is_c.sum(), EPOCHS))
    swing = np.where(e % 2 == 0, 0.5, -0.5)
    zm = rng.normal(0, 0.3, (mixed, EPOCHS, k))
    zm[:, :, 0] += 2.0 + swing
    zm[:, :, 1] += 2.0 - swing
    zo = rng.normal(0, 0.3, (off_topic, EPOCHS, k))
    logits = np.concatenate([z, zm, zo]).astype(np.float32)
    all_labels = np.concatenate([labels, rng.integers(0, 2, mixed), rng.integers(0, 3, off_topic)])
    n = len(all_labels)
    groups = {"clean": np.flatnonzero(~flip), "mislabeled": np.flatnonzero(flip),
              "mixed": np.arange(n_clean, n_clean + mixed),
              "off_topic": np.arange(n_clean + mixed, n)}
    return logits, all_labels, groups


def record(tmp_path: Path, name: str, logits: np.ndarray, labels: np.ndarray,
           classes: list[str] | None = None) -> Path:
    path = tmp_path / name
    k = logits.shape[2]
    record_arrays(path, logits, labels, classes=classes or [*CLASSES, "D"][:k])
    return path


def f1(ids: list, truth: np.ndarray) -> float:
    chosen = np.isin(np.arange(max(truth.max(initial=0), max(ids, default=0)) + 1), ids)
    want = np.isin(np.arange(len(chosen)), truth)
    tp = (chosen & want).sum()
    return 0.0 if tp == 0 else 2 * tp / (chosen.sum() + want.sum())


# ------------------------------------------------------------------------ the score
def test_score_separates_missing_class_members_from_mislabeled(tmp_path: Path) -> None:
    logits, labels, groups = synthetic(mixed=30, off_topic=30, mislabeled=24)
    metrics = datacarto.load(record(tmp_path, "run", logits, labels)).metrics()
    score = metrics["missing_class_score"].to_numpy()
    members = np.concatenate([groups["mixed"], groups["off_topic"]])
    # every member of the missing classes above every plainly mislabeled or clean row
    assert score[members].min() > score[groups["mislabeled"]].max()
    assert score[members].min() > score[groups["clean"]].max()
    assert ((score >= 0) & (score <= 1)).all()


def test_score_is_the_same_in_memory_and_streamed(tmp_path: Path) -> None:
    logits, labels, _ = synthetic(mixed=20, off_topic=20, mislabeled=12)
    run = datacarto.load(record(tmp_path, "run", logits, labels))
    whole = datacarto.compute_metrics(run.dynamics())
    streamed = compute_run_metrics(run, chunk_rows=37, workers=2)
    np.testing.assert_array_equal(whole["missing_class_score"].to_numpy(),
                                  streamed["missing_class_score"].to_numpy())


def test_score_is_nan_without_logits(tmp_path: Path) -> None:
    logits, labels, _ = synthetic(n_clean=60)
    path = tmp_path / "run"
    record_arrays(path, logits, labels, classes=CLASSES, max_logit_classes=2)
    assert datacarto.load(path).metrics()["missing_class_score"].isna().all()


def test_score_is_averaged_over_runs(tmp_path: Path) -> None:
    logits, labels, _ = synthetic(n_clean=60)
    run = datacarto.load(record(tmp_path, "run", logits, labels))
    frames = [run.metrics(), run.metrics()]
    out = datacarto.aggregate_runs(frames)
    np.testing.assert_allclose(out["missing_class_score"], frames[0]["missing_class_score"])
    assert (out["missing_class_score_std"] == 0).all()


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 6), st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_score_range_and_class_order(k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k) * 0.5, n)
    h = rng.uniform(0, np.log(k), n)
    s = missing_class_score(p, h)
    assert ((s >= 0) & (s <= 1 + 1e-12)).all()
    # renaming the classes changes nothing
    np.testing.assert_allclose(missing_class_score(p[:, rng.permutation(k)], h), s)
    # a confident prediction is never a missing class, whatever the entropy in training
    np.testing.assert_array_equal(missing_class_score(np.eye(k)[rng.integers(0, k, n)], h), 0)


def test_score_formula() -> None:
    s = missing_class_score([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]], [np.log(2), 0.0, np.log(2)])
    h = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1)) / np.log(2)
    np.testing.assert_allclose(s, [1.0, 0.0, np.sqrt(h)])
    with pytest.raises(InputError, match="mean_entropy must have shape"):
        missing_class_score([[0.5, 0.5]], [0.1, 0.2])
    with pytest.raises(InputError, match="at least 2 classes"):
        missing_class_score([[1.0]], [0.0])


# -------------------------------------------------------------------- proposals
def test_mixed_class_between_two_is_the_first_add(tmp_path: Path) -> None:
    logits, labels, groups = synthetic(mixed=30, mislabeled=12)
    proposals = datacarto.suggest_classes(record(tmp_path, "run", logits, labels))
    adds = [p for p in proposals if p.kind == "add"]
    assert adds[0].where == "between" and adds[0].classes == ["A", "B"]
    assert f1(adds[0].ids, groups["mixed"]) >= 0.9
    assert adds[0].evidence["swinging"] > 0.9  # predicted A in some epochs, B in others
    assert not set(adds[0].ids) & set(groups["mislabeled"].tolist())


def test_off_topic_group_is_apart_from_all(tmp_path: Path) -> None:
    logits, labels, groups = synthetic(off_topic=30, mislabeled=12)
    proposals = datacarto.suggest_classes(record(tmp_path, "run", logits, labels))
    adds = [p for p in proposals if p.kind == "add"]
    assert adds[0].where == "apart"
    assert f1(adds[0].ids, groups["off_topic"]) >= 0.9
    assert adds[0].evidence["mean_top_prob"] < 0.6


def test_split_class_is_the_first_merge_and_adds_nothing(tmp_path: Path) -> None:
    logits, labels, _ = synthetic(split=True)
    proposals = datacarto.suggest_classes(record(tmp_path, "run", logits, labels))
    assert proposals[0].kind == "merge" and sorted(proposals[0].classes) == ["C", "D"]
    assert proposals[0].evidence["indistinguishable"] > 0.85
    # the rows whose label the merge changes: the second class's
    second = CLASSES.index(proposals[0].classes[1]) if proposals[0].classes[1] != "D" else 3
    assert sorted(proposals[0].ids) == np.flatnonzero(labels == second).tolist()
    n = len(labels)
    assert all(p.size <= 0.02 * n for p in proposals if p.kind == "add")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_fault_makes_no_large_add(tmp_path: Path, seed: int) -> None:
    logits, labels, _ = synthetic(n_clean=300, mislabeled=15, seed=seed)
    proposals = datacarto.suggest_classes(record(tmp_path, "run", logits, labels))
    assert all(p.size <= 0.02 * len(labels) for p in proposals if p.kind == "add"), proposals
    assert not [p for p in proposals if p.kind == "merge"]


def test_proposals_from_a_metrics_frame_and_probabilities() -> None:
    rng = np.random.default_rng(0)
    n = 200
    labels = rng.integers(0, 2, n)
    probs = np.eye(2)[labels] * 0.96 + 0.02
    probs[:20] = 0.5  # a group that both classes fit as badly
    metrics = pd.DataFrame({"id": np.arange(n), "label": labels})
    metrics.attrs["classes"] = ["x", "y"]
    proposals = datacarto.suggest_classes(metrics, probs=probs)
    assert proposals[0].kind == "add" and sorted(proposals[0].ids) == list(range(20))
    with pytest.raises(InputError, match="needs probs="):
        datacarto.suggest_classes(metrics)
    with pytest.raises(InputError, match=r"probs must be \(n_rows, n_classes\)"):
        datacarto.suggest_classes(metrics, probs=probs[:5])


def test_one_class_is_refused() -> None:
    with pytest.raises(InputError, match="1 class; class proposals need at least 2"):
        ClassEvidence(ids=np.arange(3), labels=np.zeros(3, int), classes=("a",),
                      probs=np.ones((3, 1)), score=np.zeros(3), mean_entropy=np.zeros(3))


def test_small_groups_are_not_proposed() -> None:
    n = 100
    labels = np.arange(n) % 2
    probs = np.eye(2)[labels] * 0.98 + 0.01
    probs[: MIN_SIZE - 1] = 0.5
    ev = ClassEvidence(ids=np.arange(n), labels=labels, classes=("x", "y"), probs=probs,
                       score=np.full(n, np.nan), mean_entropy=np.full(n, np.nan))
    assert propose(ev) == []


def test_indistinguishability_of_random_halves_is_one() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    labels = rng.integers(0, 3, n)
    probs = np.eye(3)[labels] * 0.9 + 0.1 / 3
    # classes 1 and 2 are one class named twice: the model splits its mass between them
    ones = np.isin(labels, (1, 2))
    probs[ones] = [0.05, 0.475, 0.475]
    d = indistinguishability(probs, labels, 3)
    assert d[1, 2] == pytest.approx(1.0, abs=0.05) and d[0, 1] < 0.2 and d[0, 2] < 0.2


# --------------------------------------------------------------------------- CLI
def test_cli_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, labels, groups = synthetic(mixed=30, off_topic=30, mislabeled=12)
    run = record(tmp_path, "run", logits, labels)
    n = len(labels)
    texts = [f"plain example {i}" for i in range(n)]
    for i in groups["mixed"]:
        texts[i] = f"good but also bad mixed feelings {i}"
    data = tmp_path / "data.csv"
    pd.DataFrame({"id": np.arange(n), "text": texts}).to_csv(data, index=False)
    out = tmp_path / "out" / "classes.json"
    code, stdout, err = run_cli(capsys, "classes", run, "--data", data, "--id-column", "id",
                                "-o", out)
    assert code == 0, err
    assert stdout.startswith("1. add a class ")
    assert "between 'A' and 'B'" in stdout and "apart from all" in stdout
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["classes"] == CLASSES and doc["n_examples"] == n
    first = doc["proposals"][0]
    assert set(first) >= {"kind", "classes", "ids", "size", "strength", "evidence", "examples",
                          "terms", "where"}
    for p in doc["proposals"]:
        assert p["kind"] in ("add", "merge") and p["size"] == len(p["ids"])
        assert all(isinstance(i, int) for i in p["ids"])
    between = next(p for p in doc["proposals"] if p["where"] == "between")
    assert "mixed" in " ".join(between["terms"])
    assert between["examples"][0]["text"].startswith("good but also bad")


def test_cli_without_proposals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, labels, _ = synthetic(n_clean=120)
    run = record(tmp_path, "run", logits, labels)
    code, stdout, _ = run_cli(capsys, "classes", run)
    assert code == 0 and stdout.startswith("no proposal")
    # by default next to the run's other outputs, where the review page looks
    assert json.loads((run / "classes.json").read_text())["proposals"] == []


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, labels, _ = synthetic(n_clean=60)
    run = record(tmp_path, "run", logits, labels)
    assert_cli_error(capsys, ["classes", run, "-o", run / "run.json"], "file of the run")
    assert_cli_error(capsys, ["classes", run, "--max", "-1"], "--max must be >= 0")
    (tmp_path / "started").mkdir()
    assert_cli_error(capsys, ["classes", tmp_path / "started"], "no epoch is recorded yet")
    assert_cli_error(capsys, ["classes", tmp_path / "nothing"], "no such run directory")


# ------------------------------------------------------------------------ report
def test_report_colours_by_missing_class_score(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    import re

    from datacarto.report.html import MISSING_EDGES, build_report

    logits, labels, groups = synthetic(n_clean=60, mixed=10)
    metrics = datacarto.load(record(tmp_path, "run", logits, labels)).metrics()
    page = build_report(metrics, classes=CLASSES)
    assert '<option value="missing">missing-class score</option>' in page
    data = json.loads(re.search(r'id="dc-data">(.*?)</script>', page, re.S).group(1))
    assert data["missing"]["edges"] == list(MISSING_EDGES)
    by_id = dict(zip(data["points"]["id"], data["points"]["mbin"]))
    score = metrics.set_index(metrics["id"].astype(str))["missing_class_score"]
    for i, b in by_id.items():
        assert MISSING_EDGES[b] <= score[i] <= MISSING_EDGES[b + 1]
    assert max(by_id[str(i)] for i in groups["mixed"]) == len(MISSING_EDGES) - 2
    # without full logits there is no score: the page offers no such colouring
    no_score = metrics.assign(missing_class_score=np.nan)
    assert json.loads(re.search(r'id="dc-data">(.*?)</script>', build_report(
        no_score, classes=CLASSES), re.S).group(1))["missing"] is None
