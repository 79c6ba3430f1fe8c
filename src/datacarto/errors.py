"""Exceptions raised by datacarto.

Every error a user can cause is a :class:`DatacartoError`; each class also subclasses the
builtin a caller would naturally catch, so ``except ValueError`` keeps working::

    DatacartoError
    ├── InputError(ValueError)            bad argument, array or data file
    │   └── SchemaError                   a run or data file does not have the expected structure
    ├── StateError(RuntimeError)          a call made in the wrong order (e.g. end_epoch before update)
    └── MissingDependencyError(ImportError)  an optional extra is not installed

The CLI turns any of these into one line on stderr and exit code 2.
"""

from __future__ import annotations

__all__ = ["DatacartoError", "InputError", "MissingDependencyError", "SchemaError", "StateError"]


class DatacartoError(Exception):
    """Base class of every error datacarto raises on purpose."""


class InputError(DatacartoError, ValueError):
    """An argument, array or data file holds a value datacarto cannot use."""


class SchemaError(InputError):
    """A run directory, shard or data file lacks the expected structure."""


class StateError(DatacartoError, RuntimeError):
    """A method was called in an order that cannot produce a result."""


class MissingDependencyError(DatacartoError, ImportError):
    """An optional dependency (a pip extra) is needed for the requested feature."""
