"""The built site in a real Chromium window 1280 px wide: no table is cut off, no image is broken.

Reads the same build as tests/docs/test_site.py (``make test`` builds it first; skips without it)
and needs playwright and a Chromium binary (``make browser``; skips without them). Pages are opened
from disk (``file://``); nothing is fetched from the network.
"""

from __future__ import annotations

import shutil

import pytest
from test_site import SITE, _site_or_skip_reason  # noqa: E402

pytestmark = pytest.mark.slow
WIDTH = 1280


@pytest.fixture(scope="module")
def browser_page():
    reason = _site_or_skip_reason()
    if reason:
        pytest.skip(reason)
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install 'semprior[dev]')"
    )
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("no Chromium binary on PATH (install it: `make browser`, or apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        page.set_default_timeout(120_000)  # a loaded 2-core machine
        yield page
        browser.close()


def test_tables_and_images_fit_a_1280_px_window(browser_page):
    cut, broken = [], []
    for html in sorted(SITE.rglob("index.html")):
        if "assets" in html.parts:
            continue
        browser_page.goto(html.as_uri(), wait_until="load")
        name = html.relative_to(SITE).as_posix()
        for i, width, visible, first in browser_page.evaluate("""() => [...document.querySelectorAll('article table')]
                .map((t, i) => [i, t.scrollWidth, (t.closest('.md-typeset__scrollwrap') || t.parentElement).clientWidth,
                                (t.querySelector('th') || {}).textContent])
                .filter(x => x[1] > x[2] + 1)"""):
            cut.append(f"{name}: table {i} (first header {first!r}) is {width} px wide, {visible} px visible")
        for src in browser_page.evaluate("""() => [...document.querySelectorAll('article img')]
                .filter(im => im.complete && im.naturalWidth === 0).map(im => im.getAttribute('src'))"""):
            broken.append(f"{name}: image {src} does not load")
    assert not cut, f"{len(cut)} table(s) wider than the page at {WIDTH} px:\n" + "\n".join(cut)
    assert not broken, "\n".join(broken)
