"""``semprior app``: try the enhancers in a web page on this computer (needs ``pip install 'semprior[app]'``).

Examples:
    ```bash
    semprior app                          # http://127.0.0.1:7860, this computer only
    semprior app --port 8000 --open       # another port; open the browser
    semprior app --host 0.0.0.0           # reachable from the local network (anyone who can reach the port)
    ```

Upload a photo or pick a sample, choose a model (the shipped learned models and the classical
baselines), compare before/after with a slider and download the PNG, the same pixels as
``semprior enhance photo.jpg -o out/ --model NAME``. Ctrl-C stops the server.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 opens it to the network)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="where models run (default cpu)")
    p.add_argument("--max-megapixels", type=float, default=None, metavar="MP", help="refuse larger images (default 12)")
    p.add_argument("--max-upload-mb", type=float, default=None, metavar="MB", help="refuse larger files (default 25)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")


def run(args: argparse.Namespace) -> int:
    from semprior.app import MAX_MEGAPIXELS, MAX_UPLOAD_MB, launch

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be in 1..65535, got {args.port}")
    mp = MAX_MEGAPIXELS if args.max_megapixels is None else args.max_megapixels
    if mp <= 0:
        raise ValueError(f"--max-megapixels must be > 0, got {mp}")
    mb = MAX_UPLOAD_MB if args.max_upload_mb is None else args.max_upload_mb
    if mb <= 0:
        raise ValueError(f"--max-upload-mb must be > 0, got {mb}")
    launch(
        host=args.host, port=args.port, device=args.device, max_megapixels=mp, max_upload_mb=mb, open_browser=args.open
    )
    return 0
