"""DDP: 2 CPU processes (gloo), 11 examples, DistributedSampler padding; rank 0 gathers and writes.

The run written under DDP must equal a single-process run fed the same model outputs, with
each padded duplicate counted once, in pass mode (training-step logits) and eval mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover - builds without distributed
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from conftest import tiny_data  # noqa: E402

from datacarto.testing import (Capture, check_matches_reference,  # noqa: E402
                                                 check_once_per_epoch, check_same_run)
from datacarto.integrations.torch import LoopRecorder  # noqa: E402

pytestmark = pytest.mark.slow  # subprocesses: deselect with -m 'not slow'
WORKER = Path(__file__).with_name("_ddp_worker.py")
N, EPOCHS = 11, 3


@pytest.fixture(scope="module")
def ddp_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(WORKER), str(out)], capture_output=True, text=True,
                          timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _rows(out: Path) -> dict[str, np.ndarray]:
    parts = [dict(np.load(out / f"rows-{r}.npz")) for r in range(2)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def test_only_rank_zero_writes(ddp_out: Path) -> None:
    info = [json.loads((ddp_out / f"rank-{r}.json").read_text()) for r in range(2)]
    assert info[0]["writer"] and info[0]["path"] == str(ddp_out / "pass")
    assert not info[1]["writer"] and info[1]["path"] is None


def test_sampler_padded_and_duplicates_counted_once(ddp_out: Path) -> None:
    rows = _rows(ddp_out)
    assert rows["pad"].sum() == EPOCHS  # 11 -> 12 slots: one repeated example per epoch
    _, _, ids = tiny_data(N)
    check_once_per_epoch(ddp_out / "pass", ids)
    check_once_per_epoch(ddp_out / "eval", ids)


def test_pass_mode_equals_single_process_run(ddp_out: Path, tmp_path: Path) -> None:
    rows = _rows(ddp_out)
    keep = ~rows["pad"]
    cap = Capture()
    single = LoopRecorder(tmp_path / "single")
    for e in range(EPOCHS):
        m = keep & (rows["epoch"] == e)
        cap.add_batch(rows["id"][m], rows["logits"][m], rows["label"][m])
        cap.end_epoch()
        single.update(rows["id"][m], rows["logits"][m], rows["label"][m])
        single.end_epoch()
    check_matches_reference(ddp_out / "pass", cap)
    check_same_run(ddp_out / "pass", tmp_path / "single", atol=1e-6)


def test_eval_mode_equals_single_process_pass_over_all_examples(ddp_out: Path) -> None:
    X, y, ids = tiny_data(N)
    cap = Capture()
    for e in range(1, EPOCHS + 1):
        w = np.load(ddp_out / f"weights-{e}.npz")
        cap.add_batch(ids, X.astype(np.float64) @ w["W"].T + w["b"], y)
        cap.end_epoch()
    check_matches_reference(ddp_out / "eval", cap)
