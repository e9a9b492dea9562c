"""Before/after thumbnails of real low-light photos for the home page, and the gallery text.

Reads a handful of photos from ../shared/data (LIME, ExDark, LOL-v1 eval15; never copied into
the repository), enhances each at full resolution, and writes small JPEGs (<= --width px wide)
plus ``gallery.md`` (the table the home page includes, with the model's name and the dataset
credits) into --out:

    .venv/bin/python tools/make_thumbnails.py              # the home page: the shipped DeepSPG (= make gallery)
    .venv/bin/python tools/make_thumbnails.py --model deepspg     # the same
    .venv/bin/python tools/make_thumbnails.py --model lime
    .venv/bin/python tools/make_thumbnails.py --model runs/deepspg/best.pt

For the home page it also writes ``gallery.json``: the model, its shipped tag, the sha256 of the
weights file it used, the commit, and each photo's mean brightness before and after.
``tests/docs/test_gallery.py`` fails when that sha256 is not the one of the weights ``semprior
enhance`` uses by default, so after replacing the shipped model, run this script again.

--model takes a registered name (``semprior.models.list_models()``: learned models with the
weights shipped inside semprior, classical ones as they are) or any model file
:func:`semprior.models.io.load_model` opens (the model is rebuilt from what the file records).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
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
    "lime": 'LIME test images: X. Guo, Y. Li, H. Ling, "LIME: Low-Light Image Enhancement via '
    'Illumination Map Estimation", IEEE TIP 26(2), 2017.',
    "exdark": 'ExDark: Y. P. Loh, C. S. Chan, "Getting to Know Low-light Images with the Exclusively '
    'Dark Dataset", CVIU 178, 2019.',
    "lol": 'LOL-v1: C. Wei, W. Wang, W. Yang, J. Liu, "Deep Retinex Decomposition for Low-Light '
    'Enhancement", BMVC 2018.',
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_model(spec: str, prior: str | None = None) -> tuple[torch.nn.Module, str, dict]:
    """(model, label, record) from a registry name (learned models with their shipped weights) or a model file."""
    from semprior.models import get_model_entry
    from semprior.models.factory import create_model_for_inference
    from semprior.models.factory import pretrained_path as shipped_path
    from semprior.models.io import WEIGHTS_NAME, load_model
    from semprior.models.registry import list_models

    if spec.lower() in list_models():
        name = spec.lower()
        model = create_model_for_inference(name, prior=prior)
        tags = get_model_entry(name).shipped_tags
        record = {
            "model": name,
            "tag": tags[0] if tags else None,
            "weights_sha256": sha256(shipped_path(name) / WEIGHTS_NAME) if tags else None,
        }
        return (
            model.eval(),
            f"`{spec}`" + (f" (shipped weights `{tags[0]}`)" if tags else " (classical, no weights)"),
            record,
        )
    path = Path(spec).expanduser()
    if path.exists():
        file = path / WEIGHTS_NAME if path.is_dir() else path
        return (
            load_model(path, prior=prior),
            f"model file `{path.name}`",
            {"model": str(path), "tag": None, "weights_sha256": sha256(file)},
        )
    raise SystemExit(f"--model {spec!r}: neither a registered model ({', '.join(list_models())}) nor an existing file")


def thumbnail(img: torch.Tensor, width: int) -> Image.Image:
    arr = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr)
    if pil.width > width:
        pil = pil.resize((width, round(pil.height * width / pil.width)), Image.LANCZOS)
    return pil


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deepspg", help="registered model name or model file")
    ap.add_argument("--prior", default=None, help="override the prior the model file records")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="../shared/data (LIME, ExDark, eval15)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "assets" / "home", help="output folder")
    ap.add_argument(
        "--width", type=int, default=300, help="thumbnail width in pixels (two fit side by side at 1280 px)"
    )
    args = ap.parse_args(argv)

    from semprior.data.io import read_image
    from semprior.engine.brightness import keep_brightness
    from semprior.engine.tiling import enhance_image

    missing = [p for p, _, _ in PHOTOS if not (args.data / p).is_file()]
    if missing:
        raise SystemExit(f"missing under {args.data}: {missing}; pass --data (the ../shared/data folder)")
    model, label, record = build_model(args.model, args.prior)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for rel, caption, credit in PHOTOS:
        low = read_image(args.data / rel)
        with torch.no_grad():
            out = keep_brightness(low[None], enhance_image(model, low[None]).clamp(0, 1))[0]  # as `semprior enhance`
        stem = Path(rel).stem if credit != "lol" else f"eval15_{Path(rel).stem}"
        stem = f"{credit}_{stem}" if credit != "lol" else stem
        for tag, img in (("before", low), ("after", out)):
            thumbnail(img, args.width).save(args.out / f"{stem}_{tag}.jpg", quality=85, optimize=True)
        rows.append((stem, caption, low.shape[-1], low.shape[-2]))
        record.setdefault("photos", []).append(
            {
                "file": rel,
                "thumbnail": stem,
                "size": [low.shape[-1], low.shape[-2]],
                "mean_before": round(low.mean().item(), 4),
                "mean_after": round(out.clamp(0, 1).mean().item(), 4),
            }
        )
        print(f"{rel}: {low.shape[-1]}x{low.shape[-2]} -> {stem}_{{before,after}}.jpg")

    lines = [
        "<!-- generated by tools/make_thumbnails.py; do not edit -->",
        f"Enhanced by {label}, at full resolution; thumbnails {args.width} px wide.",
        "",
        "| before (real low-light photo) | after |",
        "|---|---|",
    ]
    for (stem, caption, w, h), photo in zip(rows, record["photos"]):
        lines.append(
            f'| ![{caption}, input](assets/home/{stem}_before.jpg){{ width="{args.width}" }}<br>{caption} ({w}×{h}; '
            f"mean brightness {photo['mean_before']:.3f} → {photo['mean_after']:.3f}) "
            f'| ![{caption}, enhanced](assets/home/{stem}_after.jpg){{ width="{args.width}" }} |'
        )
    lines += ["", "Photos (research datasets; only these thumbnails are in the repository):", ""]
    lines += [f"- {CREDITS[k]}" for k in dict.fromkeys(c for _, _, c in PHOTOS)]
    (args.out / "gallery.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    record.update(
        command=" ".join(["python tools/make_thumbnails.py", *(argv if argv is not None else sys.argv[1:])]),
        commit=commit or None,
        width=args.width,
    )
    (args.out / "gallery.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'gallery.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
