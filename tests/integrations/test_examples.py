"""Every script in examples/ runs offline and writes a run (CI runs them all).

An example whose framework is not installed is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import datacarto

pytestmark = pytest.mark.slow  # subprocesses: deselect with -m 'not slow'
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NEEDS = {
    "torch_loop.py": ("torch",),
    "torch_ddp.py": ("torch",),
    "huggingface_trainer.py": ("torch", "transformers", "accelerate"),
    "lightning_callback.py": ("torch", "lightning"),
    "keras_callback.py": ("torch", "keras"),
    "sklearn_models.py": ("sklearn",),
    "xgboost_boosting.py": ("xgboost",),
    "lightgbm_boosting.py": ("lightgbm",),
}
#: Run directories each example writes under the directory it is given.
RUNS = {"sklearn_models.py": ("sgd", "gb")}
TIMEOUT_S = 180  # generous for a shared 2-core CI box; each takes a few seconds alone


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(NEEDS)


def _missing(name: str) -> list[str]:
    return [m for m in NEEDS[name] if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    """Run every available example once, three at a time (their cost is mostly imports)."""
    root = tmp_path_factory.mktemp("examples")
    env = {**os.environ, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}

    def run(name: str) -> tuple[Path, object]:
        out = root / name.removesuffix(".py") / "run"
        out.parent.mkdir()
        try:
            proc = subprocess.run([sys.executable, str(EXAMPLES / name), str(out)],
                                  capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
                                  cwd=out.parent)
        except subprocess.TimeoutExpired as err:
            return out, err
        return out, proc

    names = [n for n in sorted(NEEDS) if not _missing(n)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(names, pool.map(run, names)))


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_example_runs(name: str, results: dict[str, tuple[Path, object]]) -> None:
    if _missing(name):
        pytest.skip(f"{name} needs {', '.join(_missing(name))}")
    out, proc = results[name]
    assert isinstance(proc, subprocess.CompletedProcess), f"{name} timed out: {proc}"
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "recorded" in proc.stdout or "staged" in proc.stdout
    for sub in RUNS.get(name, ("",)):
        run = datacarto.load(out / sub if sub else out)
        assert len(run.epochs) >= 3
