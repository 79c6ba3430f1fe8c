"""Softmax, log-softmax and the one rule for "these outputs are probabilities".

Every function shifts each row by its maximum first, so that ``exp`` never overflows, and
computes in float64 whatever the input dtype (float32 logits, memory maps), except the
per-epoch summary of a run's stored logits (:func:`epoch_softmax_summary`), which keeps their
float32 precision for speed and averages in float64. For logits ``z``,

- ``logsumexp(z) = m + log sum_k exp(z_k - m)`` with ``m = max_k z_k``;
- ``log_softmax(z) = (z - m) - log sum_k exp(z_k - m)``;
- ``softmax(z) = exp(z - m) / sum_k exp(z_k - m)``;
- ``label_log_prob(z, y) = z_y - logsumexp(z)``, the log of ``p = softmax(z)[y]``.

Rows are independent, so a result computed block by block (``max_floats``) is bit-identical
to the one computed in one piece; blocks bound the float64 temporaries for large inputs.

A row is a *probability vector* when its entries lie in [0, 1] and sum to 1 within
:data:`PROB_SUM_ATOL`. Outputs declared as probabilities must pass that test row by row
(:func:`non_probability_rows`); outputs declared as logits are suspected of being
probabilities when every row passes it (:func:`looks_like_probs`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["MIN_PROB", "PROBS_MIN_ROWS", "PROB_SUM_ATOL", "epoch_softmax_summary",
           "label_log_prob", "log_probs", "log_softmax", "logsumexp", "looks_like_probs", "non_probability_rows", "softmax"]

#: Probabilities are clipped to this before the log, so that p = 0 gives a finite log-probability.
MIN_PROB = 1e-12
#: A probability vector sums to 1 within this. Wide enough for softmax outputs computed in half
#: precision (float16 / bfloat16 round each entry by up to ~4e-3 relative); logits of a real
#: model do not fall in [0, 1] and sum to 1 this closely on every row of a batch.
PROB_SUM_ATOL = 1e-3
#: Fewer rows than this are never suspected of being probabilities: one row of logits can sum
#: to 1 by chance, every row of a batch cannot.
PROBS_MIN_ROWS = 2
#: Default bound on the float64 elements one block of :func:`label_log_prob` holds (64 MB).
BLOCK_FLOATS = 1 << 23


def _shifted(z: Any, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``(z - m, m)`` in float64, ``m`` the maximum along ``axis`` (kept as a length-1 axis)."""
    z = np.asarray(z).astype(np.float64, copy=False)
    m = z.max(axis=axis, keepdims=True)
    return z - m, m


def logsumexp(z: Any, axis: int = -1) -> np.ndarray:
    """``log sum_k exp(z_k)`` along ``axis``, float64, without overflow.

    >>> logsumexp(np.array([[0.0, 0.0], [1000.0, 1000.0]])).round(4).tolist()
    [0.6931, 1000.6931]
    """
    s, m = _shifted(z, axis)
    return np.log(np.exp(s).sum(axis=axis)) + np.squeeze(m, axis=axis)


def log_softmax(z: Any, axis: int = -1) -> np.ndarray:
    """``log softmax(z)`` along ``axis``, float64: ``(z - m) - log sum_k exp(z_k - m)``.

    >>> np.exp(log_softmax(np.array([[0.0, 0.0]]))).tolist()
    [[0.5, 0.5]]
    """
    s, _ = _shifted(z, axis)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def softmax(z: Any, axis: int = -1) -> np.ndarray:
    """``softmax(z)`` along ``axis``, float64: ``exp(z - m) / sum_k exp(z_k - m)``.

    >>> softmax(np.array([[0.0, np.log(3.0)]])).round(4).tolist()
    [[0.25, 0.75]]
    """
    s, _ = _shifted(z, axis)
    e = np.exp(s)
    return e / e.sum(axis=axis, keepdims=True)


def _row_blocks(n: int, k: int, max_floats: int) -> Iterator[slice]:
    step = max(1, max_floats // max(1, k))
    for start in range(0, n, step):
        yield slice(start, start + step)


def label_log_prob(z: Any, labels: Any, *, max_floats: int = BLOCK_FLOATS) -> np.ndarray:
    """``log softmax(z_i)[y_i] = z_iy - logsumexp(z_i)`` for logits (n, K) and labels (n,), float64.

    Works on blocks of at most ``max_floats`` float64 elements (a memory map is read one
    block at a time); the result does not depend on the block size.

    >>> np.exp(label_log_prob(np.array([[2.0, 0.0], [0.0, 0.0]]), [0, 1])).round(4).tolist()
    [0.8808, 0.5]
    """
    y = np.asarray(labels, dtype=np.int64)
    n, k = np.shape(z)
    out = np.empty(n, dtype=np.float64)
    for rows in _row_blocks(n, k, max_floats):
        block = np.asarray(z[rows]).astype(np.float64, copy=False)
        out[rows] = block[np.arange(len(block)), y[rows]] - logsumexp(block, axis=1)
    return out


def log_probs(p: Any) -> np.ndarray:
    """Probabilities as log-probabilities ``log(max(p, MIN_PROB))``: same softmax, argmax, margin.

    >>> log_probs(np.array([[0.5, 0.5], [1.0, 0.0]])).round(2).tolist()
    [[-0.69, -0.69], [0.0, -27.63]]
    """
    return np.log(np.clip(np.asarray(p, dtype=np.float64), MIN_PROB, 1.0))


def non_probability_rows(out: np.ndarray) -> np.ndarray:
    """(n,) bool: rows of ``out`` (n, K) that are not probability vectors (entries in [0, 1]
    summing to 1 within :data:`PROB_SUM_ATOL`).

    >>> non_probability_rows(np.array([[0.3, 0.7], [0.3, 0.3], [-0.1, 1.1]])).tolist()
    [False, True, True]
    """
    out = np.asarray(out)
    return ((out < 0).any(axis=1) | (out > 1).any(axis=1)
            | (np.abs(out.sum(axis=1, dtype=np.float64) - 1.0) > PROB_SUM_ATOL))


def looks_like_probs(out: np.ndarray) -> bool:
    """True when outputs given as logits (n, K) look like probabilities.

    That is: at least :data:`PROBS_MIN_ROWS` rows, every row a probability vector
    (:func:`non_probability_rows`), and some entry strictly between 0 and 1 (one-hot rows are
    valid logits).

    >>> looks_like_probs(np.array([[0.2, 0.8], [0.6, 0.4]]))
    True
    >>> looks_like_probs(np.array([[1.0, 0.0], [0.0, 1.0]]))
    False
    """
    out = np.asarray(out)
    return bool(out.ndim == 2 and out.shape[0] >= PROBS_MIN_ROWS
                and ((out > 0) & (out < 1)).any() and not non_probability_rows(out).any())


#: Rows per block of :func:`epoch_softmax_summary`: its temporaries (K x rows x E values) stay
#: in the processor's cache instead of going through memory.
SUMMARY_ROWS = 32_768


def epoch_softmax_summary(logits: Any, keep: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """One softmax pass over logits (n, E, K): ``(entropy, probs)``, both float64.

    ``entropy[i] = mean_e H(q_ie)`` with ``H(q) = -sum_k q_k log q_k = log S - sum_k q_k s_k``
    (``s = z - max_k z_k``, ``S = sum_k exp(s_k)``, ``q = exp(s) / S``), and
    ``probs[i] = mean_{e in keep} q_ie`` (all epochs when ``keep`` is None).

    The softmax itself runs in the logits' own precision (float32 for a run's stored logits:
    relative error ~1e-7, the precision the logits were stored with; float64 stays float64);
    the means over epochs are float64. The classes are put on the first axis so that every
    reduction over them is an element-wise operation on contiguous arrays (several times
    faster than reducing a short last axis). Rows are independent: any row range gives the
    same values as the whole (the metrics engine relies on it).

    >>> h, p = epoch_softmax_summary(np.zeros((1, 2, 2), dtype=np.float32))
    >>> h.round(4).tolist(), p.tolist()
    ([0.6931], [[0.5, 0.5]])
    """
    z = np.asarray(logits)
    if z.dtype not in (np.float32, np.float64):
        z = z.astype(np.float64)
    n, _, k = z.shape
    entropy = np.empty(n)
    probs = np.empty((n, k))
    for rows in _row_blocks(n, 1, SUMMARY_ROWS):
        zt = np.moveaxis(z[rows], 2, 0)  # (K, rows, E)
        # a new array, never written into the caller's logits (their layout may already be this)
        s = np.subtract(zt, np.maximum.reduce(zt, axis=0), order="C")
        q = np.exp(s)
        total = np.add.reduce(q, axis=0)
        q /= total
        entropy[rows] = (np.log(total) - np.add.reduce(q * s, axis=0)).mean(axis=1, dtype=np.float64)
        if keep is not None and not keep.all():
            q = q[:, :, keep]
        probs[rows] = q.mean(axis=2, dtype=np.float64).T
    return entropy, probs
