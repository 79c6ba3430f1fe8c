"""``datacarto.cleaning`` (the policy core), ``datacarto clean`` and ``datacarto compare``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import assert_cli_error, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from datacarto.cleaning import POLICIES, CleaningPolicy, plan_cleaning, policy_named
from datacarto.errors import InputError, SchemaError
from datacarto.noise import inject_label_noise
from datacarto.review.decisions import LOG_NAME, REVIEW_DIR, DecisionLog


def _metrics(scores: list[float], flagged: list[bool] | None = None,
             kept: list[str] | None = None) -> pd.DataFrame:
    n = len(scores)
    m = pd.DataFrame({"id": np.arange(n), "label_name": ["a"] * n,
                      "label_error_score": scores, "suggested_label_name": ["b"] * n,
                      "is_label_error": flagged if flagged is not None else [s >= 0.5 for s in scores],
                      "region": ["hard"] * n})
    if kept is not None:
        m["kept_predicting"] = kept
    return m


# ------------------------------------------------------------------------------ the core
def test_fix_relabels_confident_drops_other_flagged_keeps_rest() -> None:
    m = _metrics([0.99, 0.85, 0.6, 0.4], kept=["b", "c", "b", ""])
    plan = plan_cleaning(m, policy_named("fix", relabel_above=0.8))
    assert plan.rows["action"].tolist() == ["relabel", "drop", "drop", "keep"]
    assert plan.rows["new_label"].tolist() == ["b", None, None, "a"]
    assert plan.counts() == {"relabel": 1, "drop": 2, "keep": 1}


def test_each_named_policy() -> None:
    m = _metrics([0.99, 0.9, 0.6, 0.3], kept=["b", "b", "b", "b"])
    actions = {name: plan_cleaning(m, name).rows["action"].tolist() for name in POLICIES}
    assert actions["relabel"].count("drop") == 0 and actions["relabel"][0] == "relabel"
    assert actions["drop"] == ["drop", "drop", "drop", "keep"]
    assert actions["cautious"][0] == "relabel" and actions["cautious"][2] == "keep"
    assert actions["fix"][-1] == "keep"


def test_hard_and_ambiguous_rows_are_kept_unless_named() -> None:
    m = _metrics([0.1, 0.2], flagged=[False, False])
    m["region"] = ["hard", "ambiguous"]
    assert plan_cleaning(m).counts()["keep"] == 2
    plan = plan_cleaning(m, policy_named(drop_regions=("hard",)))
    assert plan.rows["action"].tolist() == ["drop", "keep"]


def test_review_decisions_win() -> None:
    m = _metrics([0.99, 0.99, 0.1])
    decisions = {"0": {"id": 0, "action": "keep", "new_label": "a"},
                 "2": {"id": 2, "action": "relabel", "new_label": "c"}}
    plan = plan_cleaning(m, "fix", decisions)
    assert plan.rows["action"].tolist() == ["keep", "relabel", "relabel"]
    assert plan.rows["new_label"].tolist() == ["a", "b", "c"]
    assert plan.rows["source"].tolist() == ["review", "policy", "review"]
    exported = plan.decisions(time="t")
    assert exported["0"]["action"] == "keep" and exported["2"]["new_label"] == "c"
    assert exported["1"] == {"id": 1, "action": "accept", "old_label": "a", "new_label": "b",
                             "time": "t", "source": "datacarto clean --policy fix"}


@pytest.mark.parametrize("kwargs, match", [
    ({"relabel_above": 1.5}, r"--relabel-above must be a label_error_score in \[0, 1\]; got 1\.5"),
    ({"drop_above": -0.1}, r"--drop-above must be .* got -0\.1"),
], ids=["relabel-high", "drop-negative"])
def test_threshold_out_of_range(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        policy_named("fix", **kwargs)


def test_bad_policy_inputs() -> None:
    with pytest.raises(InputError, match=r"unknown cleaning policy 'tidy'; choose from fix"):
        policy_named("tidy")
    with pytest.raises(InputError, match=r"unknown region 'easyish'"):
        CleaningPolicy("x", 0.5, None, drop_regions=("easyish",))
    with pytest.raises(SchemaError, match=r"no column\(s\) is_label_error"):
        plan_cleaning(_metrics([0.5]).drop(columns="is_label_error"))
    with pytest.raises(SchemaError, match=r"decision for id 9: no such id in the run"):
        plan_cleaning(_metrics([0.5]), "fix", {"9": {"id": 9, "action": "drop", "new_label": None}})


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40), st.floats(0, 1), st.floats(0, 1),
       st.floats(0, 1))
def test_plan_properties(scores: list[float], low: float, high: float, drop: float) -> None:
    low, high = min(low, high), max(low, high)
    m = _metrics(scores)
    strict = plan_cleaning(m, CleaningPolicy("s", high, drop)).rows
    loose = plan_cleaning(m, CleaningPolicy("l", low, drop)).rows
    # a higher relabel threshold relabels a subset; actions partition the rows
    assert set(strict.index[strict["action"] == "relabel"]) <= set(loose.index[loose["action"] == "relabel"])
    assert strict["action"].isin(["relabel", "drop", "keep"]).all()
    unflagged = ~m["is_label_error"].to_numpy()
    assert (strict["action"].to_numpy()[unflagged] == "keep").all()  # only flags are acted on


# -------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``datacarto run`` on 240 rows of 3 separable blobs with 20 % of the labels flipped."""
    from datacarto.cli import main

    root = tmp_path_factory.mktemp("clean")
    rng = np.random.default_rng(0)
    true = np.repeat(np.arange(3), 80)
    centers = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    x = centers[true] + rng.normal(0, 0.8, size=(len(true), 2))
    noisy, _ = inject_label_noise(true, 0.2, seed=1)
    data = root / "data.csv"
    pd.DataFrame({"x1": np.round(x[:, 0], 4), "x2": np.round(x[:, 1], 4),
                  "label": np.array(["cat", "dog", "eel"])[noisy]}).to_csv(data, index=False)
    run = root / "run"
    assert main(["run", str(data), "--label-column", "label", "--feature-columns", "x1,x2",
                 "--out", str(run), "--quiet"]) == 0
    return run, data


@pytest.fixture()
def fresh(noisy_run: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    run, data = noisy_run
    shutil.copytree(run, tmp_path / "run")
    shutil.copy(data, tmp_path / "data.csv")
    return tmp_path / "run", tmp_path / "data.csv"


def test_dry_run_prints_counts_and_writes_nothing(fresh: tuple[Path, Path], capsys) -> None:  # type: ignore[no-untyped-def]
    run, data = fresh
    before = sorted(p.name for p in data.parent.iterdir())
    code, out, err = run_cli(capsys, "clean", run, "--dry-run")
    assert code == 0, err
    assert "240 rows:" in out and "relabel" in out and "drop" in out and "keep" in out
    for name in ("cat", "dog", "eel"):
        assert name in out  # per-class counts
    assert sorted(p.name for p in data.parent.iterdir()) == before


@pytest.mark.parametrize("policy", list(POLICIES))
def test_each_policy_writes_a_byte_preserving_copy(fresh: tuple[Path, Path], capsys, policy: str) -> None:  # type: ignore[no-untyped-def]
    run, data = fresh
    out = data.parent / "cleaned.csv"
    code, _, err = run_cli(capsys, "clean", run, "-o", out, "--policy", policy)
    assert code == 0, err
    log = pd.read_csv(data.parent / "cleaned.changes.csv", dtype=str)
    original = data.read_bytes().split(b"\n")
    header, rows = original[0], original[1:-1]
    cleaned = out.read_bytes().split(b"\n")
    assert cleaned[0] == header
    dropped = set(log.loc[log["action"] == "drop", "row"].astype(int))
    changed = dict(zip(log.loc[log["action"] == "accept", "row"].astype(int),
                       log.loc[log["action"] == "accept", "new_label"]))
    kept_rows = [i for i in range(len(rows)) if i not in dropped]
    assert len(cleaned) - 2 == len(kept_rows)
    for line, i in zip(cleaned[1:-1], kept_rows):
        if i in changed:  # only the label cell differs
            assert line.rsplit(b",", 1)[0] == rows[i].rsplit(b",", 1)[0]
            assert line.rsplit(b",", 1)[1].decode() == changed[i]
        else:
            assert line == rows[i]
    if policy == "drop":
        assert not changed and dropped
    if policy == "relabel":
        assert not dropped


def test_review_decisions_win_in_the_copy(fresh: tuple[Path, Path], capsys) -> None:  # type: ignore[no-untyped-def]
    run, data = fresh
    metrics = pd.read_parquet(run / "metrics.parquet")
    target = metrics.loc[metrics["is_label_error"]].iloc[0]
    DecisionLog(run / REVIEW_DIR / LOG_NAME).append(
        id=int(target["id"]), old_label=str(target["label_name"]), action="keep",
        new_label=str(target["label_name"]))
    out = data.parent / "cleaned.csv"
    assert run_cli(capsys, "clean", run, "-o", out, "--policy", "drop")[0] == 0
    log = pd.read_csv(data.parent / "cleaned.changes.csv", dtype=str)
    mine = log[log["id"] == str(int(target["id"]))]
    assert mine["action"].tolist() == ["keep"]
    assert (log.loc[log["id"] != str(int(target["id"])), "action"] == "drop").all()


def test_clean_bad_inputs(fresh: tuple[Path, Path], capsys) -> None:  # type: ignore[no-untyped-def]
    run, data = fresh
    out = data.parent / "cleaned.csv"
    assert_cli_error(capsys, ["clean", run, "-o", out, "--relabel-above", "1.5"],
                     r"--relabel-above must be a label_error_score in \[0, 1\]; got 1\.5",
                     absent=[out])
    assert_cli_error(capsys, ["clean", run], r"give -o FILE for the cleaned copy, or --dry-run")
    assert run_cli(capsys, "clean", run, "-o", out, "--policy", "drop")[0] == 0
    # the cleaned file lost rows: its row-number ids no longer match the run
    again = data.parent / "again.csv"
    assert_cli_error(capsys, ["clean", run, "--data", out, "-o", again], r"cleaned\.csv",
                     absent=[again])
    assert_cli_error(capsys, ["clean", run, "--data", data, "-o", data], r"data\.csv",
                     absent=[data.parent / "data.changes.csv"])


def test_compare_retrains_and_shows_both(fresh: tuple[Path, Path], capsys) -> None:  # type: ignore[no-untyped-def]
    run, data = fresh
    cleaned = data.parent / "cleaned.csv"
    assert run_cli(capsys, "clean", run, "-o", cleaned)[0] == 0
    after = data.parent / "after"
    code, out, err = run_cli(capsys, "compare", run, after, "--data", cleaned)
    assert code == 0, err
    assert "held-out accuracy" in out and "flagged" in out and "rows before" in out
    doc = json.loads((after / "compare.json").read_text())
    assert doc["overview"]["before"]["rows"] == 240
    dropped = int((pd.read_csv(data.parent / "cleaned.changes.csv")["action"] == "drop").sum())
    assert doc["overview"]["after"]["rows"] == 240 - dropped
    assert (after / "compare.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((after / "summary.json").read_text())
    assert summary["model"] == json.loads((run / "summary.json").read_text())["model"]
    # an existing AFTER run compares without training again
    assert run_cli(capsys, "compare", run, after)[0] == 0


def test_compare_refuses_different_data(fresh: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run, data = fresh
    other = tmp_path / "other.csv"
    frame = pd.read_csv(data).rename(columns={"x2": "y"})
    frame.to_csv(other, index=False)
    other_run = tmp_path / "other-run"
    assert run_cli(capsys, "run", other, "--label-column", "label", "--feature-columns", "x1,y",
                   "--out", other_run, "--quiet")[0] == 0
    assert_cli_error(capsys, ["compare", run, other_run], r"the runs read different columns",
                     absent=[other_run / "compare.png"])
    assert_cli_error(capsys, ["compare", run, tmp_path / "nothing"], r"is not a run")


def test_compare_refuses_a_file_of_other_rows_before_training(fresh: tuple[Path, Path], capsys) -> None:  # type: ignore[no-untyped-def]
    run, data = fresh
    cleaned = data.parent / "cleaned.csv"
    assert run_cli(capsys, "clean", run, "-o", cleaned, "--policy", "drop")[0] == 0
    frame = pd.read_csv(cleaned)
    pd.concat([frame, frame.head(3)]).to_csv(cleaned, index=False)  # rows the cleaning never wrote
    after = data.parent / "after"
    assert_cli_error(capsys, ["compare", run, after, "--data", cleaned],
                     r"the after data has \d+ rows, expected \d+ .* less the \d+ the cleaning dropped",
                     absent=[after])
