"""The output directory of ``datacarto run`` / ``demo``: create it, or replace an earlier run there.

A directory is replaced only when datacarto itself marked it as its run: ``run.json`` in the
run-store format (``"format": "datacarto-run"``) whose ``extra.created_by`` is
``"datacarto run"`` (with ``--seeds K``: ``summary.json`` with that marker, and each
``seed-*/run.json`` too). Even then only the files datacarto writes are removed, by name:

* ``run.json``, ``heldout.parquet``, ``metrics.parquet``, ``metrics.csv``, ``datamap.png``,
  ``suspects.csv``, ``summary.json``, ``summary.txt``, the demo's ``data.csv`` /
  ``data.parquet`` / ``injected_flips.csv``, and their ``.NAME.tmp-PID`` leftovers;
* in ``epochs/``: ``epoch-NNNNN[-rank-NNNNN].parquet``, their temporary files and the
  recorder's ``.pending/`` spill files;
* the same inside ``seed-N/`` directories;

directories are removed only when that leaves them empty, and ``cache/`` (embeddings) is kept.
Anything else (a user's ``epochs/best.ckpt``, ``seed-0/notes.txt``, ``review/``) stays. A
directory that holds, or is, the input data file is never touched (also through symbolic
links), nor is one whose marker is missing: that is an error naming the directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from . import store
from ._paths import SEED_DIR, check_output_dir
from .errors import InputError

__all__ = ["CACHE_DIR", "CREATED_BY", "OUTPUT_FILES", "reset_output"]

#: Marker in run.json "extra" (and summary.json) of directories the run pipeline wrote.
CREATED_BY = "datacarto run"
OUTPUT_FILES = ("run.json", "heldout.parquet", "metrics.parquet", "metrics.csv", "datamap.png",
                "suspects.csv", "summary.json", "summary.txt", "data.csv", "data.parquet",
                "injected_flips.csv", "evidence.parquet")
CACHE_DIR = "cache"
_TMP = re.compile(r"^\.(?P<name>.+)\.tmp-\d+$")
_SHARD = re.compile(r"^epoch-\d+(-rank-\d+)?\.parquet$")
_PENDING = ".pending"


def _is_our_run_json(path: Path) -> bool:
    """``path`` is a ``run.json`` (or ``summary.json``) that ``datacarto run`` wrote."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(meta, dict):
        return False
    extra = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
    if path.name == store.RUN_FILE and meta.get("format") != store.FORMAT_NAME:
        return False
    return CREATED_BY in (meta.get("created_by"), extra.get("created_by"))


def _ours(name: str) -> bool:
    m = _TMP.match(name)
    return name in OUTPUT_FILES or bool(m and m.group("name") in OUTPUT_FILES)


def _shard_file(name: str) -> bool:
    m = _TMP.match(name)
    return bool(_SHARD.match(name) or (m and _SHARD.match(m.group("name"))))


def _plan(run_dir: Path, *, top: bool) -> list[Path]:
    """What to remove in one run directory (files and the ``.pending`` tree), by name only."""
    doomed: list[Path] = []
    for entry in run_dir.iterdir():
        if entry.is_symlink() or entry.is_file():
            if _ours(entry.name) and (top or entry.name not in ("data.csv", "data.parquet",
                                                               "injected_flips.csv")):
                doomed.append(entry)
        elif entry.name == store.SHARD_DIR and entry.is_dir():
            for shard in entry.iterdir():
                if shard.name == _PENDING and shard.is_dir() and not shard.is_symlink():
                    doomed.append(shard)
                elif (shard.is_file() or shard.is_symlink()) and _shard_file(shard.name):
                    doomed.append(shard)
    return doomed


def _only_leftovers(out: Path) -> bool:
    """An interrupted first run: nothing but ``cache/`` and an ``epochs/`` of temporary files."""
    for entry in out.iterdir():
        if entry.name == CACHE_DIR and entry.is_dir():
            continue
        if entry.name == store.SHARD_DIR and entry.is_dir() and all(
                (e.name == _PENDING or _TMP.match(e.name)) for e in entry.iterdir()):
            continue
        if entry.is_file() and _TMP.match(entry.name) and _ours(entry.name):
            continue
        return False
    return True


def reset_output(out: str | os.PathLike[str], *,
                 inputs: Iterable[str | os.PathLike[str] | None] = ()) -> Path:
    """Create ``out``, or clear the outputs of an earlier ``datacarto run`` there (see above).

    ``inputs``: the data files the run reads; a directory holding one of them is refused.
    Returns ``out``.
    """
    out = Path(out)
    check_output_dir(out, inputs=inputs, option="--out")
    if not out.exists():
        if out.is_symlink():
            raise InputError(f"{out}: is a symbolic link to a missing directory; choose another "
                             "--out.")
        out.mkdir(parents=True)
        return out
    real = Path(os.path.realpath(out))
    entries = list(real.iterdir())
    if not entries or _only_leftovers(real):
        _remove(_plan(real, top=True), real)
        return out
    seeds = sorted(e for e in entries if SEED_DIR.match(e.name) and e.is_dir())
    marker = real / store.RUN_FILE
    seed_markers = [seed / store.RUN_FILE for seed in seeds if (seed / store.RUN_FILE).exists()]
    ours = _is_our_run_json(marker) if marker.exists() else (
        ((real / "summary.json").exists() and _is_our_run_json(real / "summary.json"))
        # --seeds K killed before the summary: every seed's run.json carries the marker
        or (bool(seed_markers) and all(_is_our_run_json(m) for m in seed_markers)))
    if not ours:
        raise InputError(f"{out}: the directory is not empty and holds no earlier `datacarto run` "
                         "output (no run.json marked by datacarto); choose a new or empty --out "
                         "directory. Nothing was removed.")
    for seed in seeds:
        seed_marker = seed / store.RUN_FILE
        if seed_marker.exists() and not _is_our_run_json(seed_marker):
            raise InputError(f"{seed}: holds a run that `datacarto run` did not write; choose a new "
                             "or empty --out directory. Nothing was removed.")
    doomed = _plan(real, top=True)
    for seed in seeds:
        doomed += _plan(seed, top=False)
    _remove(doomed, real, seeds)
    return out


def _remove(doomed: list[Path], real: Path, seeds: Iterable[Path] = ()) -> None:
    for path in doomed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for folder in [*(s / store.SHARD_DIR for s in seeds), *seeds, real / store.SHARD_DIR]:
        try:
            folder.rmdir()  # only when empty: a user's file keeps it
        except OSError:
            pass
