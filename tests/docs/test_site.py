"""Checks over the BUILT documentation site (HTML), the way a reader meets it.

`make test` builds the site with `mkdocs build --strict --site-dir .venv/site` and then runs
pytest, so these tests read a fresh build. Point them at another build with
``SEMPRIOR_SITE_DIR=/path/to/site``. When no built site exists (or it is older than the sources),
every test here skips and says how to build it.

What fails:
- a raw Sphinx role (``:class:`X` ``, ``:func:``, ``:meth:``, ``:mod:``, ``:attr:``, ``:math:``, ...) left as text;
- an ``Example``/``Examples`` section whose body has no code block, or a doctest collapsed into
  prose (``>>>`` rendered as nested block quotes or as text);
- a link to a page or an anchor that does not exist, an ``<img>`` whose file does not exist;
- a script or stylesheet loaded from the network (the site must work offline), a page with
  formulas that does not load the bundled math renderer;
- a public name (``semprior.__all__`` and the subpackages' ``__all__``) or a CLI command that is on
  no page.
"""

from __future__ import annotations

import importlib
import os
import re
import zlib
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("SEMPRIOR_SITE_DIR", REPO / ".venv" / "site"))
BUILD = "NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir .venv/site (or `make test`)"
SOURCES = [REPO / "mkdocs.yml", REPO / "docs", REPO / "semprior"]
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|ref|doc|math):\s*(?:<code>|`)")
SUBPACKAGES_CHECKED = ("attention", "data", "engine", "kernels", "losses", "metrics", "models", "priors", "retinex")


def _newest_source_mtime() -> float:
    newest = 0.0
    for root in SOURCES:
        files = [root] if root.is_file() else root.rglob("*")
        for f in files:
            if f.is_file() and f.suffix in {".md", ".py", ".yml", ".css", ".js", ".png", ".jpg"}:
                newest = max(newest, f.stat().st_mtime)
    return newest


@lru_cache(maxsize=1)
def _site_or_skip_reason() -> str | None:
    if not (SITE / "index.html").is_file():
        return f"no built site at {SITE}: build it with {BUILD}"
    if "SEMPRIOR_SITE_DIR" not in os.environ and (SITE / "index.html").stat().st_mtime < _newest_source_mtime():
        return f"the built site at {SITE} is older than docs/ or semprior/: rebuild it with {BUILD}"
    return None


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    reason = _site_or_skip_reason()
    if reason:
        pytest.skip(reason)
    return {p.relative_to(SITE).as_posix(): p.read_text(encoding="utf-8") for p in sorted(SITE.rglob("*.html"))}


class _Collector(HTMLParser):
    """Collects ids, links, images, scripts and stylesheets of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "name" in a:
            self.ids.add(a["name"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "img" and "src" in a:
            self.images.append(a["src"])
        elif tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        elif tag == "link" and "stylesheet" in a.get("rel", "") and a.get("href"):
            self.styles.append(a["href"])


@pytest.fixture(scope="module")
def parsed(pages) -> dict[str, _Collector]:
    out = {}
    for name, html in pages.items():
        c = _Collector()
        c.feed(html)
        out[name] = c
    return out


def _content(html: str) -> str:
    """The article body of a page (no navigation, no search index), code blocks removed."""
    start = html.find('<article class="md-content__inner')
    end = html.find("</article>", start)
    body = html[start:end] if start >= 0 else html
    return re.sub(r"<pre[^>]*>.*?</pre>", "<pre></pre>", body, flags=re.S)


def _context(text: str, i: int, width: int = 90) -> str:
    snippet = re.sub(r"<[^>]+>", "", text[max(0, i - width) : i + width])
    return " ".join(snippet.split())


def _is_external(url: str) -> bool:
    return bool(urlsplit(url).scheme) or url.startswith("//")


def test_no_raw_sphinx_roles(pages):
    found = []
    for name, html in pages.items():
        body = _content(html)
        for m in re.finditer(r"\.\. [a-z-]+::", body):  # a reStructuredText directive left as text
            found.append(f"{name}: ...{_context(body, m.start())}...")
        for m in ROLE.finditer(body):
            found.append(f"{name}: ...{_context(body, m.start())}...")
    assert not found, (
        f"{len(found)} raw Sphinx roles render as text; write [`Name`][semprior.full.path] "
        "(or run tools/docs_sweep.py):\n" + "\n".join(found[:60])
    )


_EXAMPLE_ADMONITION = re.compile(r'<(details|div) class="(?:admonition )?examples?"[^>]*>(.*?)</\1>', flags=re.S | re.I)
_EXAMPLES_SECTION = re.compile(
    r'<span class="doc-section-title">Examples?:</span>(.*?)(?=<span class="doc-section-title">|'
    r'<div class="doc doc-object|<h[1-6] |\Z)',
    flags=re.S,
)


def test_examples_render_as_code(pages):
    bad = []
    for name, html in pages.items():
        start = html.find('<article class="md-content__inner')
        body = html[start : html.find("</article>", start)] if start >= 0 else html
        reported = []
        for m in _EXAMPLE_ADMONITION.finditer(body):
            if "<pre" not in m.group(2):
                bad.append(f"{name}: Example section without a code block: ...{_context(body, m.start(), 160)}...")
                reported.append(m.group(0))
        for block in reported:  # one report per example, not one more for the prose inside it
            body = body.replace(block, "")
            html = html.replace(block, "")
        for m in _EXAMPLES_SECTION.finditer(body):
            if "<pre" not in m.group(1):
                bad.append(f"{name}: Examples section without a code block: ...{_context(body, m.start(), 160)}...")
        text = re.sub(r"<code>.*?</code>", "<code></code>", _content(html), flags=re.S)
        for m in re.finditer(r"<blockquote>\s*<blockquote>\s*<blockquote>|&gt;&gt;&gt;|>>>|Examples?::", text):
            bad.append(f"{name}: doctest collapsed into prose: ...{_context(text, m.start(), 160)}...")
    assert not bad, (
        f"{len(bad)} examples do not render as code; name the docstring section `Examples:` and "
        "start each line with `>>>`:\n" + "\n".join(bad[:60])
    )


def _resolve(page: str, url: str) -> tuple[Path, str]:
    parts = urlsplit(url)
    base = (SITE / page).parent
    target = (base / unquote(parts.path)).resolve() if parts.path else (SITE / page).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def test_internal_links_and_anchors_exist(parsed):
    ids = {(SITE / name).resolve(): c.ids for name, c in parsed.items()}
    broken = []
    for name, c in parsed.items():
        if name == "404.html":  # material writes site-absolute links there; it is not a content page
            continue
        for href in c.links:
            if not href or _is_external(href) or href.startswith(("mailto:", "javascript:")):
                continue
            target, fragment = _resolve(name, href)
            if not target.exists():
                broken.append(f"{name}: link to missing page {href}")
            elif fragment and target.suffix == ".html" and fragment not in ids.get(target, set()):
                broken.append(f"{name}: link to missing anchor {href}")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(sorted(set(broken))[:60])


def test_images_exist(parsed):
    missing = []
    for name, c in parsed.items():
        for src in c.images:
            if _is_external(src):
                missing.append(f"{name}: image loaded from the network: {src}")
            elif not src.startswith("data:") and not _resolve(name, src)[0].is_file():
                missing.append(f"{name}: missing image {src}")
    assert not missing, "\n".join(missing)


def test_site_works_offline(parsed, pages):
    remote = []
    for name, c in parsed.items():
        for url in c.scripts + c.styles:
            if name == "404.html" and url.startswith("/"):  # site-absolute by design (served at any depth)
                continue
            if _is_external(url):
                remote.append(f"{name}: {url}")
            elif not _resolve(name, url)[0].is_file():
                remote.append(f"{name}: missing local asset {url}")
    assert not remote, "scripts/styles must be bundled, not fetched:\n" + "\n".join(sorted(set(remote))[:40])
    for css in SITE.rglob("*.css"):  # fonts and images a bundled stylesheet points at
        for url in re.findall(r"url\(['\"]?([^'\")]+)", css.read_text(encoding="utf-8", errors="replace")):
            if url.startswith(("data:", "#")):
                continue
            if _is_external(url):
                remote.append(f"{css.relative_to(SITE)}: {url}")
            elif not (css.parent / url.split("#")[0].split("?")[0]).is_file():
                remote.append(f"{css.relative_to(SITE)}: missing {url}")
    assert not remote, "stylesheets must point at bundled files:\n" + "\n".join(sorted(set(remote))[:40])
    math_pages = [n for n, h in pages.items() if 'class="arithmatex"' in h]
    no_renderer = [n for n in math_pages if not any("katex" in s for s in parsed[n].scripts)]
    assert not no_renderer, f"pages with formulas but no bundled KaTeX: {no_renderer}"


def test_no_escaped_pipes_in_table_code(pages):
    """``\\|`` inside a backtick span in a Markdown table shows the backslash; the table extension
    already leaves a plain ``|`` inside backticks alone."""
    found = []
    for name, html in pages.items():
        body = _content(html)
        for m in re.finditer(r"<td>(?:(?!</td>).)*?<code>[^<]*\\\|", body, flags=re.S):
            found.append(f"{name}: ...{_context(body, m.end())}...")
    assert not found, f"{len(found)} table cells show '\\|'; write a plain | inside the backticks:\n" + "\n".join(found)


def test_no_raw_tex(pages):
    """TeX that arithmatex did not pick up (e.g. `$$` inside a list item) shows as source text."""
    raw = []
    for name, html in pages.items():
        text = re.sub(r'<(span|div) class="arithmatex">.*?</\1>', "", _content(html), flags=re.S)
        text = re.sub(r"<code>.*?</code>", "", text, flags=re.S)
        for m in re.finditer(r"\$\$|\\(?:mathcal|mathrm|frac|sum|log|cos|sqrt|big)\b", text):
            raw.append(f"{name}: ...{_context(text, m.start())}...")
    assert not raw, f"{len(raw)} formulas render as raw TeX:\n" + "\n".join(raw[:40])


def _inventory() -> set[str]:
    """Object names mkdocstrings rendered (objects.inv, Sphinx inventory v2)."""
    raw = (SITE / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = raw.index(b"\n", header_end) + 1
    lines = zlib.decompress(raw[header_end:]).decode().splitlines()
    return {line.split(" ", 1)[0] for line in lines if line}


def _public_objects() -> list[tuple[str, str]]:
    """(public name, canonical module.qualname) for every class and function in the public API."""
    out = []
    modules = ["semprior"] + [f"semprior.{p}" for p in SUBPACKAGES_CHECKED]
    for modname in modules:
        mod = importlib.import_module(modname)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if callable(obj) and hasattr(obj, "__qualname__"):
                out.append((f"{modname}.{name}", f"{obj.__module__}.{obj.__qualname__}"))
    return sorted(set(out))


def test_every_public_name_is_on_a_page(pages):
    documented = _inventory()
    missing = [
        f"{public} (add `::: {path}` to a page in docs/api/)"
        for public, path in _public_objects()
        if path not in documented and public not in documented
    ]
    assert not missing, f"{len(missing)} public names are on no API page:\n" + "\n".join(missing)


def test_every_cli_command_is_on_a_page(pages):
    from semprior.cli.main import COMMANDS

    cli_page = pages.get("api/cli/index.html", "")
    missing = [name for name, (mod, _) in COMMANDS.items() if f'id="{mod}"' not in cli_page]
    assert not missing, f"CLI commands without a section on docs/api/cli.md: {missing}"
