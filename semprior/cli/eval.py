"""``semprior eval``: PSNR/SSIM table (with and without GT-mean) and a comparison grid on paired images.

Examples:
    ```bash
    semprior eval --lol ~/data/LOL --split eval15 --out runs/eval          # all classical baselines
    semprior eval --low pairs/low --high pairs/high --model lime --model gamma
    semprior eval --lol ~/data/LOL --checkpoint runs/deepspg/best.pt --out runs/eval  # rebuilt from the file
    semprior eval --lol ~/data/LOL --model deepspg --model retinexformer --device auto  # shipped weights
    semprior eval --lol ~/data/LOL --model deepspg --lpips                           # + LPIPS (AlexNet)
    semprior eval --unpaired photos/ --model deepspg --model lime                    # no references: NIQE etc.
    semprior eval --unpaired photos/ --model lime --pyiqa musiq=weights/musiq_koniq_ckpt.pth  # + pyiqa, local weights
    ```

A pair that cannot be read or scored is left out of every mean and listed under the table with
its reason; the table says how many pairs it averaged, and the exit status is 3
(``--fail-fast`` stops at the first one instead). Ctrl-C stops after the current pair, prints
the table of the pairs done so far and exits 130 without writing ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semprior.cli._batch import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_STATUS_HELP, StopAfterCurrent


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("images (give --lol, or --low and --high, or --unpaired)")
    src.add_argument("--lol", metavar="ROOT", help="LOL-v1 root with <split>/low and <split>/high")
    src.add_argument("--split", default="eval15", help="LOL-v1 split (default eval15)")
    src.add_argument("--low", metavar="DIR", help="folder of low-light images")
    src.add_argument("--high", metavar="DIR", help="folder of references, matched by file name")
    src.add_argument(
        "--unpaired",
        metavar="DIR",
        help="photos without references: no-reference scores (NIQE, exposure, colour, noise) per method",
    )
    src.add_argument(
        "--niqe-model",
        default="authors",
        choices=["authors", "fitted"],
        help="with --unpaired: NIQE's pristine model (authors: the published NIQE, as in papers; "
        "fitted: semprior's own fit)",
    )
    src.add_argument(
        "--pyiqa",
        action="append",
        default=[],
        metavar="NAME=WEIGHTS",
        help="with --unpaired: add pyiqa's learned metric NAME scored with the local weights file WEIGHTS "
        "(repeatable; needs pip install 'semprior[pyiqa]'; never downloads)",
    )
    from semprior.cli._models import add_model_arguments

    add_model_arguments(p, multiple=True, dtype_default="fp32")  # scores come from the reference by default
    pr = p.add_argument_group("protocol")
    pr.add_argument("--space", default="rgb", choices=["rgb", "y"], help="compute on RGB or BT.601 Y")
    pr.add_argument("--crop-border", type=int, default=0, help="pixels removed from each side")
    pr.add_argument("--float", action="store_true", help="do not quantise to 8 bits before scoring")
    pr.add_argument(
        "--lpips",
        nargs="?",
        const="alex",
        default=None,
        choices=["alex", "vgg", "squeeze"],
        metavar="NET",
        help="also score LPIPS with backbone NET (alex, the default; vgg; squeeze); needs "
        "pip install 'semprior[lpips]' and the backbone's ImageNet weights in the torch hub cache "
        "(never downloaded)",
    )
    o = p.add_argument_group("output")
    o.add_argument("--out", metavar="DIR", help="write metrics.md, metrics.json and grid.png here")
    o.add_argument(
        "--save-images",
        metavar="DIR",
        help="also write every method's enhanced images: DIR/<method>/<pair name>.png (8-bit PNG)",
    )
    o.add_argument("--grid", type=int, default=4, metavar="N", help="rows (images) in the grid (0 = no grid)")
    o.add_argument("--tile", type=int, default=None, help="tile size for models (default: whole image)")
    o.add_argument("--max-memory-mb", type=float, default=None, help="pick the tile size from a memory cap")
    o.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    o.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first pair that cannot be read or scored (exit 1) instead of listing it under the table",
    )
    p.epilog = EXIT_STATUS_HELP


def build_methods(args: argparse.Namespace) -> dict:
    """``label -> model``: the ``--model``/``--checkpoint`` models, or every classical baseline."""
    from semprior.cli._models import build_models
    from semprior.models.registry import get_model_entry, list_models

    if not (args.model or args.checkpoint):
        args.model = [n for n in list_models() if get_model_entry(n).training_loss is None]
    return build_models(args)


def build_pyiqa_metrics(args: argparse.Namespace) -> dict:
    """``--pyiqa NAME=WEIGHTS`` -> ``{"pyiqa:NAME": metric}`` (built before any image is read)."""
    from semprior.cli._models import pick_device
    from semprior.metrics.pyiqa_metric import pyiqa_metric

    metrics = {}
    for spec in args.pyiqa:
        name, sep, weights = spec.partition("=")
        if not sep or not name or not weights:
            raise ValueError(f"--pyiqa takes NAME=WEIGHTS (e.g. musiq=weights/musiq_koniq_ckpt.pth), got {spec!r}")
        key = f"pyiqa:{name}"
        if key in metrics:
            raise ValueError(f"--pyiqa {name} is given twice")
        metrics[key] = pyiqa_metric(name, weights, device=pick_device(args.device))
    return metrics


def run_unpaired(args: argparse.Namespace, methods: dict) -> int:
    """``--unpaired DIR``: no-reference scores of the input and every method's output; unreadable files listed."""
    from semprior.engine.evaluate_unpaired import evaluate_unpaired

    result = evaluate_unpaired(
        methods,
        args.unpaired,
        niqe_model=args.niqe_model,
        extra_metrics=build_pyiqa_metrics(args),
        precision=args.dtype,
    )
    print(result.table())
    if args.out:
        from semprior._atomic import atomic_write_text

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "noref.md", result.table() + "\n")
        print(f"wrote {out / 'noref.md'}")
    return EXIT_SOME_FAILED if result.skipped else EXIT_OK


def _image_saver(folder: str, labels: list[str]):
    """``on_output`` for `evaluate_methods`: ``FOLDER/<method>/<pair stem>.png``, one subfolder per method."""
    import re

    from semprior.data.io import write_image

    root = Path(folder)
    subdirs = {label: re.sub(r"[^\w.+-]+", "_", label).strip("_") or "method" for label in labels}
    if len(set(subdirs.values())) != len(subdirs):
        raise ValueError(f"--save-images: methods {sorted(subdirs)} map to the same folder names; rename a checkpoint")
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"--save-images {root} exists and is not a folder")

    def save(method: str, name: str, image) -> None:
        write_image(root / subdirs[method] / (Path(name).stem + ".png"), image)

    return save


def run(args: argparse.Namespace) -> int:
    from torch import nn

    from semprior.engine.evaluate import evaluate_methods, paired_items
    from semprior.engine.tiling import tiling_plan
    from semprior.metrics import MetricProtocol

    if args.grid < 0:
        raise ValueError(f"--grid must be >= 0, got {args.grid}")
    protocol = MetricProtocol(space=args.space, crop_border=args.crop_border, quantize=not args.float)
    if args.pyiqa and not args.unpaired:
        raise ValueError("--pyiqa adds a no-reference score: use it with --unpaired DIR")
    if args.lpips and args.unpaired:
        raise ValueError("--lpips compares with references: use it with --lol or --low/--high, not --unpaired")
    methods = build_methods(args)  # unknown names / bad checkpoints fail before the folders are scanned
    if args.unpaired:
        if args.lol or args.low or args.high:
            raise ValueError("--unpaired scores photos without references; drop --lol/--low/--high")
        return run_unpaired(args, methods)
    for method in methods.values():  # bad tiling options too
        if isinstance(method, nn.Module):
            tiling_plan(method, tile=args.tile, max_memory_mb=args.max_memory_mb)
    extra = {}
    if args.lpips:
        from semprior.cli._models import pick_device
        from semprior.metrics.lpips import LPIPS

        extra["lpips"] = LPIPS(args.lpips).to(pick_device(args.device))
    pairs = paired_items(low=args.low, high=args.high, lol=args.lol, split=args.split)
    save = _image_saver(args.save_images, list(methods)) if args.save_images else None
    try:
        with StopAfterCurrent("pair") as stop:
            result = evaluate_methods(
                methods,
                pairs,
                protocol=protocol,
                keep=args.grid if args.out else 0,
                tile=args.tile,
                max_memory_mb=args.max_memory_mb,
                progress=not args.no_progress,
                on_error="raise" if args.fail_fast else "skip",
                should_stop=stop,
                on_output=save,
                extra_metrics=extra,
                precision=args.dtype,
            )
    except KeyboardInterrupt:
        print(
            "semprior eval: interrupted during a pair; no table (press Ctrl-C once to stop after the current pair)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if result.names:
        print(result.to_markdown())
    if result.interrupted:
        total = result.total if result.total is not None else len(result.names) + len(result.failed)
        print(
            f"semprior eval: interrupted after {len(result.names) + len(result.failed)} of {total} pair(s); "
            f"{'--out files not written; ' if args.out else ''}rerun to evaluate every pair",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if args.out:
        written = result.save(args.out)
        print("wrote " + ", ".join(str(p) for p in written.values()))
    if result.failed:
        print(
            f"semprior eval: {len(result.failed)} pair(s) could not be scored and are not in the means (listed under "
            "the table)",
            file=sys.stderr,
        )
        return EXIT_SOME_FAILED
    return EXIT_OK
