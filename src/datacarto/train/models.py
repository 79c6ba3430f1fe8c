"""Small numpy classifiers trained epoch by epoch, with the logits of every training batch exposed.

Both models keep their feature matrix ``X`` (N, D) — a dense ndarray or a SciPy CSR matrix —
and the integer labels ``y`` (N,) in 0..K-1, and train on any subset of rows:

* ``fit_epoch(rows, rng, on_batch)`` runs one epoch of minibatch training over ``rows`` in a
  random order. ``on_batch(batch_rows, logits)`` receives the logits of the training forward
  pass *before* the update (``capture="pass"``, docs/contract.md §3).
* ``logits(rows)`` is an inference pass (``capture="eval"`` and the held-out curve).

Training minimises the mean softmax cross-entropy ``-(1/B) sum_i log softmax(z_i)[y_i]`` with
Adam (Kingma & Ba 2015) and decoupled weight decay (AdamW, Loshchilov & Hutter 2019):
``w <- w - lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w)``.

They are ours rather than scikit-learn's because ``partial_fit`` does not expose the logits
of the training pass, and ``SGDClassifier`` is one-vs-rest, not a softmax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ..probability import log_softmax

BatchCallback = Callable[[np.ndarray, np.ndarray], None]


class EpochModel(Protocol):
    """What the training loop needs from a model."""

    def fit_epoch(self, rows: np.ndarray, rng: np.random.Generator,
                  on_batch: BatchCallback | None = None) -> None: ...

    def logits(self, rows: np.ndarray) -> np.ndarray: ...


def softmax_xent_grad(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of the mean cross-entropy w.r.t. the logits: ``(softmax(z) - onehot(y)) / B``."""
    g = np.exp(log_softmax(z))
    g[np.arange(len(y)), y] -= 1.0
    return g / len(y)


class Adam:
    """Adam with decoupled weight decay over a list of parameter arrays (updated in place)."""

    def __init__(self, params: list[np.ndarray], *, lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 decay_mask: list[bool] | None = None) -> None:
        self.params = params
        self.lr, self.weight_decay, self.eps = lr, weight_decay, eps
        self.b1, self.b2 = betas
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.decay = decay_mask or [True] * len(params)
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        c1 = 1.0 - self.b1 ** self.t
        c2 = 1.0 - self.b2 ** self.t
        for p, g, m, v, decay in zip(self.params, grads, self.m, self.v, self.decay):
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * (g * g)
            if decay and self.weight_decay:
                p *= 1.0 - self.lr * self.weight_decay
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)


def _batches(rows: np.ndarray, rng: np.random.Generator, batch_size: int) -> list[np.ndarray]:
    order = rows[rng.permutation(len(rows))]
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


class _Base:
    def __init__(self, X: Any, y: np.ndarray, n_classes: int, *, lr: float, weight_decay: float,
                 batch_size: int, seed: int) -> None:
        self.X = X
        self.y = np.asarray(y, dtype=np.int64)
        self.n_classes = n_classes
        self.lr, self.weight_decay, self.batch_size = lr, weight_decay, batch_size
        self.init_rng = np.random.default_rng(seed)

    def _forward(self, Xb: Any) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _backward(self, Xb: Any, cache: Any, gz: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def fit_epoch(self, rows: np.ndarray, rng: np.random.Generator,
                  on_batch: BatchCallback | None = None) -> None:
        """One epoch of minibatch Adam over ``rows`` in a random order."""
        for batch in _batches(np.asarray(rows), rng, self.batch_size):
            Xb = self.X[batch]
            z, cache = self._forward(Xb)
            if on_batch is not None:
                on_batch(batch, z)
            self.opt.step(self._backward(Xb, cache, softmax_xent_grad(z, self.y[batch])))

    def logits(self, rows: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Inference logits (len(rows), K)."""
        rows = np.asarray(rows)
        out = np.empty((len(rows), self.n_classes))
        for start in range(0, len(rows), chunk):
            out[start:start + chunk] = self._forward(self.X[rows[start:start + chunk]])[0]
        return out


class SoftmaxRegression(_Base):
    """Multinomial logistic regression ``z = X W + b``.

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]] * 10)
    >>> y = np.array([0, 1] * 10)
    >>> model = SoftmaxRegression(X, y, 2, lr=0.1, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(20):
    ...     model.fit_epoch(np.arange(20), rng)
    >>> model.logits(np.array([0, 1])).argmax(axis=1).tolist()
    [0, 1]
    """

    def __init__(self, X: Any, y: np.ndarray, n_classes: int, *, lr: float = 0.01,
                 weight_decay: float = 0.0, batch_size: int = 64, seed: int = 0) -> None:
        super().__init__(X, y, n_classes, lr=lr, weight_decay=weight_decay,
                         batch_size=batch_size, seed=seed)
        self.W = np.zeros((X.shape[1], n_classes))
        self.b = np.zeros(n_classes)
        self.opt = Adam([self.W, self.b], lr=lr, weight_decay=weight_decay,
                        decay_mask=[True, False])

    def _forward(self, Xb: Any) -> tuple[np.ndarray, Any]:
        return np.asarray(Xb @ self.W) + self.b, None

    def _backward(self, Xb: Any, cache: Any, gz: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(Xb.T @ gz), gz.sum(axis=0)]


class MLP(_Base):
    """One hidden ReLU layer: ``z = relu(X W1 + b1) W2 + b2`` (He-initialised).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = (X[:, 0] * X[:, 1] > 0).astype(int)          # XOR: not linearly separable
    >>> model = MLP(X, y, 2, hidden=32, lr=0.01, seed=0)
    >>> for _ in range(60):
    ...     model.fit_epoch(np.arange(200), rng)
    >>> bool((model.logits(np.arange(200)).argmax(axis=1) == y).mean() > 0.9)
    True
    """

    def __init__(self, X: Any, y: np.ndarray, n_classes: int, *, hidden: int = 128,
                 lr: float = 0.003, weight_decay: float = 0.0, batch_size: int = 64,
                 seed: int = 0) -> None:
        super().__init__(X, y, n_classes, lr=lr, weight_decay=weight_decay,
                         batch_size=batch_size, seed=seed)
        d = X.shape[1]
        self.W1 = self.init_rng.normal(0.0, np.sqrt(2.0 / d), size=(d, hidden))
        self.b1 = np.zeros(hidden)
        self.W2 = self.init_rng.normal(0.0, np.sqrt(1.0 / hidden), size=(hidden, n_classes))
        self.b2 = np.zeros(n_classes)
        self.opt = Adam([self.W1, self.b1, self.W2, self.b2], lr=lr, weight_decay=weight_decay,
                        decay_mask=[True, False, True, False])

    def _forward(self, Xb: Any) -> tuple[np.ndarray, Any]:
        h = np.maximum(np.asarray(Xb @ self.W1) + self.b1, 0.0)
        return h @ self.W2 + self.b2, h

    def _backward(self, Xb: Any, h: np.ndarray, gz: np.ndarray) -> list[np.ndarray]:
        gW2 = h.T @ gz
        gh = (gz @ self.W2.T) * (h > 0)
        return [np.asarray(Xb.T @ gh), gh.sum(axis=0), gW2, gz.sum(axis=0)]
