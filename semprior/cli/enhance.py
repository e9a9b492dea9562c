"""``semprior enhance IN... -o OUT``: enhance image files or folders of any size, write PNGs.

Examples:
    ```bash
    semprior enhance photo.jpg night/ -o out/                  # the DeepSPG that ships with semprior
    semprior enhance photo.jpg -o out/ --model lime            # a classical baseline
    semprior enhance big.png -o out/ --checkpoint runs/deepspg/best.pt --device auto --max-memory-mb 2000
    ```

EXIF orientation is applied when reading (the PNG is written upright). Models are padded to their
``required_multiple`` and cropped back; ``--tile``/``--max-memory-mb`` run large images in
overlapping tiles blended with linear ramps.

A file that cannot be read or enhanced does not stop the batch: it is listed at the end with its
reason and the exit status is 3 (``--fail-fast`` stops at the first one instead). Outputs are
written atomically; ``--skip-existing`` resumes an interrupted batch. Ctrl-C stops after the
current file (exit 130).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semprior.cli._batch import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_STATUS_HELP,
    OrderedWriter,
    Prefetched,
    StopAfterCurrent,
    one_line_reason,
    show_names,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files and/or folders of images")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder (created)")
    from semprior.cli._models import add_model_arguments

    add_model_arguments(p, multiple=False)  # default: the DeepSPG trained on LOL-v1 that ships with semprior
    p.add_argument("--tile", type=int, default=None, help="tile size in pixels (default: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    p.add_argument("--max-memory-mb", type=float, default=None, help="choose the tile size from a memory cap")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto (default): bfloat16 where the CPU computes it natively and the model states its "
                        "error (the shipped DeepSPG: >= 40 dB PSNR vs fp32), else fp32; fp32: the exact reference; "
                        "bf16: force bfloat16 autocast")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep outputs that already exist and process the rest (resume an interrupted batch)")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first file that cannot be read or enhanced (exit 1) instead of listing failures at the end")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.epilog = EXIT_STATUS_HELP


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


def output_paths(files: list[Path], out: Path, overwrite: bool, skip_existing: bool = False) -> list[Path]:
    """``OUT/<stem>.png`` per input; name clashes and (without ``overwrite``/``skip_existing``) existing outputs are errors."""
    seen: dict[Path, Path] = {}
    dests = []
    for f in files:
        d = out / (f.stem + ".png")
        if d in seen:
            raise ValueError(f"{f} and {seen[d]} would both be written to {d}; rename one or enhance them separately")
        if d.exists() and not (overwrite or skip_existing):
            raise FileExistsError(
                f"{d} exists; pass --skip-existing to keep it and finish the rest, --overwrite to redo it, "
                "or choose another -o folder"
            )
        if f.resolve() == d.resolve():
            raise ValueError(f"{d} would overwrite its own input; choose another -o folder")
        seen[d] = f
        dests.append(d)
    return dests


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from semprior._atomic import remove_stale_temps
    from semprior.data.io import read_image, write_image
    from semprior.cli._models import build_models
    from semprior.engine.tiling import enhance_image, is_tileable, tiling_plan

    if args.tile is not None and args.tile < 1:
        raise ValueError(f"--tile must be >= 1, got {args.tile}")
    if args.overwrite and args.skip_existing:
        raise ValueError("--overwrite and --skip-existing contradict each other; pass one of them")
    files = collect_inputs(args.inputs)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"-o {out} exists and is not a folder; give a folder")
    dests = output_paths(files, out, args.overwrite, args.skip_existing)
    todo = [(f, d) for f, d in zip(files, dests) if not (args.skip_existing and d.exists())]
    existing = len(files) - len(todo)
    if sum(x is not None for x in (args.model, args.method, args.checkpoint)) > 1:
        raise ValueError("give one of --model, --method or --checkpoint (enhance runs one model)")
    ((label, model),) = build_models(args, default="deepspg").items()
    if (args.tile is not None or args.max_memory_mb is not None) and not is_tileable(model):
        print(f"note: {label} is a global method; it runs on each whole image (tiling would change "
              "its result), so --tile/--max-memory-mb do not apply", file=sys.stderr)
    tiling_plan(model, tile=args.tile, overlap=args.overlap, max_memory_mb=args.max_memory_mb)  # bad options: stop now
    out.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temps(out)
    if stale:
        print(f"removed {len(stale)} temporary file(s) left in {out} by an interrupted run", file=sys.stderr)
    if existing:
        print(f"skipping {existing} input(s) whose output exists (--skip-existing)", file=sys.stderr)
    written: list[Path] = []
    failed: list[tuple[Path, str]] = []
    interrupted = False

    def settle(done: list[tuple[tuple[Path, Path], BaseException | None]]) -> None:
        for (src, dst), err in done:
            if err is None:
                written.append(dst)
            elif args.fail_fast or not isinstance(err, Exception):
                raise err
            else:
                failed.append((src, one_line_reason(err, src)))

    # the next file is decoded and the last output encoded in background threads while the model runs;
    # outputs are written in input order, each atomically
    with StopAfterCurrent("file") as stop, Prefetched(todo, lambda item: read_image(item[0]).unsqueeze(0)) as inputs, \
            OrderedWriter(write_image) as writer:
        bar = tqdm(inputs, total=len(todo), desc="enhance", unit="img", disable=args.no_progress)
        try:
            try:
                for (src, dst), img, read_error in bar:
                    if stop.requested:
                        break
                    bar.set_postfix_str(src.name)
                    try:
                        if read_error is not None:
                            raise read_error
                        y = enhance_image(model, img, tile=args.tile, overlap=args.overlap,
                                          max_memory_mb=args.max_memory_mb, precision=args.precision)
                        settle(writer.submit((src, dst), dst, y[0].clamp(0, 1)))
                    except Exception as exc:
                        if args.fail_fast:
                            raise
                        failed.append((src, one_line_reason(exc, src)))
                        continue
                    finally:
                        img = y = None  # drop this image's tensors before the next one
            finally:
                settle(writer.drain())  # every submitted output is complete before the report
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
    written_set, failed_set = set(written), {src for src, _ in failed}
    left = [src for src, dst in todo if dst not in written_set and src not in failed_set]
    return _report(out, len(todo), written, failed, existing, left if (interrupted or stop.requested) and left else None)


def _report(out: Path, n_todo: int, written: list[Path], failed: list[tuple[Path, str]], existing: int,
            left: list[Path] | None) -> int:
    """Print what was written, what failed (one line each) and, after Ctrl-C, what was not processed (``left``).

    Returns the exit status: 130 when interrupted with inputs left, else 3 when any input failed, else 0.
    """
    kept = f" ({existing} existing output(s) kept)" if existing else ""
    print(f"wrote {len(written)} of {n_todo} image(s) to {out}{kept}")
    if failed:
        print(f"semprior enhance: {len(failed)} input(s) failed:", file=sys.stderr)
        for src, reason in failed:
            print(f"  {src}: {reason}", file=sys.stderr)
    if left is not None:
        print(f"semprior enhance: interrupted; {len(left)} input(s) not processed: {show_names(left)}", file=sys.stderr)
        print("  rerun the same command with --skip-existing to finish them", file=sys.stderr)
        return EXIT_INTERRUPTED
    if failed:
        return EXIT_SOME_FAILED
    return EXIT_OK
