"""Import and export allenai/cartography's training-dynamics logs.

allenai/cartography (Swayamdipta et al., 2020) writes one JSONL file per epoch,
``training_dynamics/dynamics_epoch_{E}.jsonl`` with E = 0, 1, 2, ..., each line::

    {"guid": 4734364254410, "logits_epoch_0": [-0.475, -0.226, 0.941], "gold": 0}

and its ``train_dy_filtering.py`` writes ``td_metrics.jsonl`` with the columns guid, index,
threshold_closeness, confidence, variability, correctness (a *count* of correct epochs) and
forgetfulness (1000 for never-learned examples).

:func:`import_allenai` turns such a folder into a datacarto run (allenai epoch 0 becomes our
epoch 1); :func:`export_allenai` writes a run back in allenai's layout, so
``train_dy_filtering.py --model_dir DIR`` reads it unchanged. Metrics of an imported run equal
allenai's: both take a float32 softmax of the float32-cast logits (allenai: ``torch.Tensor``),
then float64 means and population standard deviations, so confidence, variability and
threshold_closeness agree within 1e-6 and correctness = allenai's count / E exactly.

Every problem in the input raises :class:`~datacarto.errors.InputError` (or its subclass
:class:`~datacarto.errors.SchemaError`) naming the file, the line and the guid, and leaves
nothing behind: the run is built in a temporary sibling directory that is renamed into place
only when every epoch has been read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from .. import store
from ..dynamics import TrainingDynamics
from ..errors import InputError, SchemaError
from ..metrics import _confidence, _forgetting_events, _variability
from ..recorder import Recorder
from ..run import Run, load

__all__ = ["METRIC_COLUMNS", "NEVER_LEARNED_FORGETFULNESS", "allenai_metrics", "export_allenai",
           "find_epoch_files", "import_allenai"]

#: allenai's sub-folder for the per-epoch logs (``--model_dir DIR`` reads ``DIR/training_dynamics``).
SUBDIR = "training_dynamics"
#: allenai's metrics file, written beside ``training_dynamics/``.
METRICS_FILE = "td_metrics.jsonl"
#: allenai's ``compute_forgetfulness`` returns this for examples never predicted correctly.
NEVER_LEARNED_FORGETFULNESS = 1000
#: Columns of allenai's ``td_metrics.jsonl``, in its order.
METRIC_COLUMNS = ("guid", "index", "threshold_closeness", "confidence", "variability",
                  "correctness", "forgetfulness")
_EPOCH_FILE = re.compile(r"^dynamics_epoch_(\d+)\.jsonl?$")
_INT64 = np.iinfo(np.int64)


# --------------------------------------------------------------------------- reading
def find_epoch_files(src_dir: str | os.PathLike[str]) -> list[Path]:
    """The ``dynamics_epoch_{E}.jsonl`` files of an allenai folder, in epoch order 0, 1, 2, ...

    Looks in ``src_dir`` itself, then in ``src_dir/training_dynamics``. Epoch numbers are
    compared as integers (``dynamics_epoch_10`` comes after ``dynamics_epoch_9``) and must run
    from 0 without gaps, as allenai's reader expects.
    """
    src = Path(src_dir)
    if not src.exists():
        raise InputError(f"{src}: no such directory")
    if not src.is_dir():
        raise InputError(f"{src}: not a directory; give the folder that holds "
                         "dynamics_epoch_0.jsonl (or its parent, with training_dynamics/).")
    found: dict[int, Path] = {}
    folder = src
    for folder in (src, src / SUBDIR):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            match = _EPOCH_FILE.match(path.name)
            if match is None or not path.is_file():
                continue
            epoch = int(match.group(1))
            if epoch in found:
                raise SchemaError(f"{folder}: both {found[epoch].name} and {path.name} hold epoch "
                                  f"{epoch}; keep one.")
            found[epoch] = path
        if found:
            break
    if not found:
        raise InputError(f"{src}: no dynamics_epoch_{{E}}.jsonl files here or in {SUBDIR}/. "
                         "allenai/cartography writes them to MODEL_DIR/training_dynamics/.")
    epochs = sorted(found)
    missing = sorted(set(range(epochs[-1] + 1)) - set(epochs))
    if missing:
        raise SchemaError(f"{folder}: dynamics_epoch_{missing[0]}.jsonl is missing (found epochs "
                          f"{', '.join(map(str, epochs))}); allenai numbers epochs 0, 1, 2, ... "
                          "without gaps.")
    return [found[e] for e in epochs]


@dataclass
class _Epoch:
    """One epoch file's rows, sorted by guid; ``lines`` are 1-based line numbers in ``path``."""

    path: Path
    ids: np.ndarray
    logits: np.ndarray | None
    gold: np.ndarray
    lines: np.ndarray


class _NonFinite(ValueError):
    pass


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _short_number(v: Any) -> str:
    text = str(v)
    return text if len(text) <= 30 else text[:27] + "..."


def _reject_constant(name: str) -> float:
    # Python's json accepts NaN / Infinity / -Infinity literals; allenai's files must not have them
    raise _NonFinite(name)


def _g(value: Any) -> str:
    """repr of a guid without numpy's ``np.str_(...)`` wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _first(mask: np.ndarray, lines: np.ndarray) -> int:
    """Index of the offending row that comes first in the file."""
    hits = np.flatnonzero(mask)
    return int(hits[np.argmin(lines[hits])])


def _read_epoch(path: Path, epoch: int, *, n_classes: int | None,
                guid_type: type | None) -> tuple[_Epoch, type]:
    key = f"logits_epoch_{epoch}"
    guids: list[Any] = []
    rows: list[list[Any]] = []
    golds: list[int] = []
    lines: list[int] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InputError(f"{path} line {lineno}: not UTF-8 text (byte "
                                 f"{raw[err.start:err.start + 1]!r} at column {err.start + 1}). "
                                 "Re-save the file as UTF-8.") from err
            if lineno == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                continue
            try:
                rec = json.loads(text, parse_constant=_reject_constant)
            except _NonFinite as err:
                raise InputError(f"{path} line {lineno}: {err} is not a finite number; logits must "
                                 "be finite (NaN or Infinity usually means the model diverged).") from None
            except json.JSONDecodeError as err:
                raise SchemaError(f"{path} line {lineno}: invalid JSON ({err.msg} at column "
                                  f"{err.colno}); the line may be truncated.") from err
            try:
                guid, logits, gold = rec["guid"], rec[key], rec["gold"]
            except (KeyError, TypeError):
                _bad_record(path, lineno, rec, key)
            if guid_type is None and type(guid) in (int, str):
                guid_type = type(guid)
            if n_classes is None and type(logits) is list and len(logits) >= 2:
                n_classes = len(logits)
            if type(guid) is not guid_type or type(gold) is not int or \
                    type(logits) is not list or len(logits) != n_classes:
                _bad_values(path, lineno, rec, key, guid_type, n_classes)
            guids.append(guid)
            rows.append(logits)
            golds.append(gold)
            lines.append(lineno)
    if not lines:
        raise InputError(f"{path}: the file is empty; expected one JSON object per line "
                         f"({{\"guid\": ..., \"{key}\": [...], \"gold\": ...}}).")
    assert n_classes is not None and guid_type is not None
    line_arr = np.asarray(lines, dtype=np.int64)
    if guid_type is int:
        try:
            ids = np.asarray(guids, dtype=np.int64)
        except OverflowError:
            i = next(j for j, g in enumerate(guids) if not _INT64.min <= g <= _INT64.max)
            raise InputError(f"{path} line {lines[i]}: guid {guids[i]} does not fit in a 64-bit "
                             "integer; write large guids as strings.") from None
    else:
        ids = np.asarray(guids, dtype=str)
    try:
        logits_arr = np.asarray(rows, dtype=np.float64)
        bad_row = ~np.isfinite(logits_arr).all(axis=1)
    except (TypeError, ValueError, OverflowError):  # a value that is not a (float) number
        logits_arr, bad_row = None, np.ones(len(rows), dtype=bool)
    if logits_arr is not None and not bad_row.any():
        # stored as float32: a finite float64 beyond float32's range would become inf
        with np.errstate(over="ignore"):
            bad_row = ~np.isfinite(logits_arr.astype(np.float32)).all(axis=1)
    if bad_row.any():
        for i in np.flatnonzero(bad_row):
            for j, v in enumerate(rows[i]):
                if type(v) not in (int, float):
                    raise SchemaError(f"{path} line {lines[i]}: guid={_g(ids[i])}: {key}[{j}] is "
                                      f"{v!r}, not a number.")
                try:
                    as_float = float(v)
                except OverflowError:
                    as_float = float("inf")
                if np.isfinite(as_float) and abs(as_float) > _FLOAT32_MAX:
                    raise InputError(f"{path} line {lines[i]}: guid={_g(ids[i])}: {key}[{j}] = {v} "
                                     "is too large to store as a float32 logit (|x| <= 3.4e38); "
                                     "logits must be finite.")
                if not np.isfinite(as_float):
                    raise InputError(f"{path} line {lines[i]}: guid={_g(ids[i])}: {key}[{j}] = "
                                     f"{_short_number(v)} is not finite; logits must be finite (NaN or Infinity "
                                     "usually means the model diverged).")
    gold = np.asarray(golds, dtype=np.int64)
    bad = (gold < 0) | (gold >= n_classes)
    if bad.any():
        i = _first(bad, line_arr)
        raise InputError(f"{path} line {lines[i]}: guid={_g(ids[i])}: gold {gold[i]} is outside "
                         f"0..{n_classes - 1} (the logits have {n_classes} values). Gold labels "
                         "must be class indices 0..K-1.")
    order = np.argsort(ids, kind="stable")
    ids, gold, line_arr = ids[order], gold[order], line_arr[order]
    assert logits_arr is not None
    logits_arr = logits_arr[order]
    dup = np.zeros(len(ids), dtype=bool)
    dup[1:] = ids[1:] == ids[:-1]
    if dup.any():
        # the stable sort keeps file order within a guid: j is its first line, i a later one
        i = _first(dup, line_arr)
        j = i - 1
        while dup[j]:
            j -= 1
        if gold[i] != gold[j]:
            raise InputError(f"{path} line {line_arr[i]}: guid={_g(ids[i])} has gold {gold[i]} but "
                             f"line {line_arr[j]} gave it gold {gold[j]}; an example must have one "
                             "gold label.")
        raise InputError(f"{path} line {line_arr[i]}: guid={_g(ids[i])} appears again (first on "
                         f"line {line_arr[j]}); each example must appear once per epoch.")
    return _Epoch(path=path, ids=ids, logits=logits_arr, gold=gold, lines=line_arr), guid_type


def _bad_record(path: Path, lineno: int, rec: Any, key: str) -> NoReturn:
    if not isinstance(rec, dict):
        raise SchemaError(f"{path} line {lineno}: expected a JSON object, got "
                          f"{type(rec).__name__}.")
    missing = [k for k in ("guid", key, "gold") if k not in rec]
    found = ", ".join(repr(k) for k in rec) or "none"
    raise SchemaError(f"{path} line {lineno}: missing key {missing[0]!r} (found {found}); every line "
                      f"of {path.name} needs 'guid', '{key}' and 'gold'.")


def _bad_values(path: Path, lineno: int, rec: dict[str, Any], key: str, guid_type: type | None,
                n_classes: int | None) -> NoReturn:
    guid, logits, gold = rec["guid"], rec[key], rec["gold"]
    if type(guid) not in (int, str):
        raise SchemaError(f"{path} line {lineno}: guid {guid!r} must be an integer or a string.")
    if type(guid) is not guid_type:
        assert guid_type is not None
        raise SchemaError(f"{path} line {lineno}: guid {guid!r} is {type(guid).__name__} but earlier "
                          f"guids are {guid_type.__name__}; use one type for all guids.")
    if type(gold) is not int:
        raise SchemaError(f"{path} line {lineno}: guid={guid!r}: gold {gold!r} must be an integer "
                          "class index.")
    if type(logits) is not list:
        raise SchemaError(f"{path} line {lineno}: guid={guid!r}: {key} must be a list of numbers; "
                          f"got {type(logits).__name__}.")
    if n_classes is None:
        raise SchemaError(f"{path} line {lineno}: guid={guid!r}: {key} has {len(logits)} values; a "
                          "classifier needs at least 2 logits per example.")
    raise SchemaError(f"{path} line {lineno}: guid={guid!r}: {key} has {len(logits)} values but "
                      f"the run has {n_classes} classes; every line needs one logit per class.")


def _check_same_examples(ref: _Epoch, cur: _Epoch) -> None:
    """Every epoch file must list the same guids with the same gold labels as epoch 0."""
    if len(cur.ids) != len(ref.ids) or not np.array_equal(cur.ids, ref.ids):
        extra = ~np.isin(cur.ids, ref.ids)
        if extra.any():
            i = _first(extra, cur.lines)
            raise InputError(f"{cur.path} line {cur.lines[i]}: guid={_g(cur.ids[i])} does not appear "
                             f"in {ref.path.name}; every epoch file must list the same examples.")
        missing = ~np.isin(ref.ids, cur.ids)
        i = _first(missing, ref.lines)
        raise InputError(f"{cur.path}: guid={_g(ref.ids[i])} (line {ref.lines[i]} of {ref.path.name}) "
                         "is missing; every epoch file must list every example once.")
    changed = cur.gold != ref.gold
    if changed.any():
        i = _first(changed, cur.lines)
        raise InputError(f"{cur.path} line {cur.lines[i]}: guid={_g(cur.ids[i])} has gold "
                         f"{cur.gold[i]} but line {ref.lines[i]} of {ref.path.name} has gold "
                         f"{ref.gold[i]}; an example must have one gold label in every epoch.")


# ------------------------------------------------------------------- output folders
def _check_fresh_dir(out: Path, *, what: str) -> None:
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise InputError(f"{out}: exists and is not a directory; {what} writes a new directory.")
        if any(out.iterdir()):
            raise InputError(f"{out}: already exists and is not empty; {what} never overwrites. "
                             "Choose a new directory or remove this one.")


def _temp_sibling(out: Path) -> tuple[Path, list[Path]]:
    """A fresh temporary directory beside ``out``; also the parents this call had to create."""
    parent = out.absolute().parent
    created: list[Path] = []
    p = parent
    while not p.exists():
        created.append(p)
        p = p.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{out.absolute().name}.tmp-{os.getpid()}"
    if tmp.exists():  # left by a crashed earlier process that had the same pid
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp, created


def _discard(tmp: Path, created: list[Path]) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    for p in created:  # deepest first
        with contextlib.suppress(OSError):
            p.rmdir()


def _move_into_place(tmp: Path, out: Path) -> None:
    if out.is_dir():
        out.rmdir()  # empty (checked before); rename cannot replace a directory everywhere
    os.replace(tmp, out)


# ---------------------------------------------------------------------------- import
def import_allenai(src_dir: str | os.PathLike[str], out_run: str | os.PathLike[str], *,
                   classes: Sequence[str] | None = None,
                   progress: Callable[[str], None] | None = None) -> Run:
    """Convert allenai/cartography training-dynamics logs into a datacarto run.

    Parameters
    ----------
    src_dir : path
        Folder holding ``dynamics_epoch_0.jsonl``, ``dynamics_epoch_1.jsonl``, ... (or its parent,
        allenai's ``--model_dir``, with a ``training_dynamics/`` sub-folder).
    out_run : path
        The run directory to create. It must not exist, or be empty.
    classes : sequence of str, optional
        Class names, index k -> classes[k]; their number must equal the logits' length.
        Default: "0", "1", ..., "K-1".
    progress : callable, optional
        Called with a short message after each epoch file.

    Returns
    -------
    Run
        The new run: allenai epoch E is datacarto epoch E + 1; capture "pass" (allenai logs the
        training forward pass); ``run.meta.extra["source"] == "allenai"``.

    Raises
    ------
    InputError, SchemaError
        On any malformed input, naming the file, line and guid: an empty file, invalid or
        truncated JSON, non-UTF-8 bytes, missing keys, NaN/Infinity logits, logits of the wrong
        length, a gold label outside 0..K-1, a guid with two gold labels, a guid missing from an
        epoch, or a non-empty ``out_run``. Nothing is written then.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> src = pathlib.Path(tmp.name)
    >>> for e, z in enumerate([[0.0, 1.0], [0.0, 2.0]]):
    ...     rows = [{"guid": 7, f"logits_epoch_{e}": z, "gold": 1}]
    ...     _ = (src / f"dynamics_epoch_{e}.jsonl").write_text(json.dumps(rows[0]) + "\\n")
    >>> run = import_allenai(src, src / "run")
    >>> run.epochs, run.meta.extra["source"]
    ([1, 2], 'allenai')
    >>> tmp.cleanup()
    """
    out = Path(out_run)
    _check_fresh_dir(out, what="import")
    files = find_epoch_files(src_dir)
    n_classes: int | None = None
    names: list[str] | None = None
    if classes is not None:
        names = [str(c) for c in classes]
        if len(names) < 2 or len(set(names)) != len(names):
            raise InputError(f"import_allenai: classes must be at least 2 distinct names; got "
                             f"{names}.")
        n_classes = len(names)
    meta = {"source": "allenai", "source_dir": str(files[0].parent.resolve()),
            "source_files": [p.name for p in files],
            "source_epochs": list(range(len(files)))}
    tmp, created = _temp_sibling(out)
    float32_ties = 0
    try:
        recorder = Recorder(tmp, classes=names, capture="pass", inputs="logits", meta=meta)
        ref: _Epoch | None = None
        guid_type: type | None = None
        for epoch, path in enumerate(files):
            cur, guid_type = _read_epoch(path, epoch, n_classes=n_classes, guid_type=guid_type)
            assert cur.logits is not None
            n_classes = cur.logits.shape[1]
            if ref is None:
                ref = _Epoch(path=cur.path, ids=cur.ids, logits=None, gold=cur.gold, lines=cur.lines)
            else:
                _check_same_examples(ref, cur)
            # allenai takes np.argmax of the float64 logits, datacarto of the stored float32 ones
            float32_ties += int((cur.logits.argmax(axis=1)
                                 != cur.logits.astype(np.float32).argmax(axis=1)).sum())
            recorder.update(cur.ids, cur.logits, cur.gold)
            recorder.end_epoch()
            if progress is not None:
                progress(f"read {path.name}: {len(cur.ids):,} examples")
        recorder.close()
        _move_into_place(tmp, out)
    except BaseException:
        _discard(tmp, created)
        raise
    if float32_ties:
        warnings.warn(f"import_allenai: {float32_ties} rows have logits whose argmax changes when "
                      "rounded to float32 (near-ties); their correctness may differ from allenai's, "
                      "which takes the argmax of the float64 values.", UserWarning, stacklevel=2)
    return load(out)


# ---------------------------------------------------------------------------- export
def allenai_metrics(dynamics: TrainingDynamics, *, include_ci: bool = False) -> pd.DataFrame:
    """allenai's ``td_metrics`` columns for a run's dynamics, one row per id (ascending).

    ``confidence`` = mean_e p_ie, ``variability`` = population std of p_ie (or, with
    ``include_ci``, sqrt(v + v^2/(E-1))), ``threshold_closeness`` = mu (1 - mu),
    ``correctness`` = the *count* of epochs with argmax = gold, ``forgetfulness`` = the number of
    learned -> forgotten transitions, or 1000 for an example never predicted correctly.
    ``index`` numbers the rows 0..N-1 (allenai numbers them in the order of its first epoch
    file; a run keeps its rows in id order).
    """
    if include_ci and dynamics.n_epochs < 2:
        raise InputError("allenai_metrics(include_ci=True) needs at least 2 epochs; got 1.")
    p = dynamics.gold_prob.astype(np.float64)
    correct = dynamics.pred == dynamics.labels[:, None]
    conf = _confidence(p)
    forgetting = np.where(correct.any(axis=1), _forgetting_events(correct),
                          NEVER_LEARNED_FORGETFULNESS)
    return pd.DataFrame({
        "guid": dynamics.ids,
        "index": np.arange(dynamics.n_examples, dtype=np.int64),
        "threshold_closeness": conf * (1.0 - conf),
        "confidence": conf,
        "variability": _variability(p, include_ci=include_ci),
        "correctness": correct.sum(axis=1).astype(np.int64),
        "forgetfulness": forgetting.astype(np.int64),
    }, columns=list(METRIC_COLUMNS))


def _jsonl_metrics(frame: pd.DataFrame) -> str:
    cols = [frame[c].tolist() for c in METRIC_COLUMNS]
    return "".join(json.dumps(dict(zip(METRIC_COLUMNS, row)), separators=(",", ":")) + "\n"
                   for row in zip(*cols))


def _jsonl_epoch(guids: list[str], logits: np.ndarray, gold: list[int], epoch: int) -> str:
    # 9 significant digits identify a float32 exactly, so a re-import gives the same logits
    row_fmt = "[" + ",".join(["%.9g"] * logits.shape[1]) + "]"
    head = f',"logits_epoch_{epoch}":'
    return "".join(f'{{"guid":{g}{head}{row_fmt % tuple(z)},"gold":{y}}}\n'
                   for g, z, y in zip(guids, logits.tolist(), gold))


def export_allenai(run: Run | str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                   epochs: str | None = None, include_ci: bool = False) -> Path:
    """Write a run in allenai/cartography's layout.

    Creates ``out_dir/training_dynamics/dynamics_epoch_{E-1}.jsonl`` for every recorded epoch E
    (logits written with 9 significant digits, which round-trip float32 exactly) and
    ``out_dir/td_metrics.jsonl`` with allenai's columns (see :func:`allenai_metrics`), computed
    over the ``epochs`` window (allenai's ``--burn_out B`` is ``":B"``). ``out_dir`` must not
    exist or be empty; it appears only when every file is written.

    The run must store full logits (runs do when K is at most
    ``datacarto.store.DEFAULT_MAX_LOGIT_CLASSES``); rows are written in id order.
    """
    r = run if isinstance(run, Run) else load(run)
    if not r.meta.logits_stored:
        raise InputError(f"{r.path}: the run stores no full logits (it has {len(r.classes)} "
                         f"classes; logits are kept up to {store.DEFAULT_MAX_LOGIT_CLASSES}), and "
                         "allenai's format needs them. Use `datacarto metrics` for the metrics.")
    out = Path(out_dir)
    _check_fresh_dir(out, what="export")
    dyn = r.dynamics()
    if dyn.logits is None:  # pragma: no cover - run.json said logits_stored
        raise InputError(f"{r.path}: the run's shards hold no logits column.")
    metrics = allenai_metrics(dyn.window(epochs), include_ci=include_ci)
    guids = [json.dumps(g) for g in dyn.ids.tolist()]
    gold = dyn.labels.tolist()
    tmp, created = _temp_sibling(out)
    try:
        (tmp / SUBDIR).mkdir()
        for j, epoch in enumerate(dyn.epochs.tolist()):
            store.atomic_write_text(tmp / SUBDIR / f"dynamics_epoch_{epoch - 1}.jsonl",
                                    _jsonl_epoch(guids, dyn.logits[:, j], gold, epoch - 1))
        store.atomic_write_text(tmp / METRICS_FILE, _jsonl_metrics(metrics))
        _move_into_place(tmp, out)
    except BaseException:
        _discard(tmp, created)
        raise
    return out
