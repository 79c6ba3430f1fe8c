"""Shared tiny problems for the integration tests (seeded, offline, a few dozen rows)."""

from __future__ import annotations

import os

import numpy as np
import pytest

# Keras 3 picks its backend at import; these tests use torch (no TensorFlow needed).
os.environ.setdefault("KERAS_BACKEND", "torch")

N_EXAMPLES = 24
N_FEATURES = 4
N_CLASSES = 3


def tiny_data(n: int = N_EXAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X float32 (n, 4), y int64 (n,) in 0..2, ids str (n,)) with a learnable signal and noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n)
    centers = rng.normal(0.0, 1.5, (N_CLASSES, N_FEATURES))
    X = (centers[y] + rng.normal(0.0, 1.0, (n, N_FEATURES))).astype(np.float32)
    ids = np.array([f"ex-{i:03d}" for i in range(n)])
    return X, y.astype(np.int64), ids


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tiny_data()
