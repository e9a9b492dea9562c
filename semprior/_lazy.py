"""Lazy public names (PEP 562) for a package's ``__getattr__`` and ``__dir__``.

A package lists its public names in an ``_EXPORTS`` table (name -> module that defines it); the
two functions here resolve a name on first use and cache it in the package's namespace.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["lazy_attribute", "lazy_dir"]


def lazy_attribute(package: str, exports: dict[str, str], namespace: dict[str, Any], name: str) -> Any:
    """Import ``name`` from the module ``exports`` names for it, cache it in ``namespace`` and return it."""
    module = exports.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value


def lazy_dir(namespace: dict[str, Any], exports: dict[str, str]) -> list[str]:
    """The names already in ``namespace`` and those ``exports`` can still import, sorted."""
    return sorted(set(namespace) | set(exports))
