"""Subpackage ``__all__`` is the single source of the public API (models, metrics, kernels, attention, losses, data)."""

from __future__ import annotations

import importlib

import pytest

import semprior

OWNED = (
    "semprior.models",
    "semprior.metrics",
    "semprior.kernels",
    "semprior.attention",
    "semprior.losses",
    "semprior.data",
)


@pytest.mark.parametrize("pkg", OWNED)
def test_top_level_exports_are_in_the_subpackage_all(pkg):
    sub = importlib.import_module(pkg)
    exported = sorted(n for n, m in semprior._EXPORTS.items() if m == pkg or m.startswith(pkg + "."))
    # a name may also be reached as the subpackage's module of that name (semprior.niqe -> semprior.metrics.niqe.niqe)
    missing = [n for n in exported if n not in sub.__all__ and semprior._EXPORTS[n] != f"{pkg}.{n}"]
    assert not missing, f"{pkg}.__all__ lacks {missing}"


@pytest.mark.parametrize("pkg", OWNED)
def test_every_name_in_all_resolves(pkg):
    sub = importlib.import_module(pkg)
    assert sub.__all__ == sorted(sub.__all__) or pkg == "semprior.kernels"
    for name in sub.__all__:
        assert getattr(sub, name) is not None, f"{pkg}.{name}"
