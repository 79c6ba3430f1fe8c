"""``datacarto demo [--out DIR] [--dataset rotten-tomatoes|digits|fashion-mnist]``.

Loads a real dataset available offline (:mod:`datacarto.datasets`), flips a fraction of its
labels (5 % by default) with a fixed seed, runs the whole ``datacarto run`` workflow on the
noisy copy and reports how many of the flipped labels it found. The detector never sees which
labels were flipped: the noisy copy is written to ``DIR/data.csv`` (``data.parquet`` for
images) exactly as a user's file would be, and the truth goes to ``DIR/injected_flips.csv``
(id, original_label, given_label) and ``run.json`` ``extra["injected_flips"]`` (ids).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd

from ..datafiles import write_data
from ..errors import InputError
from ..outputs import reset_output
from ..progress import Progress
from ..store import fingerprint_file
from ..train.preparation import prepare
from ._summary import summarize, suspect_lines
from ._workflow import RunResult, update_summary_json, write_summary_text
from ._workflow import execute as execute_run
from .run import add_training_options, options_from_args

#: Seed of the label flips: the same flips on every run, so results can be compared.
NOISE_SEED = 2020
DEFAULT_NOISE = 0.05


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="map a real dataset with injected label flips and report how many were found",
        description="Flip a fraction of the labels of a real dataset (fixed seed), run the whole "
                    "pipeline on the noisy copy and report precision, recall and average precision "
                    "of finding the flips, next to the top suspects.")
    p.add_argument("--out", default="datacarto-demo", metavar="DIR",
                   help="output directory (default: ./datacarto-demo)")
    p.add_argument("--dataset", choices=("rotten-tomatoes", "digits", "fashion-mnist"),
                   default="rotten-tomatoes", help="default: rotten-tomatoes")
    p.add_argument("--noise", type=float, default=DEFAULT_NOISE, metavar="F",
                   help="fraction of labels to flip to another class (default 0.05)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="fashion-mnist: directory of the IDX files (default "
                        "/usr/share/datasets/fashion-mnist, from `apt-get install "
                        "dataset-fashion-mnist`)")
    p.add_argument("--limit", type=int, default=10_000, metavar="N",
                   help="fashion-mnist: use the first N training images (default 10000)")
    add_training_options(p)
    p.set_defaults(func=execute)


def flip_labels(labels: np.ndarray, rate: float, seed: int = NOISE_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Flip ``round(rate * N)`` labels, chosen uniformly, to a uniformly drawn other class.

    Returns the noisy labels and the sorted row positions that were flipped.

    Examples
    --------
    >>> noisy, rows = flip_labels(np.array(["a", "b"] * 10, dtype=object), 0.1)
    >>> len(rows), bool((noisy[rows] != np.array(["a", "b"] * 10)[rows]).all())
    (2, True)
    """
    if not (0.0 <= rate < 1.0):
        raise InputError(f"--noise must be a fraction in [0, 1); got {rate!r}.")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    n = len(labels)
    rows = np.sort(rng.choice(n, size=int(round(rate * n)), replace=False))
    noisy = labels.copy()
    index = np.searchsorted(classes, labels[rows])
    shift = rng.integers(1, len(classes), size=len(rows))  # never the original class
    noisy[rows] = classes[(index + shift) % len(classes)]
    return noisy, rows


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """``sum_n (R_n - R_{n-1}) P_n`` over distinct score thresholds, as scikit-learn computes it.

    Examples
    --------
    >>> average_precision(np.array([True, False, True, False]), np.array([0.9, 0.8, 0.7, 0.1]))
    0.8333333333333333
    """
    truth = np.asarray(truth, dtype=bool)
    if not truth.any():
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    s, t = np.asarray(scores, dtype=np.float64)[order], truth[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # end of each tie group
    tp = np.cumsum(t)[last]
    precision = tp / (last + 1)
    recall = tp / truth.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def evaluate(metrics: pd.DataFrame, flips: pd.DataFrame) -> dict[str, Any]:
    """Precision/recall of ``is_label_error`` and AP of ``label_error_score`` against the flips."""
    truth = metrics["id"].isin(set(flips["id"])).to_numpy()
    flagged = metrics["is_label_error"].to_numpy(dtype=bool)
    hits = int((truth & flagged).sum())
    original = dict(zip(flips["id"], flips["original_label"]))
    found = metrics[truth & flagged]
    restored = int(sum(original[i] == s for i, s in zip(found["id"], found["suggested_label_name"])))
    return {"flips": int(truth.sum()), "flagged": int(flagged.sum()), "found": hits,
            "precision": hits / flagged.sum() if flagged.any() else float("nan"),
            "recall": hits / truth.sum() if truth.any() else float("nan"),
            "average_precision": average_precision(truth, metrics["label_error_score"].to_numpy()),
            "base_rate": float(truth.mean()), "suggestion_restores_original": restored}


def _not_flipped(result: RunResult, flips: pd.DataFrame, n: int = 5) -> list[str]:
    """Lines showing the top suspects that the demo did not flip: the data's own label noise."""
    suspects = result.suspects[~result.suspects["id"].isin(set(flips["id"]))].head(n)
    if suspects.empty:
        return []
    return ["Flagged although the demo did not flip them (the data's own label noise, or hard "
            "cases):", *suspect_lines(result.prepared, suspects, shape=result.image_shape), ""]


def execute(args: argparse.Namespace) -> int:
    from ..datasets import fashion_mnist, load_dataset

    progress = Progress(quiet=args.quiet)
    if args.dataset == "fashion-mnist":
        dataset = fashion_mnist(args.data_dir, limit=args.limit)
    else:
        dataset = load_dataset(args.dataset)
    frame = dataset.frame.copy()
    original = frame[dataset.label_column].to_numpy(dtype=object)
    noisy, rows = flip_labels(original, args.noise)
    frame[dataset.label_column] = noisy
    flips = pd.DataFrame({"id": frame[dataset.id_column].to_numpy()[rows],
                          "original_label": original[rows], "given_label": noisy[rows]})
    options = options_from_args(
        args, label_column=dataset.label_column, id_column=dataset.id_column,
        text_column=dataset.text_column,
        feature_columns=list(dataset.feature_columns) if dataset.feature_columns else None)
    data_name = "data.csv" if dataset.text_column else "data.parquet"
    prep = prepare(frame, options, source=f"{args.out}/{data_name}")
    out = reset_output(args.out)
    write_data(frame, out / data_name)
    write_data(flips, out / "injected_flips.csv")
    progress.message(f"{dataset.description}: {len(frame):,} examples; flipped {len(flips):,} labels "
                     f"({args.noise:.0%}, seed {NOISE_SEED}); the detector does not see which.")
    result = execute_run(prep, options, out, data_fingerprint=fingerprint_file(out / data_name),
                         progress=progress, title=f"{dataset.name}, {args.noise:.0%} labels flipped",
                         extra={"demo": {"dataset": dataset.name, "noise": args.noise,
                                         "noise_seed": NOISE_SEED,
                                         "truth_file": "injected_flips.csv"},
                                "injected_flips": flips["id"].tolist()})
    scores = evaluate(result.metrics, flips)
    lines = [f"datacarto demo: {dataset.description}",
             f"{len(frame):,} examples, {scores['flips']:,} labels flipped ({args.noise:.0%}); "
             f"written to {out / data_name}, truth in {out / 'injected_flips.csv'}.",
             "",
             "Finding the flipped labels:",
             f"  flagged {scores['flagged']:,}; {scores['found']:,} of them are flips -> precision "
             f"{scores['precision']:.2f}, recall {scores['recall']:.2f}",
             f"  average precision of label_error_score {scores['average_precision']:.3f} "
             f"(random ranking: {scores['base_rate']:.3f})",
             f"  the suggested label is the original one for {scores['suggestion_restores_original']:,}"
             f" of the {scores['found']:,} flips found",
             *(["  Suspects that are not flips are often real label noise: sarcasm, mixed reviews, "
                "plot summaries with an opinion."] if dataset.name == "rotten-tomatoes" else []),
             "",
             summarize(result, top=args.top, injected=set(flips["id"].tolist()),
                       more=_not_flipped(result, flips)),
             f"Time: {result.timings['total_s']:.1f} s (features {result.timings['featurize_s']:.1f} s,"
             f" training {result.timings['train_s'] + result.timings['heldout_s']:.1f} s)."]
    text = "\n".join(lines)
    write_summary_text(out, text)
    update_summary_json(out, demo={k: (None if isinstance(v, float) and np.isnan(v) else v)
                                   for k, v in scores.items()})
    if not args.quiet:
        print(text)
    return 0
