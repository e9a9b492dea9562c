"""`import semprior` (and resolving its public names) imports no optional dependency and opens no socket."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import semprior

OPTIONAL = ("timm", "open_clip", "segment_anything", "triton", "matplotlib", "skimage", "pyiqa", "huggingface_hub")

_PROBE = textwrap.dedent(
    """
    import json, socket, sys
    attempts = []
    def _record(*a, **k):
        attempts.append(repr(a[:2]))
        raise OSError("network disabled by the import-hygiene test")
    _real_connect = socket.socket.connect
    def _connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            return _record(address)
        return _real_connect(self, address)
    socket.socket.connect = _connect
    socket.create_connection = _record
    socket.getaddrinfo = _record
    OPTIONAL = {optional!r}
    import semprior
    after_import = sorted(m for m in OPTIONAL if m in sys.modules)
    resolved, failed = [], {{}}
    if {resolve!r}:
        import semprior.retinex, semprior.losses, semprior.metrics, semprior.data.io, semprior.models.classical
        for name in semprior.__all__:
            try:
                getattr(semprior, name)
                resolved.append(name)
            except ImportError as exc:  # a module that does not exist yet
                failed[name] = str(exc)
    print(json.dumps({{
        "after_import": after_import,
        "after_resolve": sorted(m for m in OPTIONAL if m in sys.modules),
        "sockets": attempts,
        "failed": failed,
    }}))
    """
)


def _probe(resolve: bool) -> dict:
    code = _PROBE.format(optional=OPTIONAL, resolve=resolve)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_semprior_is_clean():
    r = _probe(resolve=False)
    assert r["after_import"] == [], f"`import semprior` imported optional dependencies: {r['after_import']}"
    assert r["sockets"] == [], f"`import semprior` tried to open sockets: {r['sockets']}"


@pytest.mark.slow
def test_resolving_public_names_is_clean():
    """Every public name (and the core subpackages) loads without timm/open_clip/SAM/triton."""
    from test_api_surface import PENDING

    r = _probe(resolve=True)
    assert r["after_resolve"] == [], f"resolving public names imported optional dependencies: {r['after_resolve']}"
    assert r["sockets"] == [], f"resolving public names tried to open sockets: {r['sockets']}"
    unexpected = {k: v for k, v in r["failed"].items() if k not in PENDING}
    assert not unexpected, f"public names that fail to import: {unexpected}"


#: packages below the training engine and the command line: they never import those two,
#: not even inside a function (shared helpers live in the lower layer instead)
_LOWER = (
    "_atomic",
    "_bands",
    "_checks",
    "_config",
    "_optional",
    "_torch_io",
    "attention",
    "data",
    "hub",
    "kernels",
    "losses",
    "metrics",
    "models",
    "priors",
    "retinex",
    "weights",
)


def test_lower_layers_never_import_engine_or_cli():
    import ast

    root = Path(semprior.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        top = path.relative_to(root).parts[0].removesuffix(".py")
        if top not in _LOWER:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in getattr(node, "names", [])]
                if isinstance(node, ast.Import)
                else []
            )
            found += [
                f"{path.relative_to(root)}:{node.lineno} imports {n}"
                for n in names
                if n.split(".")[:2] in (["semprior", "engine"], ["semprior", "cli"])
            ]
    assert not found, "a lower layer imports the engine or the CLI; move the shared helper down:\n" + "\n".join(found)
