"""The one guard every writing command passes its output path through.

Rules (docs/cli.md, "Output paths"):

* an output file may not be, or resolve to (through a symbolic link, a hard link or ``..``),
  an input data file of the command;
* it may not be a file of a run the command reads: ``run.json``, anything under ``epochs/``
  (the shards), ``heldout.parquet``, ``review/`` (the decision log), ``cache/`` and, for runs
  with several seeds, the same files under ``seed-*/``. Derived files in a run (``metrics.*``,
  ``flags.csv``, ``report.html``, ``datamap.png``) may be rewritten: they are the defaults;
* it may not be an existing directory;
* an output *directory* (``run --out``, ``import --out``, ``export allenai DIR``) may not be,
  or contain, an input file, nor be or contain the run directory it reads (nor lie inside that
  run's ``epochs/``, ``review/`` or ``cache/``).

Every refusal is an :class:`~datacarto.errors.InputError` naming the path: one line on stderr
and exit code 2 from the CLI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import InputError

__all__ = ["check_output_path", "check_output_dir", "protected_run_files"]

#: Entries of a run directory that hold the run itself (never an output of another command).
RUN_STORE_FILES = ("run.json", "heldout.parquet")
RUN_STORE_DIRS = ("epochs", "review", "cache")
SEED_DIR = re.compile(r"^seed-\d+$")

PathLike = str | os.PathLike[str]


def _real(path: PathLike) -> Path:
    """The absolute path with ``..`` and every symbolic link (also of the last part) resolved."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _files_under(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
    elif root.is_dir():
        for base, _dirs, files in os.walk(root):
            for name in files:
                yield Path(base) / name


def protected_run_files(run_dir: PathLike) -> tuple[list[Path], list[Path]]:
    """``(files, directories)`` of the run store at ``run_dir`` (and of its ``seed-*`` runs)."""
    root = _real(run_dir)
    files: list[Path] = []
    dirs: list[Path] = []
    roots = [root]
    if root.is_dir():
        roots += [e for e in root.iterdir() if SEED_DIR.match(e.name) and e.is_dir()]
    for r in roots:
        files += [r / name for name in RUN_STORE_FILES]
        dirs += [r / name for name in RUN_STORE_DIRS]
    return files, dirs


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def check_output_path(path: PathLike, *, inputs: Iterable[PathLike | None] = (),
                      run_dirs: Iterable[PathLike | None] = (), option: str = "-o") -> Path:
    """Refuse an output file that would overwrite an input or a file of a run; return it.

    Parameters
    ----------
    path : the output file the command is about to write.
    inputs : the command's input data files (``None`` entries are skipped).
    run_dirs : the run directories the command reads.
    option : the option that named ``path``, for the message (``-o``, ``--export``).
    """
    out = Path(path)
    real = _real(out)
    if out.is_dir() or real.is_dir():
        raise InputError(f"{out}: is a directory; {option} needs a file name.")
    node = _inode(real)
    for given in inputs:
        if given is None:
            continue
        src = _real(given)
        if real == src or (node is not None and node == _inode(src)):
            raise InputError(f"{out}: this is the input data file {given}; datacarto never "
                             f"overwrites its input. Choose another {option} path.")
    for run_dir in run_dirs:
        if run_dir is None:
            continue
        files, dirs = protected_run_files(run_dir)
        hit = next((f for f in files if real == f), None) or next(
            (d for d in dirs if _is_within(real, d)), None)
        if hit is None and node is not None:  # a hard link to a file of the run
            for f in [*files, *(g for d in dirs for g in _files_under(d))]:
                if _inode(f) == node:
                    hit = f
                    break
        if hit is not None:
            raise InputError(f"{out}: this is a file of the run {run_dir} ({hit.name}); writing it "
                             f"would damage the run. Choose another {option} path.")
    return out


def check_output_dir(path: PathLike, *, inputs: Iterable[PathLike | None] = (),
                     run_dirs: Iterable[PathLike | None] = (), option: str = "--out") -> Path:
    """Refuse an output directory that is or contains an input file or a run the command reads."""
    out = Path(path)
    real = _real(out)
    if real.exists() and not real.is_dir():
        raise InputError(f"{out}: exists and is not a directory; choose another {option}.")
    for given in inputs:
        if given is None:
            continue
        src = _real(given)
        if _is_within(src, real):
            raise InputError(f"{out}: holds the input data file {given}; datacarto never "
                             f"replaces or clears a directory holding its input. Choose another "
                             f"{option} directory.")
    for run_dir in run_dirs:
        if run_dir is None:
            continue
        rd = _real(run_dir)
        files, dirs = protected_run_files(run_dir)
        if _is_within(rd, real) or any(_is_within(real, d) for d in dirs):
            raise InputError(f"{out}: is or holds the run {run_dir} being read, or lies inside its "
                             f"store; choose another {option} directory.")
    return out
