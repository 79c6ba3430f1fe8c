"""Cleaning benchmark: does the cleaned data train a better model?

Regenerates ``benchmarks/results/cleaning.md`` and ``cleaning.json``::

    python benchmarks/cleaning.py                  # 6 data sets x 2 noise kinds x 3 rates x 3 seeds (5-13 min)
    python benchmarks/cleaning.py --quick          # 2 small data sets, one setting, one seed (< 1 min)
    python benchmarks/cleaning.py --datasets digits --rates 0.2 --out-dir /tmp/cleaning

For each data set (``benchmarks/defaults_data.py``), noise kind (uniform, pair:
``datacarto.noise.inject_label_noise`` through ``defaults.make_labels``), rate and seed:

1. a stratified 75/25 split; the 25 % **test split keeps its clean labels**;
2. noise is injected into the training labels only;
3. the same **downstream model** is trained on five versions of the training split and scored
   on the test split: logistic regression (C=1) on TF-IDF word 1-2-grams + char 2-5-grams for
   text, on standardised features otherwise (``defaults.baseline_features``):
   * ``noisy``: the noisy labels as they are;
   * ``datacarto <policy>``: ``datacarto run`` on the noisy split (one training run, the
     built-in model chosen by ``--model auto``), then :func:`datacarto.cleaning.plan_cleaning`
     with each named policy, and a grid of thresholds (the table that chose the defaults);
   * ``cleanlab drop``: 5-fold out-of-fold probabilities of the downstream model itself,
     ``cleanlab.filter.find_label_issues``, the flagged rows dropped -- what
     ``cleanlab.classification.CleanLearning`` does with this model (it is not run twice);
   * ``oracle``: the clean training labels.
4. the labels the cleaning got right (a wrong label restored, or its row dropped) and made
   wrong (a right label changed, or a wrong one changed to another wrong class), the right
   labels dropped, and the wrong labels left before and after.

Accuracy is the mean +- std over the seeds (each seed: its own split, noise and runs).
Everything runs with one BLAS/OpenMP thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import defaults as dfl  # noqa: E402  (noise injection and baseline features: one place)
import defaults_data as dd  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = {"digits": dd.digits, "breast-cancer": dd.breast_cancer, "overlap": dd.overlap,
            "clusters": dd.clusters, "wine": dd.wine,
            "rotten-tomatoes": lambda: dd.rotten_tomatoes(1000)}
QUICK = {"wine": dd.wine, "breast-cancer": dd.breast_cancer}
KINDS = ("uniform", "pair")
RATES = (0.1, 0.2, 0.4)
SEEDS = 3
TEST_SHARE = 0.25
FOLDS = 5
#: A tolerance for "at least as good": about one standard error of a 400-row test accuracy.
TIE = 0.005
#: The threshold grid (relabel_above, drop_above); None = never. The named policies are added.
GRID_RELABEL = (None, 0.0, 0.5, 0.8, 0.95)
GRID_DROP = (None, 0.0, 0.8)


# ------------------------------------------------------------------------------ the pieces
def downstream_accuracy(X_train: Any, y_train: np.ndarray, X_test: Any, y_test: np.ndarray,
                        text: bool) -> float:
    """Logistic regression (C=1) trained on the given rows, accuracy on the clean test split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = LogisticRegression(C=1.0, solver="newton-cg", max_iter=1000)
    if not text:
        model = make_pipeline(StandardScaler(), model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, y_train)
    return float((model.predict(X_test) == y_test).mean())


def datacarto_metrics(data: dd.BenchData, rows: np.ndarray, given: np.ndarray, classes: list[str],
                      seed: int, workdir: Path) -> pd.DataFrame:
    """``datacarto run`` (in this process, default options) on the noisy training rows."""
    from datacarto.progress import Progress
    from datacarto.workflow import RunOptions, run_file

    frame = data.frame.iloc[rows].reset_index(drop=True).copy()
    frame["id"] = np.arange(len(frame))
    frame["label"] = np.asarray(classes, dtype=object)[given]
    csv = workdir / "train.csv"
    frame.to_csv(csv, index=False)
    flag, value = data.column_flag
    options = RunOptions(label_column="label", seed=seed, quiet=True,
                         text_column=value if flag == "--text-column" else None,
                         feature_columns=value if flag == "--feature-columns" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_file(csv, options, workdir / "run", progress=Progress(quiet=True))
    metrics = pd.read_parquet(result.out / "metrics.parquet")  # with the evidence columns
    return metrics.set_index("id").loc[np.arange(len(frame))].reset_index()


def cleanlab_flags(X: Any, given: np.ndarray, text: bool, seed: int) -> np.ndarray:
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = LogisticRegression(C=1.0, solver="newton-cg", max_iter=1000)
    if not text:
        model = make_pipeline(StandardScaler(), model)
    folds = min(FOLDS, int(np.bincount(given).min())) if len(given) else FOLDS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = cross_val_predict(model, X, given, method="predict_proba",
                                  cv=StratifiedKFold(max(2, folds), shuffle=True, random_state=seed))
        return np.asarray(find_label_issues(given, probs), dtype=bool)


def label_counts(truth: np.ndarray, given: np.ndarray, kept: np.ndarray, new: np.ndarray
                 ) -> dict[str, int]:
    """What a cleaning did to the labels: fixed / broken / dropped, wrong before / after."""
    wrong_before = given != truth
    changed = kept & (new != given)
    return {"fixed": int((changed & wrong_before & (new == truth)).sum()
                         + (~kept & wrong_before).sum()),
            "broken": int((changed & (new != truth)).sum()),
            "dropped_right": int((~kept & ~wrong_before).sum()),
            "wrong_before": int(wrong_before.sum()),
            "wrong_after": int((kept & (new != truth)).sum()),
            "relabelled": int(changed.sum()), "dropped": int((~kept).sum())}


def policies() -> dict[str, Any]:
    """The named policies, then the grid (names ``R/D``: relabel_above / drop_above)."""
    from datacarto.cleaning import POLICIES, CleaningPolicy

    out: dict[str, Any] = {f"datacarto {n}": p for n, p in POLICIES.items()}
    for r in GRID_RELABEL:
        for d in GRID_DROP:
            if r is None and d is None:
                continue
            out[f"grid {_t(r)}/{_t(d)}"] = CleaningPolicy(f"{_t(r)}/{_t(d)}", r, d)
    out["grid 0.8/all, no agreement"] = CleaningPolicy("0.8/all-noagree", 0.8, 0.0,
                                                       needs_agreement=False)
    return out


def _t(x: float | None) -> str:
    return "-" if x is None else ("all" if x == 0.0 else f"{x:g}")


# ------------------------------------------------------------------------------- one setting
def run_setting(data: dd.BenchData, X: Any, y: np.ndarray, classes: list[str], kind: str,
                rate: float, seed: int) -> dict[str, Any]:
    from datacarto.cleaning import plan_cleaning
    from sklearn.model_selection import train_test_split

    text = data.kind == "text"
    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=TEST_SHARE, stratify=y, random_state=seed)
    truth = y[train]
    given, _ = dfl.make_labels(truth, len(classes), kind, rate, f"{data.name}|cleaning|{seed}")
    X_train, X_test, y_test = X[train], X[test], y[test]
    out: dict[str, Any] = {"dataset": data.name, "kind": kind, "rate": rate, "seed": seed,
                           "n_train": int(len(train)), "methods": {}}
    cache: dict[bytes, float] = {}

    def score(kept: np.ndarray, labels: np.ndarray) -> float:
        key = kept.tobytes() + labels.tobytes()
        if key not in cache:
            cache[key] = downstream_accuracy(X_train[kept], labels[kept], X_test, y_test, text)
        return cache[key]

    everyone = np.ones(len(train), dtype=bool)
    out["methods"]["noisy"] = {"accuracy": score(everyone, given),
                               **label_counts(truth, given, everyone, given)}
    out["methods"]["oracle"] = {"accuracy": score(everyone, truth),
                                **label_counts(truth, given, everyone, truth)}
    t0 = time.perf_counter()
    flags = cleanlab_flags(X_train, given, text, seed)
    kept = ~flags
    out["methods"]["cleanlab drop"] = {"accuracy": score(kept, given), "seconds": time.perf_counter() - t0,
                                       **label_counts(truth, given, kept, given)}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="datacarto-cleaning-") as tmp:
        metrics = datacarto_metrics(data, train, given, classes, seed, Path(tmp))
    run_seconds = time.perf_counter() - t0
    out["datacarto_flagged"] = int(metrics["is_label_error"].sum())
    index = {c: k for k, c in enumerate(classes)}
    for name, policy in policies().items():
        plan = plan_cleaning(metrics, policy).rows
        kept = (plan["action"] != "drop").to_numpy()
        new = np.array([index.get(str(v), -1) if v is not None else -1 for v in plan["new_label"]])
        new = np.where(kept, new, given)
        out["methods"][name] = {"accuracy": score(kept, new), "seconds": run_seconds,
                                **label_counts(truth, given, kept, new)}
    return out


def run_dataset(name: str, loader: Any, kinds: list[str], rates: list[float], seeds: int,
                log: Any) -> list[dict[str, Any]]:
    data = loader()
    X = dfl.baseline_features(data)
    y, classes = dfl.encode(data.frame["label"])
    rows = []
    for kind in kinds:
        for rate in rates:
            for seed in range(seeds):
                t0 = time.perf_counter()
                row = run_setting(data, X, y, classes, kind, rate, seed)
                m = row["methods"]
                log(f"{name:16s} {kind:7s} {rate:4.0%} seed {seed}: noisy {m['noisy']['accuracy']:.3f} "
                    f"fix {m['datacarto fix']['accuracy']:.3f} cleanlab "
                    f"{m['cleanlab drop']['accuracy']:.3f} oracle {m['oracle']['accuracy']:.3f} "
                    f"({time.perf_counter() - t0:.1f} s)")
                rows.append(row)
    return rows


# ---------------------------------------------------------------------------------- summary
def without_grid(row: dict[str, Any]) -> dict[str, Any]:
    """A run as kept in the JSON: the grid's figures live in the per-setting means only."""
    return {**row, "methods": {k: v for k, v in row["methods"].items() if not k.startswith("grid")}}


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (dataset, kind, rate): mean / std over seeds of every method's figures."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["kind"], row["rate"]), []).append(row)
    out = []
    for (dataset, kind, rate), members in groups.items():
        methods = {}
        for method in members[0]["methods"]:
            values = [m["methods"][method] for m in members]
            acc = np.array([v["accuracy"] for v in values])
            methods[method] = {"accuracy": float(acc.mean()), "std": float(acc.std()),
                               **{k: float(np.mean([v[k] for v in values]))
                                  for k in ("fixed", "broken", "dropped_right", "wrong_before",
                                            "wrong_after", "relabelled", "dropped")}}
        out.append({"dataset": dataset, "kind": kind, "rate": rate, "seeds": len(members),
                    "methods": methods})
    return out


def goals(settings: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """The three goal lines for one method, over the settings."""
    recovered = worse = as_good = 0
    for s in settings:
        m = s["methods"]
        noisy, oracle, mine = m["noisy"]["accuracy"], m["oracle"]["accuracy"], m[method]["accuracy"]
        lost = oracle - noisy
        recovered += (mine - noisy >= 0.5 * lost) if lost > TIE else (mine >= noisy - TIE)
        worse += m[method]["wrong_after"] > m[method]["wrong_before"]
        as_good += mine >= m["cleanlab drop"]["accuracy"] - TIE
    n = max(1, len(settings))
    return {"recovers_half": recovered / n, "worse_data": worse, "as_good_as_cleanlab": as_good / n,
            "mean_accuracy": float(np.mean([s["methods"][method]["accuracy"] for s in settings])),
            "met": recovered / n >= 0.8 and worse == 0 and as_good / n >= 0.8}


def choose_default(settings: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every datacarto variant ranked: goals met first, then settings recovered, then accuracy."""
    names = [k for k in settings[0]["methods"] if k.startswith(("datacarto", "grid"))]
    scored = [(n, goals(settings, n)) for n in names]
    return sorted(scored, key=lambda t: (-t[1]["met"], -(t[1]["recovers_half"] + t[1]["as_good_as_cleanlab"]),
                                         t[1]["worse_data"], -t[1]["mean_accuracy"]))


def _pm(m: dict[str, Any]) -> str:
    return f"{m['accuracy']:.3f} ± {m['std']:.3f}"


def render(result: dict[str, Any]) -> str:
    settings = result["settings"]
    from datacarto.cleaning import DEFAULT_POLICY, POLICIES

    named = [f"datacarto {n}" for n in POLICIES]
    lines = ["# Cleaning benchmark: does the cleaned data train a better model?", "",
             f"Regenerate with `python benchmarks/cleaning.py` ({result['seconds']:.0f} s here; "
             f"{result['machine']}). Method and measures: the docstring of `benchmarks/cleaning.py`. "
             f"Downstream model: logistic regression (C=1) on TF-IDF (text) or standardised features; "
             f"accuracy on a clean 25 % test split, mean ± std over {result['seeds']} seeds.", "",
             "Policies (`datacarto.cleaning.POLICIES`, `datacarto clean --policy`):", ""]
    lines += [f"* {POLICIES[n.split(' ', 1)[1]].describe()}" for n in named]
    default = f"datacarto {DEFAULT_POLICY}"
    g = goals(settings, default)
    lines += ["", f"## Goals (default policy `{DEFAULT_POLICY}`, {len(settings)} settings)", "",
              "| goal | measured | met |", "|---|---|---|",
              f"| recovers ≥ half the accuracy lost to noise (noisy → oracle) in ≥ 80 % of settings "
              f"| {g['recovers_half']:.0%} | {'yes' if g['recovers_half'] >= 0.8 else 'no'} |",
              f"| never makes the data worse on average (wrong labels after ≤ before, mean over seeds) "
              f"| worse in {g['worse_data']} setting(s) | {'yes' if g['worse_data'] == 0 else 'no'} |",
              f"| at least as good as cleanlab's cleaning (accuracy ≥ cleanlab − {TIE}) in ≥ 80 % of "
              f"settings | {g['as_good_as_cleanlab']:.0%} | {'yes' if g['as_good_as_cleanlab'] >= 0.8 else 'no'} |",
              "", "datacarto reads one training run of its built-in model; cleanlab gets 5-fold "
              "cross-validated probabilities of the downstream model itself (5 trainings).", "",
              "## Accuracy on the clean test split", "",
              "| data set | noise | noisy | " + " | ".join(n.replace("datacarto ", "dc ") for n in named)
              + " | cleanlab drop | oracle |",
              "|---|---|" + "---|" * (len(named) + 3)]
    for s in settings:
        m = s["methods"]
        lines.append(f"| {s['dataset']} | {s['kind']} {s['rate']:.0%} | {_pm(m['noisy'])} | "
                     + " | ".join(_pm(m[n]) for n in named)
                     + f" | {_pm(m['cleanlab drop'])} | {_pm(m['oracle'])} |")
    lines += ["", "## Labels: what each cleaning did (mean over seeds)", "",
              "fixed = wrong labels restored or their rows dropped; broken = right labels changed "
              "(or wrong ones changed to another wrong class); dropped right = right labels "
              "dropped; wrong = wrong labels in the training data before → after.", "",
              "| data set | noise | method | fixed | broken | dropped right | wrong before → after |",
              "|---|---|---|---|---|---|---|"]
    for s in settings:
        for n in [default, "cleanlab drop"]:
            v = s["methods"][n]
            lines.append(f"| {s['dataset']} | {s['kind']} {s['rate']:.0%} | {n} | {v['fixed']:.0f} | "
                         f"{v['broken']:.0f} | {v['dropped_right']:.0f} | "
                         f"{v['wrong_before']:.0f} → {v['wrong_after']:.0f} |")
    ranked = choose_default(settings)
    lines += ["", "## Choosing the default: every policy and threshold pair", "",
              "`R/D`: relabel flagged rows with score ≥ R whose suggestion the model kept "
              "predicting, drop the other flagged rows with score ≥ D (`all`: every flagged row; "
              "`-`: never). Ranked by goals met, then settings recovered + settings at least as "
              "good as cleanlab, then settings with more wrong labels, then mean accuracy.", "",
              "| variant | recovers half | ≥ cleanlab | data worse in | mean accuracy | all goals |",
              "|---|---|---|---|---|---|"]
    for n, v in ranked:
        lines.append(f"| {n} | {v['recovers_half']:.0%} | {v['as_good_as_cleanlab']:.0%} | "
                     f"{v['worse_data']} | {v['mean_accuracy']:.4f} | {'yes' if v['met'] else 'no'} |")
    for n in ("noisy", "cleanlab drop", "oracle"):
        acc = np.mean([s["methods"][n]["accuracy"] for s in settings])
        lines.append(f"| *{n}* | | | | {acc:.4f} | |")
    best = ranked[0][0]
    same = POLICIES[DEFAULT_POLICY]
    lines += ["", f"First in the ranking: `{best}`. The default policy `{DEFAULT_POLICY}` is "
                  f"relabel ≥ {_t(same.relabel_above)}, drop ≥ {_t(same.drop_above)} (grid "
                  f"`{_t(same.relabel_above)}/{_t(same.drop_above)}`), chosen from this table."]
    lines += ["", result.get("conclusion", "")]
    return "\n".join(lines).rstrip() + "\n"


# -------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 small data sets, 20 %% uniform, 1 seed")
    p.add_argument("--datasets", help="comma-separated names (default: all)")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--rates", default=",".join(map(str, RATES)))
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--out-dir", default=str(RESULTS))
    p.add_argument("--conclusion", default="", help="a paragraph appended to the report")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    args = parse_args(argv)
    if args.quick:
        chosen, kinds, rates, seeds = QUICK, ["uniform"], [0.2], 1
    else:
        names = args.datasets.split(",") if args.datasets else list(DATASETS)
        unknown = [n for n in names if n not in DATASETS]
        if unknown:
            raise SystemExit(f"unknown data set(s) {unknown}; choose from {list(DATASETS)}")
        chosen = {n: DATASETS[n] for n in names}
        kinds = args.kinds.split(",")
        rates = [float(r) for r in args.rates.split(",")]
        seeds = args.seeds
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with threadpool_limits(1):
        for name, loader in chosen.items():
            try:
                rows += run_dataset(name, loader, kinds, rates, seeds,
                                    lambda s: print(s, file=sys.stderr, flush=True))
            except dd.Unavailable as err:
                print(f"skipped {name}: {err}", file=sys.stderr)
            # the runs so far, so that an interrupted benchmark still leaves its figures
            (out / "cleaning.partial.json").write_text(json.dumps(rows, default=float), encoding="utf-8")
    (out / "cleaning.partial.json").unlink(missing_ok=True)
    result = {"seconds": time.perf_counter() - t0, "seeds": seeds, "quick": bool(args.quick),
              "machine": f"{platform.machine()}, Python {platform.python_version()}, 1 thread",
              "settings": aggregate(rows), "runs": [without_grid(r) for r in rows],
              "conclusion": args.conclusion}
    (out / "cleaning.json").write_text(json.dumps(result, default=float) + "\n", encoding="utf-8")
    (out / "cleaning.md").write_text(render(result), encoding="utf-8")
    print(f"wrote {out / 'cleaning.md'} and cleaning.json ({result['seconds']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
