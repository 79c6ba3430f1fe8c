"""Conformance checks for recording adapters: does an adapter record what the model produced?

In the spirit of scikit-learn's ``utils.estimator_checks``: the checks every adapter shipped
with datacarto passes, public so that the author of a new adapter (another framework, an
in-house training loop) runs the same ones in their own tests. No test framework is needed:
a failed check raises ``AssertionError`` naming the epoch and the id.

The entry point is :func:`check_integration`. It takes ``run(path, resume) -> Capture``, a
function that trains a tiny seeded model with the adapter writing a run at ``path`` while it
captures, independently of the adapter, the outputs the model produced (in a forward hook, a
``predict`` call or simply in the training loop), and

- ``run(path, resume=False)`` trains uninterrupted;
- ``run(path, resume=True)`` trains, stops part-way, rebuilds every object from the
  checkpoint (a fresh adapter on the same path) and finishes.

:func:`check_integration` then asserts that

1. every expected id appears exactly once in every recorded epoch;
2. the run's metrics equal a numpy reference computed here from the captured outputs
   (softmax, gold probability, mean, population std, correctness, forgetting, AUM: the
   formulas of docs/contract.md §2);
3. the resumed run equals the uninterrupted one (skip with ``resume=False``).

Example, a test of a hand-written adapter ``MyAdapter`` with ``update`` and ``end_epoch``::

    from datacarto.testing import Capture, check_integration

    def run(path, resume):
        capture = Capture()                          # inputs="probs" if the model emits them
        adapter = MyAdapter(path)
        for epoch in range(3):
            for ids, x, y in batches(epoch):         # a tiny seeded problem
                logits = model(x)
                capture.add_batch(ids, logits, y)    # what the model really produced
                adapter.update(ids, logits, y)
            capture.end_epoch()
            adapter.end_epoch()
        return capture

    def test_my_adapter(tmp_path):
        check_integration(run, tmp_path, expected_ids=range(24), resume=False)

Arrays: captured outputs are (n, K) per epoch, logits or probabilities (``Capture.inputs``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import store
from ._validation import fmt_id, to_numpy
from .probability import log_probs, log_softmax
from .run import load

__all__ = ["Capture", "check_integration", "check_matches_reference", "check_once_per_epoch",
           "check_same_run", "reference"]

_METRICS = ("confidence", "variability", "correctness", "forgetting_events", "aum")


@dataclass
class Capture:
    """Outputs a test saw the model produce, per recorded epoch: ``(ids, outputs, labels)``."""

    inputs: str = "logits"
    epochs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    _batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add_batch(self, ids: Any, outputs: Any, labels: Any) -> None:
        self._batches.append((np.asarray(to_numpy(ids)).reshape(-1),
                              np.asarray(to_numpy(outputs), dtype=np.float64),
                              np.asarray(to_numpy(labels)).reshape(-1).astype(np.int64)))

    def end_epoch(self) -> None:
        ids, out, lab = (np.concatenate([b[i] for b in self._batches]) for i in range(3))
        self.epochs.append((ids, out, lab))
        self._batches = []

    def drop_partial(self) -> None:
        """Forget batches of an epoch that will not be recorded (training stopped)."""
        self._batches = []


def reference(capture: Capture) -> dict[str, np.ndarray]:
    """Per-example metrics of the captured outputs (docs/contract.md §2), in ascending id order."""
    if not capture.epochs:
        raise AssertionError("conformance: the capture holds no epoch")
    ids0 = np.sort(capture.epochs[0][0])
    log_p, labels = [], None
    for e, (ids, out, lab) in enumerate(capture.epochs, start=1):
        order = np.argsort(ids, kind="stable")
        ids, out, lab = ids[order], out[order], lab[order]
        if len(np.unique(ids)) != len(ids):
            raise AssertionError(f"conformance: the capture of epoch {e} repeats ids")
        if not np.array_equal(ids, ids0):
            raise AssertionError(f"conformance: captured epoch {e} has other ids than epoch 1")
        if labels is None:
            labels = lab
        log_p.append(log_probs(out) if capture.inputs == "probs" else log_softmax(out, axis=1))
    assert labels is not None
    lp = np.stack(log_p, axis=1)  # (N, E, K)
    n, e, k = lp.shape
    rows = np.arange(n)
    gold_lp = lp[rows, :, labels]  # (N, E)
    p = np.exp(gold_lp)
    pred = lp.argmax(axis=2)
    correct = pred == labels[:, None]
    others = lp.copy()
    others[rows, :, labels] = -np.inf
    margin = gold_lp - others.max(axis=2)
    return {
        "id": ids0,
        "label": labels,
        "confidence": p.mean(axis=1),
        "variability": p.std(axis=1),
        "correctness": correct.mean(axis=1),
        "forgetting_events": (correct[:, :-1] & ~correct[:, 1:]).sum(axis=1),
        "aum": margin[:, 1:].mean(axis=1) if e > 1 else margin.mean(axis=1),
    }


def check_once_per_epoch(path: str | Path, expected_ids: Any) -> None:
    """Every committed epoch holds each expected id exactly once (shard by shard, before de-dup)."""
    path = Path(path)
    meta = store.read_run_json(path)
    want = np.sort(np.asarray(expected_ids))
    if not meta.epochs:
        raise AssertionError(f"conformance: {path} has no committed epoch")
    for epoch in meta.epochs:
        paths = [path / name for name in meta.shards[str(epoch)]]
        ids = np.concatenate([store.read_shard(p, columns=["id"])["id"] for p in paths])
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise AssertionError(f"conformance: epoch {epoch} holds id {fmt_id(uniq[counts > 1][0])} "
                                 f"{counts.max()} times")
        if not np.array_equal(uniq, want.astype(uniq.dtype)):
            missing = np.setdiff1d(want.astype(uniq.dtype), uniq)
            extra = np.setdiff1d(uniq, want.astype(uniq.dtype))
            raise AssertionError(f"conformance: epoch {epoch} misses {missing[:3].tolist()} / has "
                                 f"extra {extra[:3].tolist()}")


def check_matches_reference(path: str | Path, capture: Capture, *, atol: float = 1e-5) -> None:
    """The run's metrics equal :func:`reference` of the captured outputs."""
    run = load(path)
    if len(run.epochs) != len(capture.epochs):
        raise AssertionError(f"conformance: the run has {len(run.epochs)} epochs but the model "
                             f"produced {len(capture.epochs)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "only 1 epoch recorded"
        frame = run.metrics()
    ref = reference(capture)
    got_ids = frame["id"].to_numpy()
    if not np.array_equal(got_ids.astype(ref["id"].dtype), ref["id"]):
        raise AssertionError("conformance: the run's ids differ from the captured ids")
    if not np.array_equal(frame["label"].to_numpy(), ref["label"]):
        i = int(np.argmax(frame["label"].to_numpy() != ref["label"]))
        raise AssertionError(f"conformance: id {fmt_id(ref['id'][i])} has label "
                             f"{frame['label'].iloc[i]} in the run, {ref['label'][i]} captured")
    for name in _METRICS:
        got = frame[name].to_numpy(dtype=np.float64)
        want = ref[name].astype(np.float64)
        tol = atol * max(1.0, float(np.abs(want).max())) if name == "aum" else atol
        if not np.allclose(got, want, atol=tol, rtol=0):
            i = int(np.argmax(np.abs(got - want)))
            raise AssertionError(f"conformance: {name} of id {fmt_id(ref['id'][i])} is {got[i]:.6g} in "
                                 f"the run but {want[i]:.6g} from the captured outputs")


def check_same_run(a: str | Path, b: str | Path, *, atol: float = 1e-5) -> None:
    """Two runs hold the same epochs, ids, labels and (within ``atol``) the same dynamics."""
    da, db = load(a).dynamics(), load(b).dynamics()
    if not np.array_equal(da.epochs, db.epochs):
        raise AssertionError(f"conformance: epochs {da.epochs.tolist()} vs {db.epochs.tolist()} "
                             "after resuming")
    if not (np.array_equal(da.ids, db.ids) and np.array_equal(da.labels, db.labels)):
        raise AssertionError("conformance: ids or labels differ after resuming")
    for name in ("gold_prob", "margin", "pred"):
        x, y = getattr(da, name), getattr(db, name)
        if not np.allclose(x, y, atol=atol * max(1.0, float(np.abs(x).max())), rtol=0):
            i, e = np.unravel_index(int(np.argmax(np.abs(x - y))), x.shape)
            raise AssertionError(f"conformance: {name} of id {fmt_id(da.ids[i])} in epoch "
                                 f"{da.epochs[e]} differs after resuming ({x[i, e]} vs {y[i, e]})")


def check_integration(run: Callable[..., Capture], workdir: str | Path, *, expected_ids: Any,
                      atol: float = 1e-5, resume: bool = True) -> Capture:
    """Run the three checks of the module docstring; return the uninterrupted run's capture.

    Parameters
    ----------
    run : callable
        ``run(path, resume=...) -> Capture``: record a run at ``path`` with the adapter under
        test and return the outputs the model produced, captured independently.
    workdir : str or Path
        An empty folder (pytest's ``tmp_path``); the runs are written to ``workdir/full`` and
        ``workdir/resumed``.
    expected_ids : array-like
        Every training example's id: each must be recorded once per epoch.
    atol : float
        Tolerance of the metric comparisons (float32 storage; scaled by the largest |AUM|).
    resume : bool
        Also run ``run(path, resume=True)`` and check that it equals the uninterrupted run.

    Raises
    ------
    AssertionError
        The first check that fails, naming the epoch and the id.
    """
    workdir = Path(workdir)
    full = run(workdir / "full", resume=False)
    check_once_per_epoch(workdir / "full", expected_ids)
    check_matches_reference(workdir / "full", full, atol=atol)
    if resume:
        run(workdir / "resumed", resume=True)
        check_once_per_epoch(workdir / "resumed", expected_ids)
        check_same_run(workdir / "full", workdir / "resumed", atol=atol)
    return full
