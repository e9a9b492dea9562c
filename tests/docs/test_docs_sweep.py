"""tools/docs_sweep.py on a tiny package: what it rewrites, what it leaves, and that it is idempotent."""

from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("docs_sweep", REPO / "tools" / "docs_sweep.py")
pytest.importorskip("griffe")

SOURCE = '''"""Tiny package: see :mod:`pkg.core` and :class:`~pkg.core.Thing`.

Examples::

    pkg run --fast
"""
'''
CORE = '''"""Core."""

from pkg.helpers import helper


class Thing:
    """A thing; built by :func:`helper`, see :meth:`go` and :class:`torch.nn.Module`.

    .. math:: y = x^2

    Example:
        >>> Thing().go()
        1
    """

    def go(self):
        """Return :math:`1`; calls :meth:`_private`.

        Example (a title):
            >>> 1
            1
        """
        return 1
'''
HELPERS = '''"""Helpers."""


def helper():
    """Make a :class:`~pkg.core.Thing`."""
'''


def _inventory(path: Path, names: list[str]) -> Path:
    body = "".join(f"{n} py:function 1 x.html#{n} -\n" for n in names).encode()
    header = b"# Sphinx inventory version 2\n# Project: x\n# Version: 0\n# zlib\n"
    path.write_bytes(header + zlib.compress(body))
    return path


@pytest.fixture()
def tree(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(SOURCE)
    (pkg / "core.py").write_text(CORE)
    (pkg / "helpers.py").write_text(HELPERS)
    inv = _inventory(
        tmp_path / "objects.inv", ["pkg.core", "pkg.core.Thing", "pkg.core.Thing.go", "pkg.helpers.helper"]
    )
    return tmp_path, inv


def _run(tree, *extra):
    root, inv = tree
    mod = importlib.util.module_from_spec(SPEC)
    SPEC.loader.exec_module(mod)
    return mod.main(["--root", str(root), "--inventory", str(inv), *extra, str(root / "pkg")])


def test_sweep_rewrites_then_is_idempotent(tree):
    root, _ = tree
    assert _run(tree, "--check") == 1  # something to do
    assert _run(tree) == 0
    core = (root / "pkg" / "core.py").read_text()
    init = (root / "pkg" / "__init__.py").read_text()
    assert "[`helper`][pkg.helpers.helper]" in core  # imported name resolved to its definition
    assert "[`go`][pkg.core.Thing.go]" in core  # method resolved from the enclosing class
    assert "`torch.nn.Module`" in core and "][torch" not in core  # not documented here: plain code
    assert "`_private`" in core and "[`_private`]" not in core
    assert "$1$" in core and "$$\n    y = x^2\n    $$" in core
    assert "    Examples:\n        >>> Thing().go()" in core and "Example:" not in core
    assert "        Examples:\n            A title:\n            >>> 1" in core
    assert "[`pkg.core`][pkg.core]" in init and "[`Thing`][pkg.core.Thing]" in init  # ~ shortens
    assert "Examples:\n    ```bash\n    pkg run --fast\n    ```\n" in init and "Examples::" not in init
    helpers = (root / "pkg" / "helpers.py").read_text()
    assert "[`Thing`][pkg.core.Thing]" in helpers
    before = {p: p.read_text() for p in (root / "pkg").glob("*.py")}
    assert _run(tree, "--check") == 0 and _run(tree) == 0
    assert before == {p: p.read_text() for p in (root / "pkg").glob("*.py")}
