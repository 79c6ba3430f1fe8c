"""Why is it flagged? The evidence behind each suspect, from four independent sources.

A label-error score says *that* an example looks mislabeled; a reviewer also wants to know
*why*. For every example, ``datacarto run`` records (docs/label-errors.md, "Why is it
flagged?"):

(a) **persistent prediction** — the class the model kept predicting instead of the given label,
    and in how many recorded epochs (from the per-epoch argmax ``pred``, N x E):
    :func:`persistent_prediction`;
(b) **held-out probability of the given label** — the mean softmax probability that the side
    models (trained on the *other* half of the data, ``RUN/heldout.parquet``) give the label,
    over the epochs of the label-error window: :func:`heldout_gold_probability`;
(c) **neighbour agreement** — the share of the k = 10 nearest neighbours in the model's input
    space (cosine similarity on TF-IDF rows, embeddings or standardised features) that carry
    the same given label, and their majority label: :func:`neighbour_agreement`;
(d) **conflicting duplicates** — exact or near-duplicate rows (cosine >= :data:`NEAR_DUPLICATE`)
    with a *different* label: :func:`conflicting_duplicates`. Such a row is always listed as a
    suspect, whatever its score: two copies of one example cannot both be labelled right.

Functions (a)–(d) are numpy in, numpy out. :func:`compute_evidence` assembles them into a
DataFrame (one row per example, :data:`COLUMNS`); :func:`write_evidence` / :func:`read_evidence`
store it as ``RUN/evidence.parquet``; :func:`attach_evidence` joins it to a metrics frame (the
CLI commands do so when the file exists); :func:`describe_evidence` is the one-line text that
``datacarto flag``, the report and the review page show.

Nearest neighbours (:func:`nearest_neighbours`) are searched in bounded memory, numpy only.
Rows are scaled to unit L2 norm; with more than :data:`MAX_DIMS` feature dimensions they are
projected on the top :data:`MAX_DIMS` right singular vectors of the unit rows (randomized SVD,
Halko et al. 2011, fitted on a seeded sample of :data:`SVD_ROWS` rows; sparse matrices are
never densified), re-normalised, and the :data:`RERANK` best candidates found there are
re-ranked by their exact cosine on the original rows (Rotten Tomatoes TF-IDF with 5 % of the
labels flipped: AUROC of ``1 - neighbour_agreement`` for the flips 0.80 from the projection
alone, 0.82 re-ranked; exact neighbours 0.85 on a 1,500-row sample). Up to
:data:`EXACT_ROWS` rows the search is exhaustive (similarities in row chunks of at most ~32 MB,
top-k through block maxima); beyond, it is an inverted-file search: spherical k-means into
~sqrt(N) clusters, each row compared with the members of its :data:`PROBES` nearest clusters
(recall@10 > 0.99 against the exhaustive search on clustered data). A full N x N pass over
100,000 rows takes minutes on 2 cores; this takes 7-21 s (docs/label-errors.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from . import store
from .errors import InputError
from .probability import label_log_prob

__all__ = ["COLUMNS", "EVIDENCE_FILE", "NEAR_DUPLICATE", "NEIGHBOURS", "Duplicates", "Neighbours",
           "attach_evidence", "compute_evidence", "conflicting_duplicates", "describe_evidence",
           "evidence_texts", "feature_matrix", "heldout_for_run", "heldout_gold_probability",
           "nearest_neighbours", "neighbour_agreement", "neighbourhood_evidence",
           "normalize_text", "persistent_prediction", "read_evidence", "reasons", "window_mask",
           "write_evidence"]

#: Neighbours per example for :func:`neighbour_agreement`.
NEIGHBOURS = 10
#: Cosine similarity from which two rows with different labels are near-duplicates.
NEAR_DUPLICATE = 0.95
#: Neighbour candidates examined per row for near-duplicates.
DUPLICATE_CANDIDATES = 20
#: Feature dimensions kept for the neighbour search (randomized SVD above this).
MAX_DIMS = 128
#: Exact neighbour search up to this many rows; inverted-file search beyond.
EXACT_ROWS = 20_000
#: Rows (a seeded sample) from which the projection of wide features is computed.
SVD_ROWS = 10_000
#: Clusters probed per row by the inverted-file search.
PROBES = 10
#: Candidates from a projected search re-ranked by their exact cosine.
RERANK = 30
#: Conflicting duplicate ids listed per row (``n_conflicting_duplicates`` counts them all).
MAX_LISTED = 20
#: File of the evidence in a run directory.
EVIDENCE_FILE = store.EVIDENCE_FILE
#: Columns of :func:`compute_evidence` besides ``id``.
COLUMNS = ("kept_predicting", "kept_predicting_epochs", "epochs_recorded", "heldout_given_prob",
           "neighbour_agreement", "neighbour_label", "conflicting_duplicates",
           "n_conflicting_duplicates", "duplicate_kind", "reason")
#: Floats per temporary similarity block (~32 MB of float32).
_BLOCK_FLOATS = 1 << 23
#: Columns per block of the block-maximum top-k.
_TOPK_BLOCK = 32


# ----------------------------------------------------------------------- (a) prediction
def persistent_prediction(pred: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """The class predicted most often instead of the given label, and in how many epochs.

    ``c_i = argmax_{c != y_i} n_ic`` with ``n_ic = sum_e 1[pred_ie = c]`` (ties to the lowest
    class index) and ``n_i = n_{i c_i}``. Where the model predicted the given label in every
    epoch, ``c_i = -1`` and ``n_i = 0``.

    Parameters
    ----------
    pred : array-like (N, E) of int
        Per-epoch argmax (:attr:`datacarto.dynamics.TrainingDynamics.pred`); the epochs of
        several seeds may be concatenated along axis 1.
    labels : array-like (N,) of int
        Given labels.

    Returns
    -------
    classes : ndarray (N,) int64
    epochs : ndarray (N,) int64

    Examples
    --------
    >>> c, n = persistent_prediction([[2, 2, 0, 1], [0, 0, 0, 0], [1, 2, 2, 1]], [0, 0, 0])
    >>> c.tolist(), n.tolist()
    ([2, -1, 1], [2, 0, 2])
    """
    p = np.asarray(pred)
    y = np.asarray(labels)
    if p.ndim != 2 or y.ndim != 1 or p.shape[0] != y.shape[0]:
        raise InputError(f"persistent_prediction: pred must be (N, E) and labels (N,); got "
                         f"{p.shape} and {y.shape}.")
    n, e = p.shape
    classes = np.full(n, -1, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    if n == 0 or e == 0:
        return classes, counts
    step = max(1, _BLOCK_FLOATS // (4 * e * e))
    for lo in range(0, n, step):
        blk = p[lo:lo + step].astype(np.int64)
        other = blk != y[lo:lo + step, None]
        # times each epoch's (non-given) prediction occurs among the row's predictions
        occ = ((blk[:, :, None] == blk[:, None, :]).sum(axis=2)) * other
        best = occ.max(axis=1)
        big = np.iinfo(np.int64).max
        cls = np.where((occ == best[:, None]) & other, blk, big).min(axis=1)
        has = best > 0
        classes[lo:lo + step] = np.where(has, cls, -1)
        counts[lo:lo + step] = best
    return classes, counts


# ------------------------------------------------------------------------- (b) held-out
def heldout_gold_probability(heldout_logits: Any, labels: Any, keep: Any = None) -> np.ndarray:
    """Mean held-out softmax probability of the given label over the kept epochs.

    ``h_i = mean_{e: keep_e} softmax(z_ei)[y_i]``, with ``z_ei`` the logits of example i from
    the model that did *not* train on it, after epoch e. NaN logits (rows the held-out models
    did not score) give NaN.

    Parameters
    ----------
    heldout_logits : array-like (E, N, K)
        Held-out logits per epoch (``datacarto.store.read_heldout(run).logits``).
    labels : array-like (N,) of int
        Given labels.
    keep : array-like (E,) of bool, optional
        The epochs to average over (the label-error window); default all.

    Examples
    --------
    >>> z = [[[0.0, 0.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]   # 2 epochs, 2 rows
    >>> heldout_gold_probability(z, [1, 0]).round(4).tolist()
    [0.5, 0.6904]
    >>> heldout_gold_probability(z, [1, 0], keep=[True, False]).round(4).tolist()
    [0.5, 0.8808]
    """
    z = np.asarray(heldout_logits)
    y = np.asarray(labels, dtype=np.int64)
    if z.ndim != 3 or y.ndim != 1 or z.shape[1] != y.shape[0]:
        raise InputError(f"heldout_gold_probability: logits must be (E, N, K) and labels (N,); "
                         f"got {z.shape} and {y.shape}.")
    n_ep, n, k = z.shape
    if n and (y.min() < 0 or y.max() >= k):
        raise InputError(f"heldout_gold_probability: labels must be in 0..{k - 1}.")
    mask = np.ones(n_ep, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    if mask.shape != (n_ep,) or not mask.any():
        raise InputError(f"heldout_gold_probability: keep must be (E,) = ({n_ep},) booleans with "
                         "at least one True.")
    total = np.zeros(n, dtype=np.float64)
    for e in np.flatnonzero(mask):
        total += np.exp(label_log_prob(z[e], y, max_floats=_BLOCK_FLOATS))
    return total / mask.sum()


def window_mask(epochs: Any, window: str | None) -> np.ndarray:
    """(E,) bool: which of ``epochs`` lie in an inclusive window such as ``"1:4"`` (None: all).

    >>> window_mask([1, 2, 3, 4], "2:3").tolist()
    [False, True, True, False]
    """
    from .dynamics import parse_epoch_window

    ep = np.asarray(epochs, dtype=np.int64)
    if window is None:
        return np.ones(len(ep), dtype=bool)
    lo, hi = parse_epoch_window(window)
    return (ep >= (lo if lo is not None else ep.min(initial=0))) & (
        ep <= (hi if hi is not None else ep.max(initial=0)))


def heldout_for_run(run_dir: str | os.PathLike[str], ids: Any, labels: Any,
                    window: str | None = None) -> np.ndarray | None:
    """:func:`heldout_gold_probability` from ``RUN/heldout.parquet``
    (:func:`datacarto.store.read_heldout`) in the order of ``ids``, over the epochs of
    ``window`` (all epochs when None, or when the window holds none of the held-out epochs).
    None when the run has no held-out logits; NaN for ids the file lacks."""
    from .store import read_heldout

    held = read_heldout(run_dir)
    if held is None:
        return None
    id_arr = np.asarray(ids)
    as_str = held.ids.dtype.kind in "UO" or id_arr.dtype.kind in "UO"
    pos = pd.Index(held.ids.astype(str) if as_str else held.ids).get_indexer(
        id_arr.astype(str) if as_str else id_arr)
    found = pos >= 0
    keep = window_mask(held.epochs, window)
    if not keep.any():
        keep[:] = True
    y = np.asarray(labels, dtype=np.int64)
    out = np.full(len(id_arr), np.nan)
    if found.any():
        logits = held.logits[:, pos[found]]
        out[found] = heldout_gold_probability(logits, y[found], keep)
    return out


# ---------------------------------------------------------------------- (c) neighbours
class Neighbours(NamedTuple):
    """Result of :func:`nearest_neighbours`, row i's neighbours best first (-1: none)."""

    index: np.ndarray        # (N, k) int64 row indices, -1 where fewer than k exist
    similarity: np.ndarray   # (N, k) float32 cosine similarity of the original rows (NaN: none)


def _is_sparse(X: Any) -> bool:
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def _row_norms(X: Any) -> np.ndarray:
    if _is_sparse(X):
        Xc = X.tocsr()
        return np.sqrt(np.asarray(Xc.multiply(Xc).sum(axis=1), dtype=np.float64).ravel())
    A = np.asarray(X)
    out = np.empty(len(A), dtype=np.float64)
    step = max(1, _BLOCK_FLOATS // max(1, A.shape[1]))
    for lo in range(0, len(A), step):
        blk = A[lo:lo + step].astype(np.float64)
        out[lo:lo + step] = np.sqrt(np.einsum("ij,ij->i", blk, blk))
    return out


def _check_features(X: Any, where: str) -> Any:
    if _is_sparse(X):
        X = X.tocsr()
        if X.ndim != 2:
            raise InputError(f"{where}: X must be 2-D; got shape {X.shape}.")
        if not np.isfinite(X.data).all():
            raise InputError(f"{where}: X holds NaN or infinite values.")
        return X
    A = np.asarray(X)
    if A.ndim != 2 or A.dtype.kind not in "biuf":
        raise InputError(f"{where}: X must be a 2-D numeric array or a scipy sparse matrix; got "
                         f"{A.dtype} with shape {A.shape}.")
    if A.dtype.kind == "f" and not np.isfinite(A).all():
        raise InputError(f"{where}: X holds NaN or infinite values.")
    return A


def _orthonormal(Y: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the columns of a tall ``Y``, from the eigenvectors of its Gram
    matrix (an order of magnitude faster than ``np.linalg.qr`` here; near-null directions are
    dropped)."""
    w, V = np.linalg.eigh(Y.T @ Y)
    top = float(w.max()) if w.size else 0.0
    keep = w > top * 1e-10 if top > 0 else np.zeros(len(w), dtype=bool)
    return Y @ (V[:, keep] / np.sqrt(w[keep]))


def _randomized_basis(X: Any, scale: np.ndarray, r: int, seed: int, n_iter: int = 1) -> np.ndarray:
    """(D, <= r) top right singular vectors of ``diag(scale) X`` (Halko et al. 2011: a
    randomized range finder with ``n_iter`` power iterations and 10 extra columns)."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    width = min(d, X.shape[0], r + 10)

    dtype = X.dtype if X.dtype == np.float32 else np.float64

    def times(M: np.ndarray) -> np.ndarray:      # diag(scale) X M
        return np.asarray(X @ M.astype(dtype), dtype=np.float64) * scale[:, None]

    def times_t(M: np.ndarray) -> np.ndarray:    # (diag(scale) X)^T M
        return np.asarray(X.T @ (M * scale[:, None]).astype(dtype), dtype=np.float64)

    Q = _orthonormal(times(rng.standard_normal((d, width))))
    for _ in range(n_iter):
        Q = _orthonormal(times(times_t(Q)))
    Bt = times_t(Q)                              # (D, w) = (Q^T diag(scale) X)^T
    w, U = np.linalg.eigh(Bt.T @ Bt)             # B B^T = U diag(s^2) U^T
    order = np.argsort(w)[::-1][:r]
    w, U = w[order], U[:, order]
    keep = w > (w[0] if len(w) else 0.0) * 1e-10
    return Bt @ (U[:, keep] / np.sqrt(w[keep]))  # V = B^T U / s


def _search_space(X: Any, max_dims: int, seed: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Unit rows for the search, ``Z`` (N, <= max_dims) float32; the row norms of ``X``; and
    whether ``Z`` is a projection (then its cosines only approximate those of ``X``)."""
    norms = _row_norms(X)
    valid = norms > 0
    scale = np.where(valid, 1.0 / np.where(valid, norms, 1.0), 0.0)
    n, d = X.shape
    projected = d > max_dims
    if projected:
        sample = np.arange(n)
        if n > SVD_ROWS:
            sample = np.sort(np.random.default_rng(seed).choice(n, SVD_ROWS, replace=False))
        if _is_sparse(X):  # sparse products are single-threaded: unit rows in float32, once
            X = X.multiply(scale[:, None]).tocsr().astype(np.float32)
            scale = np.ones(n)
        V = _randomized_basis(X[sample], scale[sample], max_dims, seed)
        Z = np.asarray(X @ V.astype(X.dtype), dtype=np.float64) * scale[:, None]
        Z = Z.astype(np.float32)
    elif _is_sparse(X):
        Z = (X.toarray() * scale[:, None]).astype(np.float32)
    else:
        Z = (np.asarray(X, dtype=np.float64) * scale[:, None]).astype(np.float32)
    znorm = np.sqrt(np.einsum("ij,ij->i", Z, Z, dtype=np.float64))
    ok = znorm > 0
    Z[ok] /= znorm[ok, None].astype(np.float32)
    return Z, norms, projected


def _topk_small(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k largest entries of each row (unordered; among equal
    values the lower columns). ``np.sort`` finds each row's k-th largest value (vectorised,
    several times faster than ``argpartition``) and a mask picks the entries."""
    r, m = S.shape
    if k >= m:
        idx = np.broadcast_to(np.arange(m), (r, m)).copy()
        return idx, S.copy()
    kth = np.sort(S, axis=1)[:, m - k][:, None]
    chosen = S >= kth
    flat = np.flatnonzero(chosen)
    if len(flat) != r * k:  # ties at the k-th value: every larger entry, then the lowest columns
        tied = np.flatnonzero(chosen.sum(axis=1) > k)
        St, kt = S[tied], kth[tied]
        at = St == kt
        need = k - (St > kt).sum(axis=1, keepdims=True)
        chosen[tied] = (St > kt) | (at & (np.cumsum(at, axis=1) <= need))
        flat = np.flatnonzero(chosen)
    cols = flat.reshape(r, k) - (np.arange(r) * m)[:, None]
    return cols, np.take_along_axis(S, cols, axis=1)


def _topk(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k largest entries of each row (unordered)."""
    r, m = S.shape
    k = min(k, m)
    if m <= 4 * _TOPK_BLOCK * max(k, 1):
        return _topk_small(S, k)
    # the k largest entries lie in the k blocks with the largest maxima
    nb = m // _TOPK_BLOCK
    bmax = S[:, :nb * _TOPK_BLOCK].reshape(r, nb, _TOPK_BLOCK).max(axis=2)
    if m > nb * _TOPK_BLOCK:
        bmax = np.concatenate([bmax, S[:, nb * _TOPK_BLOCK:].max(axis=1, keepdims=True)], axis=1)
    blocks = np.sort(_topk_small(bmax, k)[0], axis=1)
    cols = (blocks[:, :, None] * _TOPK_BLOCK + np.arange(_TOPK_BLOCK)).reshape(r, -1)
    inside = cols < m
    cols = np.minimum(cols, m - 1)
    vals = np.where(inside, np.take_along_axis(S, cols, axis=1), -np.inf)
    pick, top = _topk_small(vals, k)
    return np.take_along_axis(cols, pick, axis=1), top


def _exact_search(Z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(Z)
    idx = np.empty((n, k), dtype=np.int64)
    sim = np.empty((n, k), dtype=np.float32)
    step = max(1, _BLOCK_FLOATS // max(1, n))
    for lo in range(0, n, step):
        S = Z[lo:lo + step] @ Z.T
        r = len(S)
        S[np.arange(r), np.arange(lo, lo + r)] = -np.inf
        idx[lo:lo + r], sim[lo:lo + r] = _topk(S, k)
    return idx, sim


def _nearest_centroids(Z: np.ndarray, C: np.ndarray, p: int) -> np.ndarray:
    """(N, p) indices of each row's p most similar centroids, most similar first."""
    out = np.empty((len(Z), p), dtype=np.int64)
    step = max(1, _BLOCK_FLOATS // max(1, len(C)))
    for lo in range(0, len(Z), step):
        idx, vals = _topk(Z[lo:lo + step] @ C.T, p)
        order = np.argsort(-vals, axis=1, kind="stable")
        out[lo:lo + step] = np.take_along_axis(idx, order, axis=1)
    return out


def _kmeans(Z: np.ndarray, n_clusters: int, rng: np.random.Generator, iters: int = 8) -> np.ndarray:
    """Spherical k-means centroids (n_clusters, d) fitted on a sample of the unit rows ``Z``."""
    sample = Z[np.sort(rng.choice(len(Z), min(len(Z), 64 * n_clusters), replace=False))]
    C = sample[rng.choice(len(sample), n_clusters, replace=False)].copy()
    for _ in range(iters):
        assign = _nearest_centroids(sample, C, 1)[:, 0]
        order = np.argsort(assign, kind="stable")
        counts = np.bincount(assign, minlength=n_clusters)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        used = counts > 0
        sums = np.zeros(C.shape, dtype=np.float64)
        sums[used] = np.add.reduceat(sample[order].astype(np.float64), starts[used], axis=0)
        if not used.all():  # reseed empty clusters with random rows
            sums[~used] = sample[rng.choice(len(sample), int((~used).sum()), replace=False)]
        norm = np.linalg.norm(sums, axis=1, keepdims=True)
        C = (sums / np.where(norm > 0, norm, 1.0)).astype(np.float32)
    return C


def _ivf_search(Z: np.ndarray, k: int, probes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top-k by an inverted file: each row against its ``probes`` nearest clusters."""
    n = len(Z)
    rng = np.random.default_rng(seed)
    n_clusters = max(1, int(round(np.sqrt(n))))
    C = _kmeans(Z, n_clusters, rng)
    probes = min(probes, n_clusters)
    near = _nearest_centroids(Z, C, probes)          # (N, probes); column 0: own cluster
    home = near[:, 0]
    members = np.argsort(home, kind="stable")
    starts = np.searchsorted(home[members], np.arange(n_clusters + 1))
    slot_of = np.empty(n, dtype=np.int64)             # a row's position within its cluster
    slot_of[members] = np.arange(n) - starts[home[members]]
    flat = near.ravel()                               # entry p: row p // probes
    askers = np.argsort(flat, kind="stable")          # grouped by the cluster probed
    ask_starts = np.searchsorted(flat[askers], np.arange(n_clusters + 1))
    best_idx = np.full((n, k), -1, dtype=np.int64)
    best_sim = np.full((n, k), -np.inf, dtype=np.float32)
    for c in range(n_clusters):
        mem = members[starts[c]:starts[c + 1]]
        rows = askers[ask_starts[c]:ask_starts[c + 1]] // probes   # distinct rows
        if len(mem) == 0 or len(rows) == 0:
            continue
        Zm_t = np.ascontiguousarray(Z[mem].T)
        step = max(1, _BLOCK_FLOATS // len(mem))
        for lo in range(0, len(rows), step):
            q = rows[lo:lo + step]
            S = np.empty((len(q), k + len(mem)), dtype=np.float32)
            S[:, :k] = best_sim[q]                    # the best so far compete with the members
            np.matmul(Z[q], Zm_t, out=S[:, k:])
            own = np.flatnonzero(home[q] == c)
            S[own, k + slot_of[q[own]]] = -np.inf
            pick, best_sim[q] = _topk(S, k)
            known = np.take_along_axis(best_idx[q], np.minimum(pick, k - 1), axis=1)
            best_idx[q] = np.where(pick < k, known, mem[np.maximum(pick - k, 0)])
    return best_idx, best_sim


def _pair_cosines(X: Any, norms: np.ndarray, rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Exact cosine of each row with each of its candidates (-1: none -> -inf), (r, C)."""
    r, c = cand.shape
    ok = cand >= 0
    flat = np.where(ok, cand, rows[:, None]).ravel()
    if _is_sparse(X):
        # the rows, densified over the columns they use only (plus one zero column); every
        # candidate has a non-zero row, so each reduceat segment is non-empty
        R = X[rows]
        used, where = np.unique(R.indices, return_inverse=True)
        u = len(used) + 1
        Xr = np.zeros(r * u, dtype=np.float64)
        Xr[np.repeat(np.arange(r) * u, np.diff(R.indptr)) + where] = R.data
        lookup = np.full(X.shape[1], u - 1, dtype=np.int64)
        lookup[used] = np.arange(u - 1)
        Cm = X[flat]
        pos = lookup.take(Cm.indices)
        pos += np.repeat(np.arange(r, dtype=np.int64) * u, np.diff(Cm.indptr[::c]))
        prod = Xr.take(pos)
        prod *= Cm.data
        dots = np.add.reduceat(prod, Cm.indptr[:-1]).reshape(r, c)
    else:
        Xr = np.asarray(X[rows], dtype=np.float64)
        dots = np.einsum("rd,rcd->rc", Xr, np.asarray(X[flat], dtype=np.float64).reshape(r, c, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dots / (norms[rows][:, None] * norms[flat].reshape(r, c))
    return np.where(ok, np.clip(cos, -1.0, 1.0), -np.inf)


def _rerank(X: Any, norms: np.ndarray, rows: np.ndarray, cand: np.ndarray,
            k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k candidates of each row with the highest exact cosine (unordered), in row chunks."""
    r, c = cand.shape
    idx = np.empty((r, k), dtype=np.int64)
    sim = np.empty((r, k), dtype=np.float64)
    if _is_sparse(X):  # the candidates' non-zeros (~40 bytes each), the rows densified
        per_row = 4 * (c + 1) * int(np.ceil(X.nnz / max(1, X.shape[0])))
    else:
        per_row = c * X.shape[1]
    step = max(1, _BLOCK_FLOATS // max(1, per_row))
    for lo in range(0, r, step):
        cos = _pair_cosines(X, norms, rows[lo:lo + step], cand[lo:lo + step])
        pick, sim[lo:lo + step] = _topk_small(cos, k)
        idx[lo:lo + step] = np.take_along_axis(cand[lo:lo + step], pick, axis=1)
    return idx, sim


def nearest_neighbours(X: Any, k: int = NEIGHBOURS, *, max_dims: int = MAX_DIMS,
                       exact_rows: int = EXACT_ROWS, probes: int = PROBES,
                       rerank: int = RERANK, seed: int = 0) -> Neighbours:
    """The ``k`` most cosine-similar other rows of each row of ``X`` (module docstring).

    ``sim(i, j) = <x_i, x_j> / (||x_i|| ||x_j||)``. The search runs on the unit rows, projected
    on at most ``max_dims`` dimensions; with a projection, the ``max(k, rerank)`` best
    candidates there are re-ranked by their exact cosine on ``X``. Rows that are all zero have
    no neighbours and are nobody's. Neighbours are ordered by similarity, then row index.

    Parameters
    ----------
    X : ndarray (N, D) or scipy sparse matrix
        Features (the model's input).
    k : int
        Neighbours per row (fewer where fewer other rows exist).
    max_dims, exact_rows, probes, rerank, seed
        Search dimensions; exact search up to ``exact_rows`` rows, ``probes`` clusters probed
        above; candidates re-ranked after a projection; seed of the projection and clustering.

    Examples
    --------
    >>> nb = nearest_neighbours([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.0, 0.0]], k=2)
    >>> nb.index.tolist()
    [[1, 2], [0, 2], [1, 0], [-1, -1]]
    >>> nb.similarity[0].round(3).tolist()
    [0.994, 0.0]
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"nearest_neighbours: k must be a positive integer; got {k!r}.")
    X = _check_features(X, "nearest_neighbours")
    n = X.shape[0]
    index = np.full((n, k), -1, dtype=np.int64)
    sim = np.full((n, k), np.nan, dtype=np.float32)
    Z, norms, projected = _search_space(X, max_dims, seed)
    rows = np.flatnonzero(norms > 0)
    kk = min(k, len(rows) - 1)
    if kk < 1:
        return Neighbours(index, sim)
    search_k = min(max(kk, rerank), len(rows) - 1) if projected else kk
    Zv = Z[rows]
    if len(rows) <= exact_rows:
        idx, vals = _exact_search(Zv, search_k)
    else:
        idx, vals = _ivf_search(Zv, search_k, probes, seed)
    idx = np.where(np.isfinite(vals), rows[np.clip(idx, 0, None)], -1)
    if projected:
        idx, vals = _rerank(X, norms, rows, idx, kk)
    found = np.isfinite(vals) & (idx >= 0)
    key = np.where(found, -vals.astype(np.float64), np.inf)
    order = np.lexsort((idx, key), axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    found = np.take_along_axis(found, order, axis=1)
    index[rows, :kk] = np.where(found, idx, -1)
    sim[rows, :kk] = np.where(found, vals, np.nan)
    return Neighbours(index, sim)


def _majority(neigh_labels: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Most frequent label per row among the present neighbours (ties: lowest label; -1: none)."""
    lab = np.where(present, neigh_labels, -1)
    occ = ((lab[:, :, None] == lab[:, None, :]) & present[:, None, :]).sum(axis=2) * present
    best = occ.max(axis=1)
    big = np.iinfo(np.int64).max
    cls = np.where((occ == best[:, None]) & present, lab, big).min(axis=1)
    return np.where(best > 0, cls, -1)


def _agreement(index: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    idx = index[:, :k]
    present = idx >= 0
    nl = labels[np.clip(idx, 0, None)]
    n_present = present.sum(axis=1)
    same = ((nl == labels[:, None]) & present).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.where(n_present > 0, same / np.maximum(n_present, 1), np.nan)
    return agree.astype(np.float64), _majority(nl, present)


def neighbour_agreement(X: Any, labels: Any, k: int = NEIGHBOURS, *, max_dims: int = MAX_DIMS,
                        exact_rows: int = EXACT_ROWS, seed: int = 0,
                        neighbours: Neighbours | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Share of each row's k nearest neighbours with the same given label, and their majority.

    ``a_i = (1 / |N_k(i)|) sum_{j in N_k(i)} 1[y_j = y_i]`` and
    ``m_i = argmax_c sum_{j in N_k(i)} 1[y_j = c]`` (ties to the lowest class), where
    ``N_k(i)`` are the k rows most cosine-similar to row i (itself excluded,
    :func:`nearest_neighbours`). NaN and -1 for rows without neighbours (all-zero rows, N = 1).

    Parameters
    ----------
    X : ndarray (N, D) or scipy sparse matrix
        The model's input features (TF-IDF rows, embeddings, standardised features).
    labels : array-like (N,) of int
        Given labels.
    k : int
        Neighbours per row.
    neighbours : Neighbours, optional
        A precomputed :func:`nearest_neighbours` of ``X`` with at least ``k`` columns.

    Returns
    -------
    agreement : ndarray (N,) float64 in [0, 1]
    majority : ndarray (N,) int64

    Examples
    --------
    >>> X = [[1.0, 0.0], [0.9, 0.1], [0.8, 0.3], [0.0, 1.0], [0.1, 0.9]]
    >>> a, m = neighbour_agreement(X, [0, 0, 1, 1, 1], k=2)
    >>> a.tolist(), m.tolist()
    ([0.5, 0.5, 0.0, 1.0, 1.0], [0, 0, 0, 1, 1])
    """
    y = np.asarray(labels, dtype=np.int64)
    if neighbours is None:
        X = _check_features(X, "neighbour_agreement")
        if X.shape[0] != y.shape[0]:
            raise InputError(f"neighbour_agreement: X has {X.shape[0]} rows but labels has "
                             f"{y.shape[0]}.")
        neighbours = nearest_neighbours(X, k, max_dims=max_dims, exact_rows=exact_rows, seed=seed)
    return _agreement(neighbours.index, y, k)


# ---------------------------------------------------------------------- (d) duplicates
class Duplicates(NamedTuple):
    """Result of :func:`conflicting_duplicates`, per row."""

    ids: np.ndarray     # (N,) object: ids of the conflicting duplicates joined by ';' ('' if none)
    count: np.ndarray   # (N,) int64: how many there are (ids lists at most MAX_LISTED)
    kind: np.ndarray    # (N,) object: 'exact', 'near', 'exact+near' or ''


def normalize_text(text: Any) -> str:
    """Casefolded text with runs of whitespace collapsed to one space (the exact-duplicate key).

    >>> normalize_text("  Great\\tFILM ")
    'great film'
    """
    return " ".join(str(text).casefold().split())


def _exact_groups(texts: Sequence[Any] | None, X: Any) -> np.ndarray | None:
    """Group code per row (-1: in no group) by normalised text, else by identical feature row."""
    if texts is not None:
        keys = np.array([normalize_text("" if t is None or (isinstance(t, float) and t != t)
                                        else t) for t in texts], dtype=object)
        codes = pd.factorize(keys)[0].astype(np.int64)
        codes[keys == ""] = -1
        return codes
    if X is None:
        return None
    from hashlib import blake2b

    def digest(*parts: np.ndarray) -> bytes:  # 16 bytes per row, whatever its width
        h = blake2b(digest_size=16)
        for part in parts:
            h.update(part.tobytes())
        return h.digest()

    n = X.shape[0]
    keys = np.empty(n, dtype=object)
    empty = np.zeros(n, dtype=bool)
    if _is_sparse(X):
        Xc = X.tocsr().copy()
        Xc.eliminate_zeros()
        Xc.sort_indices()
        data = Xc.data.astype(np.float64) + 0.0                # -0.0 == 0.0
        for i, (a, b) in enumerate(zip(Xc.indptr[:-1].tolist(), Xc.indptr[1:].tolist())):
            keys[i] = digest(Xc.indices[a:b].astype(np.int64), data[a:b])
        empty = np.diff(Xc.indptr) == 0
    else:
        A = np.asarray(X)
        step = max(1, _BLOCK_FLOATS // max(1, A.shape[1]))
        for lo in range(0, n, step):
            blk = np.ascontiguousarray(A[lo:lo + step], dtype=np.float64) + 0.0
            keys[lo:lo + step] = [digest(row) for row in blk]
            empty[lo:lo + step] = ~blk.any(axis=1)
    codes = pd.factorize(keys)[0].astype(np.int64)
    codes[empty] = -1
    return codes


def _exact_cosines(X: Any, i: np.ndarray, j: np.ndarray, norms: np.ndarray) -> np.ndarray:
    out = np.empty(len(i), dtype=np.float64)
    step = 4096
    for lo in range(0, len(i), step):
        a, b = i[lo:lo + step], j[lo:lo + step]
        if _is_sparse(X):
            dots = np.asarray(X[a].multiply(X[b]).sum(axis=1), dtype=np.float64).ravel()
        else:
            dots = np.einsum("ij,ij->i", np.asarray(X[a], dtype=np.float64),
                             np.asarray(X[b], dtype=np.float64))
        out[lo:lo + step] = dots / (norms[a] * norms[b])
    return out


def conflicting_duplicates(labels: Any, ids: Any, texts: Sequence[Any] | None = None,
                           X: Any = None, *, threshold: float = NEAR_DUPLICATE,
                           neighbours: Neighbours | None = None, seed: int = 0) -> Duplicates:
    """Rows with an exact or near duplicate that carries a different label.

    *Exact*: the same :func:`normalize_text` (when ``texts`` is given; empty texts are
    skipped), else an identical feature row of ``X`` (all-zero rows skipped). *Near*: cosine
    similarity ``<x_i, x_j> / (||x_i|| ||x_j||) >= threshold`` on ``X``, looked for among each
    row's :data:`DUPLICATE_CANDIDATES` nearest neighbours (:func:`nearest_neighbours`) and
    confirmed in float64. Row i conflicts with row j when one of these holds and
    ``y_i != y_j``; the relation is symmetric.

    Parameters
    ----------
    labels : array-like (N,) of int
    ids : array-like (N,)
        Example ids, listed in the result.
    texts : sequence of str, optional
    X : ndarray (N, D) or scipy sparse matrix, optional
    threshold : float
        Near-duplicate cosine similarity (default :data:`NEAR_DUPLICATE`).
    neighbours : Neighbours, optional
        A precomputed :func:`nearest_neighbours` of ``X``.

    Returns
    -------
    Duplicates
        ``ids`` (at most :data:`MAX_LISTED` per row, exact ones first, in row order, joined by
        ``';'``), ``count`` and ``kind`` per row.

    Examples
    --------
    >>> d = conflicting_duplicates([0, 1, 0, 1], [10, 11, 12, 13],
    ...                            texts=["Good  film", "good film", "bad", "other"])
    >>> d.ids.tolist(), d.count.tolist(), d.kind.tolist()
    (['11', '10', '', ''], [1, 1, 0, 0], ['exact', 'exact', '', ''])
    >>> X = [[1.0, 0.0], [0.99, 0.05], [0.0, 1.0]]
    >>> conflicting_duplicates([0, 1, 1], ["a", "b", "c"], X=X).ids.tolist()
    ['b', 'a', '']
    """
    y = np.asarray(labels, dtype=np.int64)
    id_arr = np.asarray(ids)
    n = len(y)
    if len(id_arr) != n or (texts is not None and len(texts) != n):
        raise InputError("conflicting_duplicates: labels, ids and texts must have one entry per "
                         "row.")
    if not 0.0 < float(threshold) <= 1.0:
        raise InputError(f"conflicting_duplicates: threshold must be in (0, 1]; got {threshold!r}.")
    if X is not None:
        X = _check_features(X, "conflicting_duplicates")
        if X.shape[0] != n:
            raise InputError(f"conflicting_duplicates: X has {X.shape[0]} rows but labels has {n}.")
    exact_count = np.zeros(n, dtype=np.int64)
    listed: dict[int, list[int]] = {}
    groups = _exact_groups(texts, X)
    if groups is not None and n:
        grouped = groups >= 0
        order = np.flatnonzero(grouped)[np.argsort(groups[grouped], kind="stable")]
        bounds = np.flatnonzero(np.diff(groups[order])) + 1
        for members in np.split(order, bounds):
            if len(members) < 2:
                continue
            lab = y[members]
            if (lab == lab[0]).all():
                continue
            for value in np.unique(lab):
                mine = members[lab == value]
                others = members[lab != value]
                exact_count[mine] = len(others)
                head = others[:MAX_LISTED].tolist()
                for i in mine.tolist():
                    listed[i] = list(head)
    near_sets: dict[int, set[int]] = {}
    if X is not None and n > 1:
        if neighbours is None:
            neighbours = nearest_neighbours(X, DUPLICATE_CANDIDATES, seed=seed)
        idx, sim = neighbours.index, neighbours.similarity
        i, c = np.nonzero((idx >= 0) & (np.nan_to_num(sim, nan=-1.0) >= threshold - 1e-4))
        j = idx[i, c]
        keep = (y[i] != y[j])
        if groups is not None:
            keep &= ~((groups[i] >= 0) & (groups[i] == groups[j]))
        i, j = i[keep], j[keep]
        if len(i):
            a, b = np.minimum(i, j), np.maximum(i, j)
            pairs = np.unique(np.stack([a, b], axis=1), axis=0)
            cos = _exact_cosines(X, pairs[:, 0], pairs[:, 1], _row_norms(X))
            for p, q in pairs[cos >= threshold].tolist():
                near_sets.setdefault(p, set()).add(q)
                near_sets.setdefault(q, set()).add(p)
    out_ids = np.full(n, "", dtype=object)
    count = exact_count.copy()
    kind = np.full(n, "", dtype=object)
    for i in set(listed) | set(near_sets):
        near = sorted(near_sets.get(i, ()))
        count[i] += len(near)
        both = listed.get(i, []) + near
        out_ids[i] = ";".join(str(v) for v in id_arr[both[:MAX_LISTED]].tolist())
        kind[i] = "+".join(k for k, has in (("exact", exact_count[i] > 0), ("near", bool(near)))
                           if has)
    return Duplicates(out_ids, count, kind)


# ------------------------------------------------------------------------------ frame
def feature_matrix(X: Any) -> Any:
    """``X`` when it is a feature matrix (ndarray or scipy sparse), else None (e.g. tokens)."""
    if X is None:
        return None
    if _is_sparse(X):
        return X
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "biuf":
        return X
    return None


def neighbourhood_evidence(ids: Any, labels: Any, classes: Sequence[str], *,
                           features: Any = None, texts: Sequence[Any] | None = None,
                           k: int = NEIGHBOURS, seed: int = 0) -> pd.DataFrame:
    """Evidence (c) and (d), which depend on the data only (the same for every seed).

    Columns ``id``, ``neighbour_agreement``, ``neighbour_label``, ``conflicting_duplicates``,
    ``n_conflicting_duplicates``, ``duplicate_kind``. ``features`` that are not a matrix
    (e.g. the tokens of ``--model finetune``) give no neighbours: NaN / None.
    """
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    names = np.asarray([str(c) for c in classes] + [None], dtype=object)  # -1 -> None
    X = feature_matrix(features)
    if X is not None:
        X = _check_features(X, "compute_evidence")
        if X.shape[0] != n:
            raise InputError(f"compute_evidence: features have {X.shape[0]} rows but labels {n}.")
    agree = np.full(n, np.nan)
    major = np.full(n, -1, dtype=np.int64)
    nb = None
    if X is not None and n > 1:
        nb = nearest_neighbours(X, max(k, DUPLICATE_CANDIDATES), seed=seed)
        agree, major = neighbour_agreement(None, y, k, neighbours=nb)
    dup = conflicting_duplicates(y, ids, texts, X, neighbours=nb, seed=seed)
    return pd.DataFrame({
        "id": np.asarray(ids),
        "neighbour_agreement": agree,
        "neighbour_label": names[major],
        "conflicting_duplicates": dup.ids,
        "n_conflicting_duplicates": dup.count,
        "duplicate_kind": dup.kind,
    })


def reasons(frame: pd.DataFrame) -> np.ndarray:
    """Why each row is a suspect ('' when it is not one), from the columns of ``frame``.

    A suspect is flagged (``is_label_error``) or has a conflicting duplicate. Uses ``id``,
    ``is_label_error`` and ``label_error_score`` (when present), ``label_name`` (to name the
    duplicates' labels) and the duplicate columns.

    Examples
    --------
    >>> f = pd.DataFrame({"id": [1, 2, 3], "label_name": ["pos", "neg", "neg"],
    ...                   "is_label_error": [True, False, False],
    ...                   "label_error_score": [0.91, 0.2, 0.1],
    ...                   "conflicting_duplicates": ["2", "1", ""],
    ...                   "n_conflicting_duplicates": [1, 1, 0],
    ...                   "duplicate_kind": ["exact", "exact", ""]})
    >>> reasons(f).tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['likely mislabeled (label-error score 0.91); exact duplicate of id 2 (neg)',
     'exact duplicate of id 1 (pos)', '']
    """
    n = len(frame)
    out = np.full(n, "", dtype=object)
    flag = (frame["is_label_error"].to_numpy(dtype=bool) if "is_label_error" in frame
            else np.zeros(n, dtype=bool))
    dup_count = (frame["n_conflicting_duplicates"].fillna(0).to_numpy(dtype=np.int64)
                 if "n_conflicting_duplicates" in frame else np.zeros(n, dtype=np.int64))
    rows = np.flatnonzero(flag | (dup_count > 0))
    if not len(rows):
        return out
    score = (frame["label_error_score"].to_numpy(dtype=np.float64) if "label_error_score" in frame
             else np.full(n, np.nan))
    label_of: dict[str, str] = {}
    if "label_name" in frame:
        label_of = dict(zip(frame["id"].astype(str), frame["label_name"].astype(str)))
    listed = frame["conflicting_duplicates"].to_numpy(dtype=object) if dup_count.any() else None
    kinds = frame["duplicate_kind"].to_numpy(dtype=object) if dup_count.any() else None
    for i in rows.tolist():
        parts = []
        if flag[i]:
            parts.append(f"likely mislabeled (label-error score {score[i]:.2f})"
                         if np.isfinite(score[i]) else "likely mislabeled")
        if dup_count[i] > 0:
            assert listed is not None and kinds is not None
            dup_ids = [s for s in str(listed[i]).split(";") if s][:3]
            shown = ", ".join(f"id {d} ({label_of[d]})" if d in label_of else f"id {d}"
                              for d in dup_ids)
            more = int(dup_count[i]) - len(dup_ids)
            what = {"exact": "exact duplicate", "near": "near-duplicate"}.get(
                str(kinds[i]), "exact or near duplicate")
            parts.append(f"{what} of {shown}" + (f" and {more} more" if more > 0 else "")
                         + " with another label" * (not label_of))
        out[i] = "; ".join(parts)
    return out


def compute_evidence(ids: Any, labels: Any, classes: Sequence[str], *, pred: Any = None,
                     heldout_prob: Any = None, features: Any = None,
                     texts: Sequence[Any] | None = None, is_label_error: Any = None,
                     label_error_score: Any = None, k: int = NEIGHBOURS, seed: int = 0,
                     neighbourhood: pd.DataFrame | None = None) -> pd.DataFrame:
    """The evidence of every example as a DataFrame: ``id`` and :data:`COLUMNS`.

    Parameters
    ----------
    ids, labels : array-like (N,)
        Example ids and given labels (class indices).
    classes : sequence of str
        Class names; labels in the output are names.
    pred : array-like (N, E), optional
        Per-epoch argmax, for (a); several seeds' epochs may be concatenated.
    heldout_prob : array-like (N,), optional
        :func:`heldout_gold_probability` (b); NaN when absent.
    features, texts : optional
        The model's input (ndarray or scipy sparse; anything else is ignored) and the texts,
        for (c) and (d).
    is_label_error, label_error_score : array-like (N,), optional
        The detector's flag and score, for ``reason``.
    neighbourhood : DataFrame, optional
        :func:`neighbourhood_evidence` computed earlier (reused across seeds).

    Columns
    -------
    kept_predicting (class name; missing where the model only ever predicted the given label),
    kept_predicting_epochs, epochs_recorded : (a) the class
    predicted most often instead of the given label, in how many of the ``epochs_recorded``
    epochs; heldout_given_prob : (b); neighbour_agreement, neighbour_label : (c);
    conflicting_duplicates (ids joined by ';'), n_conflicting_duplicates, duplicate_kind : (d);
    reason : :func:`reasons` ('' for rows that are not suspects).

    Examples
    --------
    >>> ev = compute_evidence([0, 1, 2], [0, 1, 1], ["neg", "pos"],
    ...                       pred=[[1, 1, 0], [1, 1, 1], [0, 1, 0]],
    ...                       heldout_prob=[0.2, 0.9, 0.4], texts=["ok", "fine", "OK"],
    ...                       is_label_error=[True, False, False])
    >>> ev["kept_predicting"].fillna("-").tolist(), ev["kept_predicting_epochs"].tolist()
    (['pos', '-', 'neg'], [2, 0, 2])
    >>> ev["conflicting_duplicates"].tolist()
    ['2', '', '0']
    >>> ev["reason"].tolist()[2]
    'exact duplicate of id 0 (neg)'
    """
    y = np.asarray(labels, dtype=np.int64)
    id_arr = np.asarray(ids)
    n = len(y)
    if len(id_arr) != n:
        raise InputError(f"compute_evidence: {len(id_arr)} ids but {n} labels.")
    names = np.asarray([str(c) for c in classes] + [None], dtype=object)
    if neighbourhood is None:
        neighbourhood = neighbourhood_evidence(id_arr, y, classes, features=features, texts=texts,
                                               k=k, seed=seed)
    elif len(neighbourhood) != n:
        raise InputError(f"compute_evidence: neighbourhood has {len(neighbourhood)} rows, not {n}.")
    if pred is not None:
        p = np.asarray(pred)
        kept, kept_n = persistent_prediction(p, y)
        n_epochs = np.full(n, p.shape[1], dtype=np.int64)
    else:
        kept, kept_n, n_epochs = (np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64),
                                  np.zeros(n, dtype=np.int64))
    held = (np.full(n, np.nan) if heldout_prob is None
            else np.asarray(heldout_prob, dtype=np.float64))
    if held.shape != (n,):
        raise InputError(f"compute_evidence: heldout_prob must have shape ({n},); got "
                         f"{held.shape}.")
    frame = pd.DataFrame({
        "id": id_arr,
        "kept_predicting": names[kept],
        "kept_predicting_epochs": kept_n,
        "epochs_recorded": n_epochs,
        "heldout_given_prob": held,
    })
    for col in ("neighbour_agreement", "neighbour_label", "conflicting_duplicates",
                "n_conflicting_duplicates", "duplicate_kind"):
        frame[col] = neighbourhood[col].to_numpy()
    helper = frame[["id", "conflicting_duplicates", "n_conflicting_duplicates",
                    "duplicate_kind"]].copy()
    helper["label_name"] = names[y]
    helper["is_label_error"] = (np.zeros(n, dtype=bool) if is_label_error is None
                                else np.asarray(is_label_error, dtype=bool))
    if label_error_score is not None:
        helper["label_error_score"] = np.asarray(label_error_score, dtype=np.float64)
    frame["reason"] = reasons(helper)
    return frame


# ------------------------------------------------------------------------------ store
def write_evidence(run_dir: str | os.PathLike[str], frame: pd.DataFrame) -> Path:
    """Write ``frame`` to ``RUN/evidence.parquet`` atomically; returns the path."""
    missing = [c for c in ("id", *COLUMNS) if c not in frame.columns]
    if missing:
        raise InputError(f"write_evidence: the frame lacks column(s) {', '.join(missing)}.")
    return store.write_run_table(run_dir, EVIDENCE_FILE, frame)


def read_evidence(run_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    """``RUN/evidence.parquet``, or None when the run has none (e.g. a user's own loop)."""
    return store.read_run_table(run_dir, EVIDENCE_FILE)


def attach_evidence(metrics: pd.DataFrame, evidence: pd.DataFrame | None) -> pd.DataFrame:
    """``metrics`` with the evidence columns joined by id (``reason`` recomputed from the
    frame's own flags, so that a different ``--epochs`` window keeps it right).

    Rows the evidence lacks get NaN / None / ''. ``attrs`` are kept. Without evidence the
    frame is returned unchanged.
    """
    if evidence is None:
        return metrics
    pos = pd.Index(evidence["id"].astype(str)).get_indexer(metrics["id"].astype(str))
    found = pos >= 0
    take = np.where(found, pos, 0)
    out = metrics.drop(columns=[c for c in COLUMNS if c in metrics.columns])
    attrs = dict(metrics.attrs)
    for col in COLUMNS:
        if col not in evidence.columns or col == "reason":
            continue
        values = evidence[col].to_numpy()[take]
        if values.dtype.kind == "f":
            values = np.where(found, values, np.nan)
        elif values.dtype.kind in "iu":
            values = np.where(found, values, 0)
        else:
            fill = "" if col in ("conflicting_duplicates", "duplicate_kind") else None
            values = np.where(found, values, fill).astype(object)
        out[col] = values
    out["reason"] = reasons(out)
    out.attrs.update(attrs)
    return out


def _fmt_label(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def describe_evidence(record: Mapping[str, Any]) -> str:
    """One line of evidence for an example: a metrics row with the evidence columns.

    Examples
    --------
    >>> describe_evidence({"label_name": "pos", "kept_predicting": "neg",
    ...                    "kept_predicting_epochs": 5, "epochs_recorded": 6,
    ...                    "heldout_given_prob": 0.08, "neighbour_agreement": 0.2,
    ...                    "neighbour_label": "neg"})  # doctest: +ELLIPSIS
    'predicted neg in 5 of 6 epochs; held-out p(pos) 0.08; 20% of nearest ... pos (most: neg)'
    """
    given = _fmt_label(record.get("label_name")) or "given label"
    parts = []
    epochs = record.get("epochs_recorded")
    if epochs is not None and not pd.isna(epochs) and int(epochs) > 0:
        kept = _fmt_label(record.get("kept_predicting"))
        if kept is None:
            parts.append(f"predicted {given} in all {int(epochs)} epochs")
        else:
            parts.append(f"predicted {kept} in {int(record.get('kept_predicting_epochs') or 0)} "
                         f"of {int(epochs)} epochs")
    held = record.get("heldout_given_prob")
    if held is not None and not pd.isna(held):
        parts.append(f"held-out p({given}) {float(held):.2f}")
    agree = record.get("neighbour_agreement")
    if agree is not None and not pd.isna(agree):
        major = _fmt_label(record.get("neighbour_label"))
        parts.append(f"{float(agree):.0%} of nearest neighbours labelled {given}"
                     + (f" (most: {major})" if major not in (None, given) else ""))
    return "; ".join(parts)


def evidence_texts(frame: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per row of a metrics frame, why it is a suspect and its :func:`describe_evidence` ('' for
    rows that are not suspects); ``(None, None)`` when the frame carries no evidence."""
    if "reason" not in frame.columns:
        return None, None
    reason = frame["reason"].fillna("").astype(str).to_numpy(dtype=object)
    evidence = np.full(len(frame), "", dtype=object)
    rows = np.flatnonzero(reason != "")
    if len(rows):
        evidence[rows] = [describe_evidence(r) for r in frame.iloc[rows].to_dict("records")]
    return reason, evidence
