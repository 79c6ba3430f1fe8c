"""Optional-dependency helpers: detect without importing, fail with the pip extra to install."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

from .errors import MissingDependencyError


def is_available(module: str) -> bool:
    """True when ``module`` can be imported, decided without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import and return ``module``, or raise an error that names the extra to install."""
    if not is_available(module):
        raise MissingDependencyError(
            f"{feature} needs '{module}'. Install it with: pip install 'datacarto[{extra}]'"
        )
    return importlib.import_module(module)


def looks_like(obj: Any, package: str) -> bool:
    """True when ``obj``'s class (or a base) is defined in ``package``; imports nothing."""
    for klass in type(obj).__mro__:
        if (klass.__module__ or "").split(".")[0] == package:
            return True
    return False
