"""``semprior enhance IN... -o OUT``: enhance image files or folders of any size, write PNGs.

Examples::

    semprior enhance photo.jpg night/ -o out/ --method lime
    semprior enhance big.png -o out/ --checkpoint runs/deepspg/best.pt --max-memory-mb 2000

EXIF orientation is applied when reading (the PNG is written upright). Models are padded to their
``required_multiple`` and cropped back; ``--tile``/``--max-memory-mb`` run large images in
overlapping tiles blended with linear ramps.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files and/or folders of images")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder (created)")
    m = p.add_mutually_exclusive_group(required=True)
    m.add_argument("--method", metavar="NAME", help="classical method: " + "identity, gamma, he, clahe, lime, ...")
    m.add_argument("--checkpoint", metavar="CKPT", help="DeepSPG checkpoint")
    p.add_argument("--preset", default="deepspg", help="DeepSPG preset when the checkpoint has no model_config")
    p.add_argument("--prior", default="none", choices=["none", "region"], help="prior of the checkpoint's model")
    p.add_argument("--tile", type=int, default=None, help="tile size in pixels (default: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    p.add_argument("--max-memory-mb", type=float, default=None, help="choose the tile size from a memory cap")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Files as given, folders expanded to their images (not recursive); clear errors otherwise."""
    from semprior.data.io import IMAGE_EXTENSIONS, list_images

    files: list[Path] = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise FileNotFoundError(f"no images in folder {p} (looked for {', '.join(IMAGE_EXTENSIONS)})")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"input not found: {p}")
    return files


def output_paths(files: list[Path], out: Path, overwrite: bool) -> list[Path]:
    seen: dict[Path, Path] = {}
    dests = []
    for f in files:
        d = out / (f.stem + ".png")
        if d in seen:
            raise ValueError(f"{f} and {seen[d]} would both be written to {d}; rename one or enhance them separately")
        if d.exists() and not overwrite:
            raise FileExistsError(f"{d} exists; pass --overwrite or choose another -o folder")
        if f.resolve() == d.resolve():
            raise ValueError(f"{d} would overwrite its own input; choose another -o folder")
        seen[d] = f
        dests.append(d)
    return dests


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from semprior.data.io import read_image, write_image
    from semprior.engine.evaluate import classical_method, deepspg_from_checkpoint
    from semprior.engine.tiling import enhance_image

    if args.tile is not None and args.tile < 1:
        raise ValueError(f"--tile must be >= 1, got {args.tile}")
    files = collect_inputs(args.inputs)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"-o {out} exists and is not a folder; give a folder")
    dests = output_paths(files, out, args.overwrite)
    if args.checkpoint:
        model = deepspg_from_checkpoint(args.checkpoint, preset=args.preset, prior=args.prior)
    else:
        model = classical_method(args.method)
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(list(zip(files, dests)), desc="enhance", unit="img", disable=args.no_progress)
    for src, dst in bar:
        bar.set_postfix_str(src.name)
        img = read_image(src).unsqueeze(0)
        y = enhance_image(model, img, tile=args.tile, overlap=args.overlap, max_memory_mb=args.max_memory_mb)
        write_image(dst, y[0].clamp(0, 1))
    print(f"wrote {len(dests)} image(s) to {out}")
    return 0
