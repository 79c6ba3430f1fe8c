"""datacarto.testing: the public conformance check passes a correct adapter and catches broken ones.

The "adapters" here are a few lines over :class:`datacarto.Recorder`, as a third-party author
would write them; no framework is needed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_data

import datacarto
from datacarto.testing import Capture, check_integration, reference

EPOCHS = 3


def _model_outputs(epoch: int) -> np.ndarray:
    X, _, _ = tiny_data()
    w = np.random.default_rng(epoch).normal(size=(X.shape[1], 3))
    return X.astype(np.float64) @ w


def _adapter_run(record: Callable[[datacarto.Recorder, np.ndarray, np.ndarray, np.ndarray], None]
                 ) -> Callable[..., Capture]:
    """``run(path, resume)`` for an adapter whose batch hand-over is ``record``."""
    _, y, ids = tiny_data()

    def run(path: Path, resume: bool) -> Capture:
        capture = Capture()
        rec = datacarto.Recorder(path, num_classes=3)
        for epoch in range(EPOCHS):
            if resume and epoch == 1:  # a fresh adapter on the same run after a "restart"
                rec.close()
                rec = datacarto.Recorder(path)
            logits = _model_outputs(epoch)
            for rows in np.array_split(np.random.default_rng(epoch).permutation(len(y)), 4):
                capture.add_batch(ids[rows], logits[rows], y[rows])
                record(rec, ids[rows], logits[rows], y[rows])
            capture.end_epoch()
            rec.end_epoch()
        rec.close()
        return capture

    return run


def test_a_correct_adapter_passes(tmp_path: Path) -> None:
    _, y, ids = tiny_data()
    full = check_integration(_adapter_run(lambda rec, i, z, t: rec.update(i, z, t)), tmp_path,
                             expected_ids=ids)
    ref = reference(full)
    assert ref["id"].tolist() == sorted(ids.tolist()) and len(full.epochs) == EPOCHS


@pytest.mark.parametrize(("record", "match"), [
    (lambda rec, i, z, t: rec.update(i, z[:, ::-1], t),
     r"conformance: confidence of id 'ex-\d+' is [\d.e-]+ in the run but [\d.e-]+ from the "
     r"captured outputs"),
    (lambda rec, i, z, t: rec.update(i, z, (t + 1) % 3),
     r"conformance: id 'ex-\d+' has label \d in the run, \d captured"),
    (lambda rec, i, z, t: rec.update(i[i != "ex-005"], z[i != "ex-005"], t[i != "ex-005"]),
     r"conformance: epoch 1 misses \['ex-005'\]"),
    (lambda rec, i, z, t: rec.update(i, np.exp(z) / np.exp(z).sum(1, keepdims=True), t),
     r"conformance: (confidence|variability|aum) of id"),
], ids=["swapped-classes", "wrong-labels", "dropped-row", "softmaxed-as-logits"])
def test_a_broken_adapter_is_caught(record, match: str, tmp_path: Path) -> None:  # noqa: ANN001
    _, _, ids = tiny_data()
    with pytest.raises(AssertionError, match=match), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Recorder.update.*look like probabilities", UserWarning)
        check_integration(_adapter_run(record), tmp_path, expected_ids=ids, resume=False)
