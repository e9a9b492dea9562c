"""Convert docstrings to what the site renders: `Examples:` sections, mkdocstrings cross-references.

Mechanical and idempotent (a second run changes nothing). Run from the repository root, with the
venv that builds the docs:

    .venv/bin/python tools/docs_sweep.py semprior            # rewrite in place, print a summary
    .venv/bin/python tools/docs_sweep.py --check semprior    # exit 1 if anything would change

What it rewrites, in every ``*.py`` under the given paths:

1. ``Example:`` (a Google-style section header on its own line) -> ``Examples:``. griffe's Google
   parser (2.x) knows only the plural as a section; the singular becomes an admonition whose
   ``>>>`` lines Markdown turns into nested block quotes. No parser option maps the singular.
   ``Example (a title):`` -> ``Examples:`` with ``A title:`` as its first line.
2. ``Examples::`` followed by an indented literal block (reStructuredText) -> an ``Examples:``
   section holding a fenced ``bash`` block, so shell examples render as code too.
3. Sphinx roles ``:class:`X` ``, ``:func:``, ``:meth:``, ``:attr:``, ``:mod:``, ``:data:``,
   ``:exc:``, ``:obj:`` -> ``[`X`][semprior.full.path]`` when X resolves (from the docstring's
   class, its module, or the package) to an object that a docs page renders; else plain
   ``` `X` ```. A leading ``~`` shows only the last name, as in Sphinx.
4. ``:math:`TeX` `` -> ``$TeX$`` and ``.. math::`` (one line or an indented block) -> a ``$$``
   block (pymdownx.arithmatex; the site renders both with the bundled KaTeX).

"Rendered on a page" is read from the ``objects.inv`` of a fresh site build: the tool builds the
site into a temporary folder first (``mkdocs build``), or reads ``--inventory PATH``. So run it
AFTER the API pages list everything that should be linkable; names not on a page stay code.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|attr|mod|data|exc|obj):`(~?)([^`<>]+?)(\(\))?`")
MATH_ROLE = re.compile(r":math:`([^`]+)`")
MATH_LINE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]+(?P<tex>\S.*)$", re.M)
MATH_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n[ \t]*\n(?P<block>(?:(?P=indent)[ \t]+\S.*\n|[ \t]*\n)+)", re.M
)
EXAMPLE_SINGULAR = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.M)
EXAMPLE_TITLED = re.compile(r"^(?P<indent>[ \t]*)Examples? \((?P<title>[^)\n]+)\):[ \t]*$", re.M)
RST_EXAMPLES = re.compile(
    r"^(?P<indent>[ \t]*)Examples::[ \t]*\n[ \t]*\n(?P<block>(?:(?P=indent)[ \t]+\S.*\n|[ \t]*\n)+)", re.M
)


def read_inventory(path: Path) -> set[str]:
    """Object names in a Sphinx v2 inventory (what mkdocstrings rendered)."""
    raw = path.read_bytes()
    end = 0
    for _ in range(4):
        end = raw.index(b"\n", end) + 1
    return {line.split(" ", 1)[0] for line in zlib.decompress(raw[end:]).decode().splitlines() if line}


def build_inventory(root: Path) -> set[str]:
    with tempfile.TemporaryDirectory() as site:
        cmd = [sys.executable, "-m", "mkdocs", "build", "--quiet", "--site-dir", site]
        done = subprocess.run(cmd, cwd=root, env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
        if done.returncode:
            raise SystemExit(f"docs_sweep: `{' '.join(cmd)}` failed in {root}; fix the build or pass --inventory")
        return read_inventory(Path(site) / "objects.inv")


class Resolver:
    """Finds the documented path of a role target seen in module `module` (inside class `cls`)."""

    def __init__(self, package: griffe.Module, documented: set[str]) -> None:
        self.package = package
        self.documented = documented

    def _canonical(self, path: str) -> str | None:
        rel = path.removeprefix(self.package.path).lstrip(".")
        try:
            obj = self.package[rel] if rel else self.package
            return obj.final_target.path if obj.is_alias else obj.path
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None

    def resolve(self, target: str, module: str, cls: str | None) -> str | None:
        candidates = []
        if target.startswith(self.package.path + ".") or target == self.package.path:
            candidates.append(target)
        else:
            if cls:
                candidates.append(f"{module}.{cls}.{target}")
            candidates += [f"{module}.{target}", f"{self.package.path}.{target}"]
        for cand in candidates:
            canonical = self._canonical(cand)
            if canonical and canonical in self.documented:
                return canonical
        # last resort: a unique documented object whose dotted name ends with the target
        tail = {self._canonical(p) or p for p in self.documented if p.endswith("." + target)}
        tail &= self.documented
        return tail.pop() if len(tail) == 1 else None


def _classes_by_line(source: str) -> list[tuple[int, int, str]]:
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            spans.append((node.lineno, node.end_lineno or node.lineno, node.name))
    return spans


def _enclosing_class(spans: list[tuple[int, int, str]], line: int) -> str | None:
    inside = [s for s in spans if s[0] <= line <= s[1]]
    return max(inside, key=lambda s: s[0])[2] if inside else None  # innermost


def _rst_examples(match: re.Match) -> str:
    indent = match.group("indent")
    block = match.group("block").rstrip("\n").split("\n")
    body_indent = min(len(ln) - len(ln.lstrip()) for ln in block if ln.strip())
    inner = indent + "    "
    lines = [inner + ln[body_indent:] if ln.strip() else "" for ln in block]
    blank_after = "\n" if match.group("block").endswith("\n\n") else ""
    return f"{indent}Examples:\n{inner}```bash\n" + "\n".join(lines) + f"\n{inner}```\n" + blank_after


def sweep_source(source: str, module: str, resolver: Resolver, unresolved: list[str]) -> str:
    source = EXAMPLE_SINGULAR.sub(lambda m: f"{m.group('indent')}Examples:", source)
    source = EXAMPLE_TITLED.sub(
        lambda m: (
            f"{m.group('indent')}Examples:\n{m.group('indent')}    "
            f"{m.group('title')[:1].upper()}{m.group('title')[1:]}:"
        ),
        source,
    )
    source = RST_EXAMPLES.sub(_rst_examples, source)
    spans = _classes_by_line(source)
    line_starts = [0] + [i + 1 for i, c in enumerate(source) if c == "\n"]

    def role(m: re.Match) -> str:
        kind, tilde, target = m.group(1), m.group(2), m.group(3).strip()
        line = _bisect(line_starts, m.start())
        shown = target.rsplit(".", 1)[-1] if tilde else target
        path = resolver.resolve(target, module, _enclosing_class(spans, line))
        if path is None:
            unresolved.append(f"{module}:{line}: :{kind}:`{tilde}{target}`")
            return f"`{shown}`"
        return f"[`{shown}`][{path}]"

    source = ROLE.sub(role, source)
    source = MATH_ROLE.sub(lambda m: f"${m.group(1).strip()}$", source)
    source = MATH_LINE.sub(
        lambda m: f"{m.group('indent')}$$\n{m.group('indent')}{m.group('tex').rstrip()}\n{m.group('indent')}$$", source
    )
    return MATH_BLOCK.sub(_math_block, source)


def _math_block(match: re.Match) -> str:
    indent = match.group("indent")
    block = match.group("block").rstrip("\n").split("\n")
    body_indent = min(len(ln) - len(ln.lstrip()) for ln in block if ln.strip())
    lines = [indent + ln[body_indent:] if ln.strip() else "" for ln in block]
    blank_after = "\n" if match.group("block").endswith("\n\n") else ""
    return f"{indent}$$\n" + "\n".join(lines) + f"\n{indent}$$\n" + blank_after


def _bisect(starts: list[int], pos: int) -> int:
    lo, hi = 0, len(starts)
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if starts[mid] <= pos else (lo, mid)
    return lo + 1


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.resolve().relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path, help="files or folders of a package (e.g. semprior)")
    ap.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (holds mkdocs.yml)")
    ap.add_argument("--inventory", type=Path, help="objects.inv of a fresh site build (default: build one)")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    files = sorted({f for p in args.paths for f in ([p] if p.is_file() else p.rglob("*.py"))})
    if not files:
        raise SystemExit(f"docs_sweep: no .py files under {[str(p) for p in args.paths]}")
    documented = read_inventory(args.inventory) if args.inventory else build_inventory(root)
    package_name = _module_name(files[0], root).split(".")[0]
    package = griffe.load(package_name, search_paths=[str(root)], resolve_aliases=False)
    resolver = Resolver(package, documented)
    changed, unresolved = [], []
    for f in files:
        old = f.read_text(encoding="utf-8")
        new = sweep_source(old, _module_name(f, root), resolver, unresolved)
        if new != old:
            changed.append(f)
            if not args.check:
                f.write_text(new, encoding="utf-8")
    verb = "would change" if args.check else "changed"
    print(f"docs_sweep: {verb} {len(changed)} of {len(files)} files")
    for f in changed:
        print(f"  {f}")
    if unresolved:
        print(f"docs_sweep: {len(unresolved)} roles name no documented object; written as plain code:")
        print("\n".join(f"  {u}" for u in unresolved))
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
