"""The folder of small mixed photos that ``bench_folder.py`` and ``profile_folder.py`` time, made alike each run.

From the data folder (see ``../shared/data/SOURCES.md``): the LIME and ExDark low-light samples, then the
clean photos (Kodak24, CBSD68, McMaster) darkened ×0.25, in sorted order, the first ``--count``; each resized
(Lanczos) to a width from 120 to 320 px (cycling in steps of 40 px, each width once as PNG and once as JPEG:
sizes mixed, not sorted); every second one is saved as JPEG (quality 90), the others as PNG. The output
folder must be new or empty.

Usage::

    python benchmarks/make_photo_folder.py --data ../shared/data --out /tmp/photos100
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

#: widths cycled over the images, in px
WIDTHS = (120, 160, 200, 240, 280, 320)
#: the clean photos are darkened by this factor (linear in 8-bit values)
DARKEN = 0.25


def sources(data: Path) -> list[tuple[Path, bool]]:
    """``(file, darken)`` in the order used: the low-light samples, then the clean photos (darkened)."""
    found: list[tuple[Path, bool]] = []
    for sub in ("lime", "exdark_samples"):
        found += [(f, False) for f in sorted((data / sub).iterdir()) if f.suffix.lower() in (".png", ".jpg")]
    for sub in ("clean/kodak24", "clean/cbsd68", "clean/mcmaster"):
        found += [(f, True) for f in sorted((data / sub).glob("*.png"))]
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the data folder (with clean/, lime/, exdark_samples/)")
    p.add_argument("--out", required=True, help="a new or empty folder")
    p.add_argument("--count", type=int, default=100)
    args = p.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    found = sources(data)
    if len(found) < args.count:
        raise SystemExit(f"{data} has {len(found)} usable photos, fewer than --count {args.count}; check --data")
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty; give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for i, (src, darken) in enumerate(found[: args.count]):
        with Image.open(src) as im:
            im = im.convert("RGB")
            w = WIDTHS[(i // 2) % len(WIDTHS)]  # each width as PNG and as JPEG
            im = im.resize((w, max(8, round(im.height * w / im.width))), Image.Resampling.LANCZOS)
        if darken:
            im = Image.fromarray((np.asarray(im, dtype=np.float32) * DARKEN).round().astype(np.uint8))
        if i % 2:
            im.save(out / f"{i:03d}_{src.stem}.jpg", quality=90)
        else:
            im.save(out / f"{i:03d}_{src.stem}.png")
    print(f"wrote {args.count} photos to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
