"""The Lightning and Hugging Face callbacks under DDP: 2 CPU processes (gloo), 11 examples.

Both frameworks pad the ranks (DistributedSampler / accelerate's even batches) by repeating
examples. Each id must be recorded once per epoch; in eval mode the run must equal a
single-process pass with the epoch's weights, in pass mode every recorded row must be one of
the training forward passes of that id in that epoch.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import tiny_data  # noqa: E402

import datacarto  # noqa: E402
from datacarto.testing import (Capture, check_matches_reference,  # noqa: E402
                                                 check_once_per_epoch)

pytestmark = pytest.mark.slow  # subprocesses: deselect with -m 'not slow'
WORKER = Path(__file__).with_name("_ddp_callbacks_worker.py")
N, EPOCHS = 11, 2
IDS = np.arange(100, 100 + N)
NEEDS = {"lightning": ("lightning",), "hf": ("transformers", "accelerate")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _available(which: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in NEEDS[which])


@pytest.fixture(scope="module")
def outs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

    def run(which: str) -> tuple[Path, object]:
        out = tmp_path_factory.mktemp(f"ddp-{which}")
        if which == "hf":
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                   f"--master_port={_free_port()}", str(WORKER), which, str(out)]
        else:
            cmd = [sys.executable, str(WORKER), which, str(out)]
        try:
            return out, subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                                       env={**env, "MASTER_PORT": str(_free_port())}, cwd=out)
        except subprocess.TimeoutExpired as err:
            return out, err

    names = [w for w in NEEDS if _available(w)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(names, pool.map(run, names)))


def _result(outs: dict, which: str) -> Path:
    if not _available(which):
        pytest.skip(f"needs {', '.join(NEEDS[which])}")
    out, proc = outs[which]
    assert isinstance(proc, subprocess.CompletedProcess), f"{which} timed out"
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.mark.parametrize("which", sorted(NEEDS))
def test_eval_mode_equals_a_single_process_pass(outs, which: str) -> None:
    out = _result(outs, which)
    X, y, _ = tiny_data(N)
    check_once_per_epoch(out / "eval", IDS)
    cap = Capture()
    for e in range(1, EPOCHS + 1):
        w = np.load(out / "weights-eval" / f"weights-{e}.npz")
        cap.add_batch(IDS, X.astype(np.float64) @ w["W"].T + w["b"], y)
        cap.end_epoch()
    check_matches_reference(out / "eval", cap)


@pytest.mark.parametrize("which", sorted(NEEDS))
def test_pass_mode_records_each_id_once_from_its_own_forward_pass(outs, which: str) -> None:
    out = _result(outs, which)
    check_once_per_epoch(out / "pass", IDS)
    rows = [dict(np.load(out / f"rows-pass-{r}.npz")) for r in range(2)]
    seen = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    assert len(seen["id"]) > EPOCHS * N  # the frameworks padded: some ids ran twice
    dyn = datacarto.load(out / "pass").dynamics()
    assert dyn.logits is not None
    for e in range(EPOCHS):
        for i, ident in enumerate(dyn.ids):
            candidates = seen["logits"][(seen["epoch"] == e) & (seen["id"] == ident)]
            assert len(candidates), (e, ident)
            assert np.abs(candidates - dyn.logits[i, e]).max(axis=1).min() < 1e-5, (e, ident)


@pytest.mark.parametrize("which", sorted(NEEDS))
def test_only_rank_zero_wrote(outs, which: str) -> None:
    out = _result(outs, which)
    for mode in ("pass", "eval"):
        shards = sorted(p.name for p in (out / mode / "epochs").iterdir())
        assert shards == [f"epoch-{e:05d}.parquet" for e in range(1, EPOCHS + 1)]
