"""`semprior app` end to end in a real headless Chromium: upload, enhance, download, compare with `semprior enhance`.

Needs the ``app`` extra (gradio, playwright) and a Chromium binary (Debian: ``apt-get install chromium``;
``make browser`` does it); skips with the reason when one is missing. The browser is the
distribution's (``executable_path``): playwright downloads nothing. The server is started as users
start it (``python -m semprior app``) on a free loopback port; this process talks to it only
through the browser (the test suite's sockets stay closed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _chromium() -> str:
    for name in (os.environ.get("SEMPRIOR_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.skip(
        "no Chromium binary on PATH (install it: `make browser`, or apt-get install chromium); "
        "set SEMPRIOR_CHROMIUM to use another"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # bind only: no connection is made
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses listening on ``port``, from /proc/net/tcp (Linux)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(addr))))
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["SEMPRIOR_PROGRESS"] = "0"
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("gradio", reason="the app extra is not installed (pip install 'semprior[app]')")
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "semprior",
        "app",
        "--port",
        str(port),
        "--max-megapixels",
        "0.05",
        "--max-upload-mb",
        "0.05",
    ]
    proc = subprocess.Popen(
        cmd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path_factory.mktemp("app-cwd"),
    )
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if "Running on local URL" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(timeout=240)
    if proc.poll() is not None or not any("Running on local URL" in ln for ln in lines):
        proc.kill()
        pytest.fail("`semprior app` did not start:\n" + "".join(lines)[-3000:])
    yield f"http://127.0.0.1:{port}/", port, lines
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def page(server):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install 'semprior[app]')"
    )
    exe = _chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        pg.set_default_timeout(180_000)
        outside: list[str] = []
        pg.on(
            "request", lambda r: outside.append(r.url) if not r.url.startswith((server[0], "data:", "blob:")) else None
        )
        pg.goto(server[0])
        pg.wait_for_selector("#enhance")
        pg.outside_requests = outside
        yield pg
        browser.close()


def _dark_photo(path: Path, w: int, h: int) -> Path:
    """A dark crop of scikit-image's coffee; a .jpg is tagged EXIF orientation 6 (shown rotated 90°)."""
    from PIL import Image

    from semprior.data.samples import default_clean_images

    img = default_clean_images(("coffee",))["coffee"][:, :h, :w] * 0.2
    im = Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    if path.suffix == ".jpg":
        exif = Image.Exif()
        exif[0x0112] = 6
        im.save(path, quality=90, exif=exif)
    else:
        im.save(path)
    return path


def _choose_model(page, name: str) -> None:
    page.click("#model input")
    page.get_by_role("option", name=name, exact=True).click()


def test_serves_on_loopback_only(server):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read listening sockets from")
    assert _listening_addresses(server[1]) == {"127.0.0.1"}


@pytest.mark.parametrize(
    "model, name, shape", [("deepspg", "night.png", (150, 200, 3)), ("lime", "night.jpg", (200, 150, 3))]
)  # EXIF-rotated
def test_upload_enhance_download_matches_cli(page, model, name, shape, tmp_path):
    photo = _dark_photo(tmp_path / name, 200, 150)  # 0.03 MP, under the server's 0.05 MP limit
    page.set_input_files("#photo input[type=file]", str(photo))
    _choose_model(page, model)
    page.click("#enhance")
    button = page.locator("#download")
    button.get_by_text(f"night_{model}.png").wait_for()
    with page.expect_download() as dl:
        button.click()
    got_path = tmp_path / "downloaded.png"
    dl.value.save_as(got_path)

    out = tmp_path / "cli"
    done = subprocess.run(
        [sys.executable, "-m", "semprior", "enhance", str(photo), "-o", str(out), "--model", model, "--device", "cpu"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    from PIL import Image

    got = np.asarray(Image.open(got_path).convert("RGB"))
    want = np.asarray(Image.open(out / "night.png").convert("RGB"))
    assert got.shape == want.shape == shape
    assert np.array_equal(got, want), f"app and CLI differ: max |diff| {np.abs(got.astype(int) - want).max()}"
    assert got.mean() > np.asarray(Image.open(photo)).mean()  # it did enhance


def test_page_fetches_nothing_from_outside(page):
    assert page.outside_requests == [], "the page asked for files outside the app (fonts, CDNs?)"


def test_too_many_pixels_is_refused_with_a_message(page, tmp_path):
    from PIL import Image

    photo = tmp_path / "big.png"
    Image.new("RGB", (300, 300), (20, 20, 20)).save(photo)  # 0.09 MP > 0.05, under 1 kB
    page.set_input_files("#photo input[type=file]", str(photo))
    page.click("#enhance")
    page.get_by_text(
        "the image is 300×300 = 0.1 megapixels; the app takes up to 0.05. Resize it, or use "
        "`semprior enhance` (tiles, any size)."
    ).first.wait_for(timeout=60_000)


def test_too_many_bytes_is_refused_with_a_message(page, tmp_path):
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (150, 150, 3), dtype=np.uint8)  # 0.02 MP, ~68 kB as PNG
    Image.fromarray(noise).save(tmp_path / "noise.png")
    assert (tmp_path / "noise.png").stat().st_size > 50_000
    page.set_input_files("#photo input[type=file]", str(tmp_path / "noise.png"))
    page.get_by_text('exceed the maximum allowed size of 48.8 Kb: "noise.png"').first.wait_for(timeout=60_000)
