"""Before/after thumbnails of real low-light photos for the home page, and the gallery text.

Reads a handful of photos from ../shared/data (LIME, ExDark, LOL-v1 eval15; never copied into
the repository), enhances each at full resolution, and writes small JPEGs (<= --width px wide)
plus ``gallery.md`` (the table the home page includes, with the model's name and the dataset
credits) into --out:

    .venv/bin/python benchmarks/make_thumbnails.py --model lime
    .venv/bin/python benchmarks/make_thumbnails.py --model runs/deepspg/best.pt --prior region

--model takes a classical baseline's name (``semprior.models.classical.CLASSICAL``: identity,
gamma, he, clahe, lime), a checkpoint path written by the semprior trainer, or a model registry
name (resolved in ``build_model`` below: the one place to wire a registry such as
``semprior.models.create_model`` when it exists).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("SEMPRIOR_SHARED_DATA", REPO.parent / "shared" / "data"))

# (file under the data root, caption, credit key); a handful that show different scenes
PHOTOS = [
    ("lime/1.png", "LIME #1", "lime"),
    ("exdark_samples/2015_02057.jpg", "ExDark 2015_02057", "exdark"),
    ("lol_v1_eval15/low/1.png", "LOL-v1 eval15 #1", "lol"),
    ("lime/7.png", "LIME #7", "lime"),
]
CREDITS = {
    "lime": "LIME test images: X. Guo, Y. Li, H. Ling, \"LIME: Low-Light Image Enhancement via "
    "Illumination Map Estimation\", IEEE TIP 26(2), 2017.",
    "exdark": "ExDark: Y. P. Loh, C. S. Chan, \"Getting to Know Low-light Images with the Exclusively "
    "Dark Dataset\", CVIU 178, 2019.",
    "lol": "LOL-v1: C. Wei, W. Wang, W. Yang, J. Liu, \"Deep Retinex Decomposition for Low-Light "
    "Enhancement\", BMVC 2018.",
}


def build_model(spec: str, prior: str = "none") -> tuple[torch.nn.Module, str]:
    """(model, label) from a classical name, a checkpoint path or a registry name."""
    from semprior.models.classical import CLASSICAL

    if spec.lower() in CLASSICAL:
        model = CLASSICAL[spec.lower()]()
        return model.eval(), f"`{type(model).__name__}` (classical, no weights)"
    path = Path(spec).expanduser()
    if path.is_file():
        from semprior.engine.evaluate import deepspg_from_checkpoint

        return deepspg_from_checkpoint(path, prior=prior), f"DeepSPG checkpoint `{path.name}` (prior: {prior})"
    import semprior.models as models

    create = getattr(models, "create_model", None)  # a model registry, once semprior has one
    if create is not None:
        return create(spec).eval(), f"`{spec}`"
    raise SystemExit(
        f"--model {spec!r}: not a classical method ({', '.join(sorted(CLASSICAL))}), not an existing "
        "checkpoint file, and semprior.models has no create_model registry to resolve it"
    )


def thumbnail(img: torch.Tensor, width: int) -> Image.Image:
    arr = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr)
    if pil.width > width:
        pil = pil.resize((width, round(pil.height * width / pil.width)), Image.LANCZOS)
    return pil


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lime", help="classical name, checkpoint path or registry name")
    ap.add_argument("--prior", default="none", choices=["none", "region"], help="prior of a DeepSPG checkpoint")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="../shared/data (LIME, ExDark, eval15)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "assets" / "home", help="output folder")
    ap.add_argument("--width", type=int, default=320, help="thumbnail width in pixels")
    args = ap.parse_args(argv)

    from semprior.data.io import read_image
    from semprior.engine.tiling import enhance_image

    missing = [p for p, _, _ in PHOTOS if not (args.data / p).is_file()]
    if missing:
        raise SystemExit(f"missing under {args.data}: {missing}; pass --data (the ../shared/data folder)")
    model, label = build_model(args.model, args.prior)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for rel, caption, credit in PHOTOS:
        low = read_image(args.data / rel)
        with torch.no_grad():
            out = enhance_image(model, low[None])[0]
        stem = Path(rel).stem if credit != "lol" else f"eval15_{Path(rel).stem}"
        stem = f"{credit}_{stem}" if credit != "lol" else stem
        for tag, img in (("before", low), ("after", out)):
            thumbnail(img, args.width).save(args.out / f"{stem}_{tag}.jpg", quality=85, optimize=True)
        rows.append((stem, caption, low.shape[-1], low.shape[-2]))
        print(f"{rel}: {low.shape[-1]}x{low.shape[-2]} -> {stem}_{{before,after}}.jpg")

    lines = [
        "<!-- generated by benchmarks/make_thumbnails.py; do not edit -->",
        f"Enhanced by {label}, at full resolution; thumbnails {args.width} px wide.",
        "",
        "| before (real low-light photo) | after |",
        "|---|---|",
    ]
    for stem, caption, w, h in rows:
        lines.append(
            f"| ![{caption}, input](assets/home/{stem}_before.jpg){{ width=\"{args.width}\" }}<br>{caption} ({w}×{h}) "
            f"| ![{caption}, enhanced](assets/home/{stem}_after.jpg){{ width=\"{args.width}\" }} |"
        )
    lines += ["", "Photos (research datasets; only these thumbnails are in the repository):", ""]
    lines += [f"- {CREDITS[k]}" for k in dict.fromkeys(c for _, _, c in PHOTOS)]
    (args.out / "gallery.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'gallery.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
