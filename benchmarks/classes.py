"""Missing and merged classes: ``missing_class_score`` and ``datacarto classes`` on real data.

Regenerates ``benchmarks/results/classes.md`` and ``classes.json``::

    python benchmarks/classes.py                  # 10 data sets, 27 runs (~6-10 min on 2 cores)
    python benchmarks/classes.py --quick          # 2 small data sets (< 1 min)
    python benchmarks/classes.py --group holdout  # only the held-out data sets
    python benchmarks/classes.py --work-dir /tmp/cls --keep   # keep (and reuse) the runs

For each data set (``benchmarks/defaults_data.py``) three variants of its labels are written to
a CSV and ``datacarto run data.csv --label-column label --text-column text | --feature-columns
... --out RUN`` is run as a subprocess, exactly as a user would type it:

* ``removed`` (data sets of 3 classes or more): one real class is removed, its rows relabelled
  uniformly at random to the remaining classes, and 5 % of the other rows flipped to another
  class at random (plainly mislabeled rows the score must rank low). Measured: the average precision of ``missing_class_score`` against the
  removed rows, against random (AP = the removed share), a margin baseline (``1 - (P(1) -
  P(2))`` of the held-out probabilities) and an entropy baseline (the ``entropy`` column); and
  the precision / recall / F1 of the first ``add`` proposal's ids; how well the score puts
  the removed rows above the flipped ones (AUC, and a figure).
* ``split``: one class is given two names at random (half its rows each). Measured: whether the
  first ``merge`` proposal names the two, and whether cleanlab's
  ``find_overlapping_classes`` (on the same held-out probabilities) ranks that pair first.
* ``clean``: the labels as shipped. Counted: the proposals made (false alarms) and the largest
  ``add`` proposal as a share of the rows.

The data sets are split into a TUNING group (looked at while choosing the thresholds of
``datacarto.classes``) and a HELD-OUT group (never looked at while tuning); the report keeps
them apart. The subprocesses run with one BLAS/OpenMP thread.
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
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import defaults_data as dd  # noqa: E402  (the benchmarks' data loaders)

RESULTS = Path(__file__).resolve().parent / "results"

def iris() -> dd.BenchData:
    """150 irises, 4 measurements, 3 species (versicolor lies between the two others)."""
    from sklearn.datasets import load_iris

    return dd._sklearn_bundle("iris", load_iris)


def gauss4() -> dd.BenchData:
    """4 Gaussian classes, one cluster each, moderately separated (a fresh synthetic table)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=2000, n_features=10, n_informative=6, n_redundant=2,
                               n_classes=4, n_clusters_per_class=1, class_sep=1.2, flip_y=0.0,
                               random_state=7)
    names = [f"f{j}" for j in range(X.shape[1])]
    return dd._tabular("gauss4", X.round(5), np.array([f"g{c}" for c in y]), names,
                       "sklearn make_classification: 4 classes x 1 cluster, 6 informative + "
                       "2 redundant + 2 noise features, class_sep=1.2, random_state=7")


#: name -> (group, removed class or None (two classes: nothing left to relabel to), split
#: class, whether the removed class lies between two others). Chosen before any run:
#: rotten-tomatoes' "neutral", wine's class_1 (the middle of three cultivars), mixed's
#: "downgrade" (between "stay" and "churn"), Fashion-MNIST's "Shirt" (between "T-shirt/top"
#: and "Pullover" / "Coat") and iris' versicolor lie between classes.
#: The held-out group changed twice: mixed and overlap, then Fashion-MNIST, breast-cancer and
#: chinese-reviews were held out in turn; false alarms on their clean labels led to the
#: label-agreement tests of ``datacarto.classes.proposals``, so they count as tuning data since.
#: iris and gauss4 were added as held-out after the last change and never looked at before.
SETTINGS: dict[str, tuple[str, str | None, str, bool]] = {
    "rotten-tomatoes": ("tune", "neutral", "positive", True),
    "wine": ("tune", "class_1", "class_0", True),
    "digits": ("tune", "8", "3", False),
    "clusters": ("tune", "c0", "c2", False),
    "convention": ("tune", "republican-2012", "democrat-2012", False),
    "mixed": ("tune", "downgrade", "stay", True),
    "overlap": ("tune", "a", "b", False),
    "fashion-mnist": ("tune", "Shirt", "Bag", True),
    "breast-cancer": ("tune", None, "benign", False),
    "chinese-reviews": ("tune", None, "positive", False),
    "iris": ("holdout", "versicolor", "setosa", True),
    "gauss4": ("holdout", "g1", "g0", False),
}
LOADERS = {"rotten-tomatoes": dd.rotten_tomatoes, "wine": dd.wine, "digits": dd.digits,
           "clusters": dd.clusters, "convention": dd.convention, "mixed": dd.mixed,
           "overlap": dd.overlap, "fashion-mnist": lambda: dd.fashion_mnist(5000),
           "breast-cancer": dd.breast_cancer, "chinese-reviews": dd.chinese_reviews,
           "iris": iris, "gauss4": gauss4}
QUICK = {"wine": dd.wine, "rotten-tomatoes": lambda: dd.rotten_tomatoes(600)}
#: Share of the other rows whose label is flipped at random in the "removed" variant: plainly
#: mislabeled rows that missing_class_score must rank below the removed class's.
FLIP_SHARE = 0.05
VARIANTS = ("removed", "split", "clean")
#: The name the second half of the split class gets.
TWIN_SUFFIX = "-twin"


def seed_of(*parts: Any) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


def make_variant(frame: pd.DataFrame, variant: str, removed: str, split: str, name: str
                 ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The variant's frame, the rows of interest (removed rows, rows of the split class) and
    the rows whose label was flipped (``removed`` only)."""
    rng = np.random.default_rng(seed_of(name, variant))
    labels = frame["label"].astype(str).to_numpy(dtype=object)
    out = frame.copy()
    if variant == "removed":
        rows = labels == removed
        others = np.array(sorted(set(labels) - {removed}), dtype=object)
        labels = labels.copy()
        labels[rows] = rng.choice(others, size=int(rows.sum()))
        flip = np.flatnonzero(~rows)
        flip = rng.choice(flip, size=int(round(FLIP_SHARE * len(flip))), replace=False)
        for i in flip:  # another remaining class, at random
            labels[i] = rng.choice(others[others != labels[i]])
        flipped = np.isin(np.arange(len(labels)), flip)
    elif variant == "split":
        rows = labels == split
        labels = labels.copy()
        twin = rows & (rng.random(len(labels)) < 0.5)
        labels[twin] = split + TWIN_SUFFIX
    else:
        rows = np.zeros(len(labels), dtype=bool)
    if variant != "removed":
        flipped = np.zeros(len(labels), dtype=bool)
    out["label"] = labels
    return out, rows, flipped


def datacarto_command() -> list[str]:
    beside = Path(sys.executable).parent / "datacarto"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("datacarto")
    return [found] if found else [sys.executable, "-m", "datacarto"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def train(data: dd.BenchData, frame: pd.DataFrame, workdir: Path) -> tuple[Path, float]:
    """``datacarto run`` on the variant (reused when ``workdir/run`` is complete already)."""
    csv, out = workdir / "data.csv", workdir / "run"
    if (out / "summary.json").is_file() and csv.is_file():
        return out, float(json.loads((workdir / "seconds.json").read_text())["seconds"])
    workdir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv, index=False)
    cmd = [*datacarto_command(), "run", str(csv), "--label-column", "label", *data.column_flag,
           "--out", str(out), "-q"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"datacarto run failed ({proc.returncode}): {proc.stderr[-1500:]}")
    (workdir / "seconds.json").write_text(json.dumps({"seconds": seconds}))
    return out, seconds


# ------------------------------------------------------------------------------ measures
def average_precision(truth: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(truth, np.nan_to_num(score, nan=-1.0)))


def overlap_scores(truth: np.ndarray, chosen: np.ndarray) -> dict[str, float]:
    tp = int((truth & chosen).sum())
    precision = tp / chosen.sum() if chosen.any() else 0.0
    recall = tp / truth.sum() if truth.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "size": int(chosen.sum())}


def separation(score: np.ndarray, members: np.ndarray, others: np.ndarray) -> float | None:
    """AUC: the chance that a member outranks one of ``others`` (ties count half)."""
    if not members.any() or not others.any():
        return None
    from sklearn.metrics import roc_auc_score

    keep = members | others
    return float(roc_auc_score(members[keep], np.nan_to_num(score[keep], nan=-1.0)))


def cleanlab_first_pair(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> list[str]:
    """The pair ``cleanlab.dataset.find_overlapping_classes`` ranks first (on the same
    probabilities ``datacarto classes`` reads)."""
    from cleanlab.dataset import find_overlapping_classes

    table = find_overlapping_classes(labels=labels, pred_probs=probs)
    if not len(table):
        return []
    first = table.iloc[0]
    return sorted([classes[int(first["Class Index A"])], classes[int(first["Class Index B"])]])


def measure(variant: str, run_dir: Path, rows: np.ndarray, flipped: np.ndarray,
            pair: list[str]) -> dict[str, Any]:
    """Every measure of one variant's run (``rows``/``flipped`` by data-file row = run id)."""
    import datacarto
    from datacarto.classes import evidence_from_run
    from datacarto.classes.proposals import propose

    run = datacarto.load(run_dir)
    metrics = run.metrics()
    ev = evidence_from_run(run, metrics)
    position = ev.ids.astype(np.int64)  # no --id-column: ids are the row numbers
    truth, flips = rows[position], flipped[position]
    t0 = time.perf_counter()
    proposals = propose(ev)
    seconds = time.perf_counter() - t0
    adds = [p for p in proposals if p.kind == "add"]
    merges = [p for p in proposals if p.kind == "merge"]
    n = len(ev.ids)
    out: dict[str, Any] = {
        "n": n, "classes": list(ev.classes), "propose_s": seconds,
        "proposals": [{"kind": p.kind, "where": p.where, "classes": p.classes, "size": p.size,
                       "strength": p.strength} for p in proposals],
        "max_add_share": max((p.size / n for p in adds), default=0.0)}
    if variant == "removed":
        score = ev.score
        held = ev.heldout if ev.heldout is not None else ev.probs
        top2 = np.sort(held, axis=1)[:, -2:]
        out["ap"] = {"missing_class_score": average_precision(truth, score),
                     "random": float(truth.mean()),
                     "margin": average_precision(truth, 1.0 - (top2[:, 1] - top2[:, 0])),
                     "entropy": average_precision(truth, metrics.set_index("id").loc[
                         ev.ids, "entropy"].to_numpy())}
        out["first_add"] = (overlap_scores(truth, np.isin(ev.ids, adds[0].ids)) | {
            "where": adds[0].where, "classes": adds[0].classes} if adds else None)
        clean = ~truth & ~flips
        out["auc_vs_mislabeled"] = separation(score, truth, flips)
        out["auc_vs_clean"] = separation(score, truth, clean)
        out["score_groups"] = {"removed": score[truth].tolist(), "mislabeled": score[flips].tolist(),
                               "clean": score[clean].tolist()}
    elif variant == "split":
        out["pair"] = sorted(pair)
        out["first_merge"] = sorted(merges[0].classes) if merges else []
        out["merge_rank"] = next((r for r, p in enumerate(merges, 1)
                                  if sorted(p.classes) == sorted(pair)), None)
        held = ev.heldout if ev.heldout is not None else ev.probs
        out["cleanlab_first"] = cleanlab_first_pair(ev.labels, held, list(ev.classes))
    return out


def run_dataset(name: str, loader: Any, group: str, removed: str, split: str, between: bool,
                workdir: Path) -> dict[str, Any]:
    data = loader()
    result: dict[str, Any] = {"name": name, "group": group, "rows": len(data.frame),
                              "removed": removed, "split": split, "between": between,
                              "source": data.source, "variants": {}}
    for variant in VARIANTS:
        if variant == "removed" and removed is None:
            continue
        frame, rows, flipped = make_variant(data.frame, variant, removed, split, name)
        run_dir, seconds = train(data, frame, workdir / f"{name}-{variant}")
        row = measure(variant, run_dir, rows, flipped, [split, split + TWIN_SUFFIX])
        row["train_s"] = seconds
        result["variants"][variant] = row
        print(progress_line(name, variant, row), flush=True)
    return result


def progress_line(name: str, variant: str, row: dict[str, Any]) -> str:
    if variant == "removed":
        ap, add = row["ap"], row["first_add"] or {}
        return (f"{name} removed: AP {ap['missing_class_score']:.3f} (random {ap['random']:.3f}, "
                f"margin {ap['margin']:.3f}, entropy {ap['entropy']:.3f}); first add F1 "
                f"{add.get('f1', 0):.2f} ({row['train_s']:.0f} s)")
    if variant == "split":
        return (f"{name} split: first merge {row['first_merge']} (cleanlab "
                f"{row['cleanlab_first']}) ({row['train_s']:.0f} s)")
    return (f"{name} clean: {len(row['proposals'])} proposals, largest add "
            f"{row['max_add_share']:.1%} ({row['train_s']:.0f} s)")


# ------------------------------------------------------------------------------- goals
def goals(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The goal lines, each with its target and whether every data set of the group meets it."""
    out = []
    for group in ("tune", "holdout"):
        rows = [d for d in datasets if d["group"] == group]
        if not rows:
            continue
        removed = [d["variants"]["removed"] for d in rows if "removed" in d["variants"]]
        between = [d["variants"]["removed"] for d in rows
                   if d["between"] and "removed" in d["variants"]]
        f1s = [(r["first_add"] or {}).get("f1", 0.0) for r in between]
        ratio = [r["ap"]["missing_class_score"] / max(r["ap"]["random"], 1e-12) for r in removed]
        above = [r["ap"]["missing_class_score"] > r["ap"]["margin"] for r in removed]
        merges = [d["variants"]["split"]["first_merge"] == d["variants"]["split"]["pair"]
                  for d in rows]
        cleanlab = [d["variants"]["split"]["cleanlab_first"] == d["variants"]["split"]["pair"]
                    for d in rows]
        alarms = [d["variants"]["clean"]["max_add_share"] for d in rows]
        out += [
            {"group": group, "goal": "first add recovers a removed class between two others",
             "target": "F1 >= 0.8", "value": ", ".join(f"{x:.2f}" for x in f1s) or "–",
             "met": bool(f1s) and min(f1s) >= 0.8},
            {"group": group, "goal": "missing_class_score AP vs random", "target": ">= 2x, every data set",
             "value": ", ".join(f"{x:.1f}x" for x in ratio) or "–",
             "met": bool(ratio) and bool(min(ratio) >= 2.0)},
            {"group": group, "goal": "missing_class_score AP above the margin baseline",
             "target": "most data sets", "value": f"{sum(above)} of {len(above)}",
             "met": bool(above) and sum(above) > len(above) / 2},
            {"group": group, "goal": "split class is the first merge proposal",
             "target": "every time", "value": f"{sum(merges)} of {len(merges)} (cleanlab's "
             f"find_overlapping_classes: {sum(cleanlab)} of {len(cleanlab)})",
             "met": all(merges)},
            {"group": group, "goal": "no fault: largest add proposal", "target": "<= 2 % of rows",
             "value": f"max {max(alarms):.1%}", "met": max(alarms) <= 0.02},
        ]
    return out


# ------------------------------------------------------------------------------ report
def _f(x: Any, spec: str = ".3f") -> str:
    return "–" if x is None else format(x, spec)


def render(result: dict[str, Any], figure: str | None) -> str:
    lines = ["# Missing and merged classes", "",
             "Generated by `python benchmarks/classes.py"
             + (" --quick" if result["quick"] else "") + "`; "
             f"datacarto {result['datacarto_version']}, Python {result['python']}, "
             f"{result['seconds']:.0f} s in all. Method: [docs/classes.md](../../docs/classes.md).",
             "", "Variants of each data set's labels, each trained with `datacarto run DATA "
             "--label-column label` and the data columns only:", "",
             "* **removed**: one class removed, its rows relabelled at random to the other "
             f"classes, and {FLIP_SHARE:.0%} of the other rows flipped at random (plainly "
             "mislabeled rows, which `missing_class_score` must rank below the removed class);",
             "* **split**: one class given two names at random (half its rows each);",
             "* **clean**: the labels as shipped (no fault).", "",
             "The thresholds of `datacarto.classes` were chosen on the TUNING group. The "
             "held-out group changed twice while the method was built: mixed and overlap, then "
             "fashion-mnist, breast-cancer and chinese-reviews were held out in turn, and the "
             "add proposals their clean labels got (up to 24 %, 14 %, 3.5 % and 29 % of the "
             "rows) led to the two label-agreement tests; they count as tuning data since. "
             "iris and gauss4 were added after the last change and never run before this "
             "report. A removed class counts as *between two others* when it was chosen so "
             "before any run (rotten-tomatoes' neutral, wine's middle cultivar, mixed's "
             "downgrade, Fashion-MNIST's shirt, iris' versicolor).", ""]
    for group, title in (("tune", "TUNING group (thresholds chosen on these)"),
                         ("holdout", "HELD-OUT group (never looked at while tuning)")):
        rows = [d for d in result["datasets"] if d["group"] == group]
        if not rows:
            continue
        lines += [f"## {title}", "", "### Goals", "", "| goal | target | value | met |",
                  "|---|---|---|---|"]
        lines += [f"| {g['goal']} | {g['target']} | {g['value']} | {'yes' if g['met'] else 'no'} |"
                  for g in result["goals"] if g["group"] == group]
        lines += ["", "### Removed class", "",
                  "| data | rows | removed class (between two?) | AP missing_class_score | "
                  "random | margin | entropy | first add: kind, classes | P / R / F1 | "
                  "AUC vs mislabeled |", "|---|---|---|---|---|---|---|---|---|---|"]
        for d in rows:
            if "removed" not in d["variants"]:
                continue
            r = d["variants"]["removed"]
            add = r["first_add"]
            what = (f"{add['where']}: {', '.join(add['classes'])}, {add['size']} rows"
                    if add else "none")
            prf = (f"{add['precision']:.2f} / {add['recall']:.2f} / {add['f1']:.2f}"
                   if add else "–")
            lines.append(
                f"| {d['name']} | {d['rows']:,} | {d['removed']} ({'yes' if d['between'] else 'no'}) "
                f"| {r['ap']['missing_class_score']:.3f} | {r['ap']['random']:.3f} | "
                f"{r['ap']['margin']:.3f} | {r['ap']['entropy']:.3f} | {what} | {prf} | "
                f"{_f(r['auc_vs_mislabeled'])} |")
        lines += ["", "### Split class and no fault", "",
                  "| data | split class | first merge | its rank among merges | cleanlab first | "
                  "clean: proposals (add / merge) | largest add |",
                  "|---|---|---|---|---|---|---|"]
        for d in rows:
            s, c = d["variants"]["split"], d["variants"]["clean"]
            n_add = sum(p["kind"] == "add" for p in c["proposals"])
            lines.append(
                f"| {d['name']} | {d['split']} | {', '.join(s['first_merge']) or 'none'} | "
                f"{s['merge_rank'] or '–'} | {', '.join(s['cleanlab_first']) or 'none'} | "
                f"{n_add} / {len(c['proposals']) - n_add} | {c['max_add_share']:.1%} |")
        lines.append("")
    if figure:
        lines += ["## missing_class_score: removed class vs mislabeled vs clean rows", "",
                  f"![scores]({figure})", "",
                  "Per data set (removed variant), the distribution of the score over the rows "
                  "of the removed class, the rows flipped at random (mislabeled) and the other "
                  "rows. \"AUC vs mislabeled\" above is the chance that a removed row scores "
                  "above a mislabeled one.", ""]
    lines += ["## Data sets", "", "| data | group | rows | source |", "|---|---|---|---|"]
    lines += [f"| {d['name']} | {d['group']} | {d['rows']:,} | {d['source']} |"
              for d in result["datasets"]]
    return "\n".join(lines) + "\n"


def draw_figure(datasets: list[dict[str, Any]], out: Path) -> bool:
    """Histograms of the score per data set (removed variant); False when there is none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [d for d in datasets if "removed" in d["variants"]]
    if not datasets:
        return False
    cols = min(4, len(datasets))
    rows = -(-len(datasets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel()[len(datasets):]:
        ax.set_visible(False)
    bins = np.linspace(0, 1, 21)
    for ax, d in zip(axes.ravel(), datasets):
        groups = d["variants"]["removed"]["score_groups"]
        for key, colour in (("clean", "#bbbbbb"), ("mislabeled", "#1f77b4"), ("removed", "#d62728")):
            values = np.asarray(groups[key], dtype=float)
            values = values[np.isfinite(values)]
            if len(values):
                ax.hist(values, bins=bins, density=True, histtype="step", lw=1.6, color=colour,
                        label=f"{key} ({len(values)})")
        ax.set_title(f"{d['name']} ({d['group']})", fontsize=9)
        ax.set_xlabel("missing_class_score", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return True


# -------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 small data sets (< 1 min)")
    p.add_argument("--datasets", help="comma-separated names (default: all)")
    p.add_argument("--group", choices=("tune", "holdout"), help="only this group")
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where classes.md/.json go")
    p.add_argument("--work-dir", type=Path, help="where the runs go (default: a temporary dir)")
    p.add_argument("--keep", action="store_true", help="keep the runs (with --work-dir)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import datacarto

    args = parse_args(argv)
    t0 = time.perf_counter()
    if args.quick:
        chosen = [(name, QUICK[name], *SETTINGS[name]) for name in QUICK]
    else:
        names = args.datasets.split(",") if args.datasets else list(SETTINGS)
        unknown = [n for n in names if n not in SETTINGS]
        if unknown:
            raise SystemExit(f"unknown data set(s) {unknown}; choose from {list(SETTINGS)}")
        chosen = [(n, LOADERS[n], *SETTINGS[n]) for n in names
                  if args.group is None or SETTINGS[n][0] == args.group]
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="datacarto-classes-"))
    datasets = []
    try:
        for name, loader, group, removed, split, between in chosen:
            try:
                datasets.append(run_dataset(name, loader, group, removed, split, between, work))
            except dd.Unavailable as err:
                print(f"skipping {name}: {err}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = "classes-quick" if args.quick else "classes"
    figure = None
    if datasets:
        figure = f"{stem}.png" if draw_figure(datasets, args.out_dir / f"{stem}.png") else None
    result = {"quick": args.quick, "datacarto_version": datacarto.__version__,
              "python": platform.python_version(), "seconds": time.perf_counter() - t0,
              "datasets": datasets, "goals": goals(datasets)}
    (args.out_dir / f"{stem}.md").write_text(render(result, figure), encoding="utf-8")
    for d in datasets:  # the per-row scores feed the figure only
        d["variants"].get("removed", {}).pop("score_groups", None)
    (args.out_dir / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n",
                                               encoding="utf-8")
    print(f"wrote {args.out_dir / (stem + '.md')} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
