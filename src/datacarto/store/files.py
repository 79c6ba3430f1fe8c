"""Writing a run's files safely, and ``run.json`` and the other whole-run files.

Every file of a run is written to a temporary name and renamed (:func:`atomic_write`), so a
crash leaves the previous version intact. ``run.json`` is parsed and checked by
:class:`~datacarto.runmeta.RunMeta`; ``evidence.parquet`` and ``summary.json`` are plain
tables and documents (docs/contract.md §6).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import InputError, SchemaError
from ..runmeta import RunMeta

RUN_FILE = "run.json"
#: Files a ``datacarto run`` directory holds beside run.json, the shards and the held-out logits.
EVIDENCE_FILE = "evidence.parquet"
SUMMARY_FILE = "summary.json"


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then rename tmp onto ``path``; on any failure remove tmp, keep the old file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if not err.filename:  # e.g. ENOSPC from a write: say which file could not be written
            raise OSError(err.errno, f"cannot write this file: {err.strerror or err}",
                          str(path)) from err
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write text atomically and durably (fsync before the rename)."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(path, write)


def fingerprint_file(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file's bytes, recorded in run.json to tie a run to its data.

    A directory (a saved Hugging Face dataset) hashes its files' relative names and bytes in
    name order, leaving out the ``cache-*`` files that ``datasets`` may add later.
    """
    digest = hashlib.sha256()
    root = Path(path)
    files = ([root] if not root.is_dir() else
             sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("cache-")))
    for f in files:
        if f != root:
            digest.update(f.relative_to(root).as_posix().encode("utf-8") + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return f"sha256:{digest.hexdigest()}"


# ------------------------------------------------------------------------ run.json
def write_run_json(run_dir: str | os.PathLike[str], meta: RunMeta) -> None:
    """Write ``RUN/run.json`` atomically (the directory is created if needed)."""
    if not isinstance(meta, RunMeta):
        raise TypeError(f"write_run_json takes a RunMeta, not {type(meta).__name__}")
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / RUN_FILE,
                      json.dumps(meta.to_json(), indent=2, sort_keys=True) + "\n")


def read_run_json(run_dir: str | os.PathLike[str]) -> RunMeta:
    """Read and validate ``RUN/run.json``; every problem is a SchemaError naming the file."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not run_dir.exists():
        raise InputError(f"{run_dir}: no such run directory")
    if not run_dir.is_dir() or not path.is_file():
        raise SchemaError(f"{run_dir}: not a datacarto run (no {RUN_FILE}). Create one with "
                          "`datacarto run`, a Recorder, or `datacarto import allenai`.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SchemaError(f"{path}: not valid JSON ({err})") from err
    return RunMeta.from_json(doc, path)


def update_run_extra(run_dir: str | os.PathLike[str], **updates: Any) -> RunMeta:
    """Set keys of ``run.json``'s ``extra`` (e.g. ``curve=...``) and rewrite it; returns the new meta."""
    meta = read_run_json(run_dir).with_extra(**updates)
    write_run_json(run_dir, meta)
    return meta


# ------------------------------------------------------------------------ other run files
def write_run_table(run_dir: str | os.PathLike[str], name: str, frame: Any) -> Path:
    """Write a pandas DataFrame to ``RUN/name`` (Parquet, no index) atomically; returns the path."""
    path = Path(run_dir) / name
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return path


def read_run_table(run_dir: str | os.PathLike[str], name: str) -> Any:
    """``RUN/name`` as a pandas DataFrame, or None when the run has no such file."""
    import pandas as pd

    path = Path(run_dir) / name
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise SchemaError(f"{path}: not a readable Parquet file ({err}).") from None


def write_run_doc(run_dir: str | os.PathLike[str], name: str, doc: dict[str, Any]) -> Path:
    """Write a JSON document to ``RUN/name`` atomically (indented, UTF-8); returns the path."""
    path = Path(run_dir) / name
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return path


def read_run_doc(run_dir: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """The JSON object in ``RUN/name``, or None when the run has no such file."""
    path = Path(run_dir) / name
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SchemaError(f"{path}: not valid JSON ({err}).") from None
    if not isinstance(doc, dict):
        raise SchemaError(f"{path}: expected a JSON object.")
    return doc
