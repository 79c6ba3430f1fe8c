"""The terms that set a group of texts apart: mean TF-IDF in the group minus elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._deps import require

#: Terms listed per proposal.
N_TERMS = 8


def distinguishing_terms(texts: Sequence[str | None], members: np.ndarray, reference: np.ndarray,
                         *, top: int = N_TERMS) -> list[str]:
    """Word 1-2-grams with the largest ``mean_{i in members} x_it - mean_{i in reference} x_it``.

    ``x`` is the TF-IDF matrix (sublinear tf, rows of unit L2 norm) of every text, English stop
    words left out when the texts look English; rows without text count as empty. Only terms the
    group uses more than the reference are returned (possibly fewer than ``top``).
    """
    if len(members) == 0 or len(reference) == 0:
        return []
    require("sklearn", extra="sklearn", feature="the terms of a class proposal")
    from sklearn.feature_extraction.text import TfidfVectorizer

    from ..train.featurize import looks_english

    docs = ["" if t is None else str(t) for t in texts]
    stop = "english" if looks_english(docs) else None
    try:
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2 if len(docs) >= 50 else 1,
                              sublinear_tf=True, max_features=20_000, stop_words=stop,
                              token_pattern=r"(?u)\b\w\w+\b")
        x = vec.fit_transform(docs)
    except ValueError:  # no term at all (empty or stop-word-only texts)
        return []
    diff = np.asarray(x[members].mean(axis=0)).ravel() - np.asarray(x[reference].mean(axis=0)).ravel()
    names = vec.get_feature_names_out()
    best = np.argsort(-diff, kind="stable")[:top]
    return [str(names[j]) for j in best if diff[j] > 0]
