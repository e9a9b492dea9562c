"""Screenshot of `semprior app` in headless Chromium at 1280 px (docs/assets/app.jpg on the home page and docs/app.md).

Starts ``python -m semprior app`` on a free loopback port, picks the first bundled sample, enhances
it with the default model (the shipped DeepSPG), sets the slider and saves a PNG:

    .venv/bin/python tools/app_screenshot.py                       # -> docs/assets/app.jpg
    .venv/bin/python tools/app_screenshot.py --out /tmp/app.jpg --model lime

Needs the app extra (gradio), playwright and a Chromium binary (``make browser``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "assets" / "app.jpg")
    ap.add_argument("--model", default="deepspg")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = ap.parse_args()
    if not args.chromium:
        sys.exit("no Chromium found; install it (make browser) or pass --chromium PATH")
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "semprior", "app", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()
    threading.Thread(
        target=lambda: [ready.set() for line in proc.stdout if "Running on local URL" in line], daemon=True
    ).start()
    try:
        if not ready.wait(240):
            sys.exit("semprior app did not start within 240 s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": 800})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("button.gallery-item").first.click()  # the first sample
            page.locator("#photo img").wait_for()
            page.click("#model input")
            page.get_by_role("option", name=args.model, exact=True).click()
            page.click("#enhance")
            page.locator("#download").get_by_text(f"_{args.model}.png").wait_for()
            page.wait_for_timeout(1500)  # let the slider's images paint
            args.out.parent.mkdir(parents=True, exist_ok=True)
            jpeg = args.out.suffix.lower() in (".jpg", ".jpeg")
            page.screenshot(
                path=str(args.out), full_page=True, type="jpeg" if jpeg else "png", quality=85 if jpeg else None
            )
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
