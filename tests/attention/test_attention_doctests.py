"""The runnable examples in the kernels' and attention blocks' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "semprior.kernels.dispatch",
    "semprior.kernels.reference",
    "semprior.kernels.streaming",
    "semprior.attention.sem",
    "semprior.attention.ig",
    "semprior.attention.layers",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
