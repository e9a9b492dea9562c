"""``semprior eval``: PSNR/SSIM table (with and without GT-mean) and a comparison grid on paired images.

Examples::

    semprior eval --lol data/LOL --split eval15 --out runs/eval            # all classical baselines
    semprior eval --low pairs/low --high pairs/high --method lime --method gamma
    semprior eval --lol data/LOL --checkpoint runs/deepspg/best.pt --prior region --out runs/eval

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
    src = p.add_argument_group("pairs (give --lol, or --low and --high)")
    src.add_argument("--lol", metavar="ROOT", help="LOL-v1 root with <split>/low and <split>/high")
    src.add_argument("--split", default="eval15", help="LOL-v1 split (default eval15)")
    src.add_argument("--low", metavar="DIR", help="folder of low-light images")
    src.add_argument("--high", metavar="DIR", help="folder of references, matched by file name")
    m = p.add_argument_group("methods (default: every classical baseline)")
    m.add_argument("--method", action="append", default=[], metavar="NAME", help="classical baseline (repeatable)")
    m.add_argument("--checkpoint", action="append", default=[], metavar="CKPT", help="DeepSPG checkpoint (repeatable)")
    m.add_argument("--preset", default="deepspg", help="DeepSPG preset when the checkpoint has no model_config")
    m.add_argument("--prior", default="none", choices=["none", "region"], help="prior of the checkpoint's model")
    pr = p.add_argument_group("protocol")
    pr.add_argument("--space", default="rgb", choices=["rgb", "y"], help="compute on RGB or BT.601 Y")
    pr.add_argument("--crop-border", type=int, default=0, help="pixels removed from each side")
    pr.add_argument("--float", action="store_true", help="do not quantise to 8 bits before scoring")
    o = p.add_argument_group("output")
    o.add_argument("--out", metavar="DIR", help="write metrics.md, metrics.json and grid.png here")
    o.add_argument("--grid", type=int, default=4, metavar="N", help="rows (images) in the grid (0 = no grid)")
    o.add_argument("--tile", type=int, default=None, help="tile size for models (default: whole image)")
    o.add_argument("--max-memory-mb", type=float, default=None, help="pick the tile size from a memory cap")
    o.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    o.add_argument("--fail-fast", action="store_true",
                   help="stop at the first pair that cannot be read or scored (exit 1) instead of listing it under the table")
    p.epilog = EXIT_STATUS_HELP


def build_methods(args: argparse.Namespace) -> dict:
    from semprior.engine.evaluate import classical_method, deepspg_from_checkpoint

    methods: dict = {}
    names = list(args.method)
    if not names and not args.checkpoint:
        from semprior.models.classical import CLASSICAL

        names = list(CLASSICAL)
    for n in names:
        methods[n.lower()] = classical_method(n)
    for c in args.checkpoint:
        label = f"DeepSPG ({Path(c).name}{', ' + args.prior + ' prior' if args.prior != 'none' else ''})"
        methods[label] = deepspg_from_checkpoint(c, preset=args.preset, prior=args.prior)
    return methods


def run(args: argparse.Namespace) -> int:
    from torch import nn

    from semprior.engine.evaluate import evaluate_methods, paired_items
    from semprior.engine.tiling import tiling_plan
    from semprior.metrics import MetricProtocol

    if args.grid < 0:
        raise ValueError(f"--grid must be >= 0, got {args.grid}")
    protocol = MetricProtocol(space=args.space, crop_border=args.crop_border, quantize=not args.float)
    methods = build_methods(args)  # unknown names / bad checkpoints fail before the folders are scanned
    for method in methods.values():  # bad tiling options too
        if isinstance(method, nn.Module):
            tiling_plan(method, tile=args.tile, max_memory_mb=args.max_memory_mb)
    pairs = paired_items(low=args.low, high=args.high, lol=args.lol, split=args.split)
    try:
        with StopAfterCurrent("pair") as stop:
            result = evaluate_methods(
                methods, pairs, protocol=protocol, keep=args.grid if args.out else 0,
                tile=args.tile, max_memory_mb=args.max_memory_mb, progress=not args.no_progress,
                on_error="raise" if args.fail_fast else "skip", should_stop=stop,
            )
    except KeyboardInterrupt:
        print("semprior eval: interrupted during a pair; no table (press Ctrl-C once to stop after the current pair)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.names:
        print(result.to_markdown())
    if result.interrupted:
        total = result.total if result.total is not None else len(result.names) + len(result.failed)
        print(f"semprior eval: interrupted after {len(result.names) + len(result.failed)} of {total} pair(s); "
              f"{'--out files not written; ' if args.out else ''}rerun to evaluate every pair", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.out:
        written = result.save(args.out)
        print("wrote " + ", ".join(str(p) for p in written.values()))
    if result.failed:
        print(f"semprior eval: {len(result.failed)} pair(s) could not be scored and are not in the means (listed under "
              "the table)", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK
