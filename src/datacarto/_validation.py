"""Input checks at the public edge. Each returns the converted array or raises InputError.

Private twins elsewhere assume their inputs passed through here and never check twice.
Every check takes ``name`` (the parameter) and ``where`` (the caller, e.g.
``"Recorder.update (epoch 2, batch 17)"``) so that messages say where, what and how to fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._deps import looks_like
from .errors import InputError


def _prefix(where: str | None) -> str:
    return f"{where}: " if where else ""


def to_numpy(x: Any) -> np.ndarray:
    """Convert numpy arrays, lists and framework tensors (torch, tensorflow, jax) to numpy.

    Tensors are recognised by their class's module, so no framework is imported here.
    """
    if isinstance(x, np.ndarray):
        return x
    if looks_like(x, "torch"):
        x = x.detach()
        if x.dtype.is_floating_point and x.element_size() < 4:
            x = x.float()  # numpy has no bfloat16
        return x.cpu().numpy()
    if looks_like(x, "tensorflow") or looks_like(x, "keras"):
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    if looks_like(x, "pandas"):
        return x.to_numpy()
    return np.asarray(x)


def check_float_array(x: Any, *, name: str, ndim: int | tuple[int, ...], where: str | None = None,
                      low: float | None = None, high: float | None = None) -> np.ndarray:
    """Return ``x`` as a finite float64 array of the given rank, optionally within [low, high]."""
    arr = to_numpy(x)
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise InputError(f"{_prefix(where)}{name} must be {want}; got shape {arr.shape}.")
    if arr.size == 0:
        raise InputError(f"{_prefix(where)}{name} is empty; got shape {arr.shape}.")
    if arr.dtype.kind not in "fiub":
        raise InputError(f"{_prefix(where)}{name} must hold numbers; got dtype {arr.dtype}.")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{_prefix(where)}{name}[{_fmt_idx(idx)}] = {arr[idx]} is not finite. "
                         "NaN or infinite values usually mean the model diverged.")
    for bound, test, word in ((low, arr < low if low is not None else None, "below"),
                              (high, arr > high if high is not None else None, "above")):
        if bound is not None and test is not None and test.any():
            idx = tuple(int(i) for i in np.argwhere(test)[0])
            raise InputError(f"{_prefix(where)}{name}[{_fmt_idx(idx)}] = {arr[idx]:.6g} is outside "
                             f"[{low}, {high}].")
    return arr


def _fmt_idx(idx: tuple[int, ...]) -> str:
    return ", ".join(str(i) for i in idx)


def check_labels(labels: Any, *, n_classes: int | None, name: str = "labels",
                 where: str | None = None, ids: np.ndarray | None = None) -> np.ndarray:
    """Return integer class indices in 0..n_classes-1 as int64."""
    arr = to_numpy(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"{_prefix(where)}{name} must be 1-D class indices; got shape {arr.shape}.")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            i = int(np.argmax(~np.isfinite(arr) | (arr != np.round(arr))))
            raise InputError(f"{_prefix(where)}{name}[{i}]{_id_note(ids, i)} = {arr[i]} is not an "
                             "integer class index.")
    elif arr.dtype.kind not in "iub":
        raise InputError(f"{_prefix(where)}{name} must be integer class indices; got dtype "
                         f"{arr.dtype}. Map class names to 0..K-1 first.")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and n_classes is not None:
        bad = (arr < 0) | (arr >= n_classes)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{_prefix(where)}{name}[{i}]{_id_note(ids, i)} = {arr[i]} is outside "
                             f"0..{n_classes - 1} ({n_classes} classes). Labels must be integer class "
                             "indices 0..K-1.")
    return arr


def _id_note(ids: np.ndarray | None, i: int) -> str:
    return f" (id={fmt_id(ids[i])})" if ids is not None and i < len(ids) else ""


def check_ids(ids: Any, *, name: str = "ids", where: str | None = None) -> np.ndarray:
    """Return example ids as int64 or as a numpy unicode array; mixed or float ids are errors."""
    if isinstance(ids, (list, tuple)):
        # np.asarray would silently turn [0, "a"] into strings
        arr = np.empty(len(ids), dtype=object)
        arr[:] = ids
    else:
        arr = to_numpy(ids)
    if arr.ndim != 1:
        raise InputError(f"{_prefix(where)}{name} must be 1-D; got shape {arr.shape}.")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    if arr.dtype.kind == "O":
        kinds = {type(v) for v in arr.tolist()}
        if kinds <= {str, np.str_}:
            return arr.astype(str)
        if all(issubclass(k, (int, np.integer)) and not issubclass(k, bool) for k in kinds):
            return arr.astype(np.int64)
        if kinds <= {float} and all(float(v).is_integer() for v in arr.tolist()):
            return arr.astype(np.int64)
        if len(kinds) == 1:
            raise InputError(f"{_prefix(where)}{name} must be integers or strings; got "
                             f"{next(iter(kinds)).__name__} values.")
        raise InputError(f"{_prefix(where)}{name} mixes types {sorted(k.__name__ for k in kinds)}; "
                         "ids must be all integers or all strings.")
    raise InputError(f"{_prefix(where)}{name} must be integers or strings; got dtype {arr.dtype}.")


def check_fraction(value: Any, *, name: str = "fraction", where: str = "select") -> float:
    """A float in (0, 1]."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = float("nan")
    if not (0.0 < f <= 1.0):
        raise InputError(f"The '{name}' parameter of {where} must be a float in (0, 1]. "
                         f"Got {value!r} instead.")
    return f


def check_option(value: Any, options: Sequence[str], *, name: str, where: str) -> str:
    """One of ``options``, with a did-you-mean hint."""
    if value in options:
        return str(value)
    hint = difflib.get_close_matches(str(value), list(options), n=1)
    extra = f" Did you mean {hint[0]!r}?" if hint else ""
    allowed = ", ".join(repr(o) for o in options)
    raise InputError(f"The '{name}' parameter of {where} must be one of {allowed}. "
                     f"Got {value!r} instead.{extra}")


def fmt_id(value: Any) -> str:
    """An id as users wrote it: ``7`` or ``'train-7'`` (not ``np.int64(7)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)
