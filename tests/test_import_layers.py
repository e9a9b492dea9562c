"""The import graph of ``semprior/``: no cycle between modules, and no import from a lower layer into a higher one.

Every ``import`` counts, at the top of a module or inside a function (lazy imports too). The
layers are drawn in ``docs/architecture.md``; the diagram there must list the same ones.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "semprior"

#: bottom to top; a module may import from its own layer or a lower one (package name -> layer)
LAYERS: list[tuple[str, list[str]]] = [
    (
        "base",
        [
            "semprior._atomic",
            "semprior._bands",
            "semprior._checks",
            "semprior._config",
            "semprior._lazy",
            "semprior._memory",
            "semprior._optional",
            "semprior._torch_io",
            "semprior._torchscript",
            "semprior._version",
            "semprior.weights",
        ],
    ),
    ("kernels", ["semprior.kernels"]),
    ("blocks", ["semprior.retinex", "semprior.attention", "semprior.priors", "semprior.data"]),
    ("measures", ["semprior.metrics", "semprior.losses"]),
    ("models", ["semprior.models"]),
    ("engine", ["semprior.engine", "semprior.hub"]),
    ("entry points", ["semprior.cli", "semprior.app", "semprior.__main__", "semprior"]),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The semprior modules ``module`` imports (``from a.b import c`` is ``a.b.c`` when that is a module)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(n for n in names if n in known and n != module)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def _layer(module: str) -> int:
    best, index = "", -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, index = prefix, i
    assert index >= 0, f"{module} is in no layer of LAYERS; add its package to the layer it belongs to"
    return index


def test_every_module_has_a_layer():
    for module in _modules():
        _layer(module)


def test_no_import_from_a_lower_layer_into_a_higher_one():
    bad = [
        f"{m} ({LAYERS[_layer(m)][0]}) imports {d} ({LAYERS[_layer(d)][0]})"
        for m, deps in sorted(_graph().items())
        for d in sorted(deps)
        if _layer(d) > _layer(m) and not (m == "semprior" and d == "semprior._version")
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    graph = _graph()
    # a package imports its submodules by being their parent; those edges are not imports of this code
    graph = {m: {d for d in deps if not d.startswith(m + ".") or m == "semprior"} for m, deps in graph.items()}
    graph["semprior"] = set()  # the root package resolves names lazily (PEP 562), importing nothing at import time
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_lazy_imports(tmp_path):
    """An import inside a function counts (the cycle hub <-> registry used to hide there)."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from semprior.models.registry import MODELS\n")
    assert _imports("semprior.weights", f, {"semprior.models.registry", "semprior.weights"}) == {
        "semprior.models.registry"
    }


def test_architecture_page_draws_these_layers():
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"<!-- layers -->(.*?)<!-- /layers -->", text, re.S)
    assert block, "docs/architecture.md has no <!-- layers --> ... <!-- /layers --> block"
    drawn = re.findall(r'L(\d)\["([^"]+)"\]', block.group(1))
    assert [int(i) for i, _ in drawn] == list(range(len(LAYERS)))[::-1], drawn
    for i, label in drawn:
        name, packages = LAYERS[int(i)]
        assert label.startswith(name + ":"), (label, name)
        shown = {p.strip() for p in label.split(":", 1)[1].replace("<br/>", ",").split(",") if p.strip()}
        assert shown == {p.removeprefix("semprior.") or "semprior" for p in packages}, (label, packages)
