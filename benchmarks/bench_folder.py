"""Folder throughput of ``semprior enhance``: images per minute on a folder of photos, per variant.

Each variant is one ``semprior enhance FOLDER -o TMP --no-progress ...`` process (start-up and model
loading included, as a user sees it), run with the ``PYTHONPATH`` of a checkout and extra
arguments; variants alternate round by round, and the best round of each is reported.

Usage (make the folder outside the repository, e.g. resized copies of your own photos)::

    python benchmarks/bench_folder.py --images /tmp/photos \\
        --variant before=/path/to/old/checkout: --variant "after=.:" --variant "after-fp32=.:--dtype fp32"
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import RESULTS, provenance, write_result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True, help="folder of photos")
    p.add_argument(
        "--variant",
        action="append",
        required=True,
        help="NAME=CHECKOUT:EXTRA ARGS (CHECKOUT goes on PYTHONPATH; EXTRA is split on spaces)",
    )
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "folder_throughput"))
    args = p.parse_args(argv)
    images = sorted(f for f in Path(args.images).iterdir() if f.is_file())
    pixels = 0
    from PIL import Image

    for f in images:
        with Image.open(f) as im:
            pixels += im.width * im.height
    variants = []
    for v in args.variant:
        name, _, rest = v.partition("=")
        checkout, _, extra = rest.partition(":")
        variants.append((name, str(Path(checkout).resolve()), extra.split()))
    rows: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(args.rounds):
        for name, checkout, extra in variants:
            out = Path(tempfile.mkdtemp(prefix="bench_folder_"))
            env = dict(os.environ, PYTHONPATH=checkout)
            cmd = [
                sys.executable,
                "-m",
                "semprior.cli.main",
                "enhance",
                args.images,
                "-o",
                str(out),
                "--no-progress",
                *extra,
            ]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            dt = time.perf_counter() - t0
            written = len(list(out.glob("*.png")))
            shutil.rmtree(out, ignore_errors=True)
            if proc.returncode != 0 or written != len(images):
                raise SystemExit(f"{name} failed (rc={proc.returncode}, wrote {written}): {proc.stderr[-500:]}")
            rows[name].append(dt)
            print(name, round(dt, 1), "s", flush=True)
    result = [
        {
            "variant": n,
            "checkout": c,
            "extra": e,
            "times_s": rows[n],
            "best_s": min(rows[n]),
            "images_per_min": 60 * len(images) / min(rows[n]),
        }
        for n, c, e in variants
    ]
    base = result[0]["images_per_min"]
    lines = [
        "# `semprior enhance` on a folder: throughput",
        "",
        f"{len(images)} images, {pixels / 1e6:.1f} MP in all.",
        "",
        "| variant | extra args | best s | images / min | vs first |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['variant']} | {' '.join(r['extra'])} | {r['best_s']:.1f} | {r['images_per_min']:.1f} | "
        f"{r['images_per_min'] / base:.2f}x |"
        for r in result
    ]
    data = {"images": len(images), "megapixels": pixels / 1e6, "rows": result, "loadavg_at_end": os.getloadavg()}
    write_result(args.out, provenance(__file__, argv), data, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
