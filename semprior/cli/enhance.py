"""``semprior enhance IN... -o OUT``: enhance image files or folders of any size, write PNG, JPEG or WebP.

Examples:
    ```bash
    semprior enhance photo.jpg -o photo_enhanced.jpg             # one file in, one file out (JPEG, EXIF kept)
    semprior enhance photo.jpg night/ -o out/                    # the DeepSPG that ships with semprior; PNGs
    semprior enhance trip/ -o out/ --recursive --format same     # keep the folder tree and each file's format
    semprior enhance photo.jpg -o out/ --model lime --format webp --quality 90
    semprior enhance big.png -o out/ --checkpoint runs/deepspg/best.pt --device cuda:1 --dtype bf16
    ```

Output format: ``-o NAME.jpg|.png|.webp`` with a single input writes that file; ``-o FOLDER``
writes ``FOLDER/<name>.png`` (``--format jpeg|webp|png`` or ``same``: each input's own format,
PNG for the others). ``--quality`` sets JPEG/WebP quality. The input's EXIF (camera, exposure,
date, GPS) and ICC profile are copied, with the orientation reset to upright since it is applied
when reading; ``--strip-metadata`` drops them. Models are padded to their ``required_multiple``
and cropped back; ``--tile``/``--max-memory-mb`` run large images in overlapping tiles blended
with linear ramps.

A file that cannot be read or enhanced does not stop the batch: it is listed at the end with its
reason and the exit status is 3 (``--fail-fast`` stops at the first one instead). Outputs are
written atomically; ``--skip-existing`` resumes an interrupted batch. Ctrl-C stops after the
current file (or the images in flight; exit 130).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections import deque
from concurrent.futures import Future
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from semprior.cli._batch import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_STATUS_HELP,
    OrderedWriter,
    Prefetched,
    StopAfterCurrent,
    Workers,
    one_line_reason,
    printable,
    show_names,
)

if TYPE_CHECKING:
    from torch import Tensor


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files and/or folders of images")
    p.add_argument(
        "-o",
        "--out",
        required=True,
        metavar="OUT",
        help="output folder (created), or a .jpg/.png/.webp file name when there is a single input file",
    )
    p.add_argument(
        "--format",
        choices=["png", "jpeg", "webp", "same"],
        default=None,
        help="output format for a folder -o (default png; same: each input's format, PNG for the others)",
    )
    p.add_argument("--quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality 1-100 (default 95)")
    p.add_argument(
        "--strip-metadata",
        action="store_true",
        help="do not copy the input's EXIF and ICC profile (default: copied, orientation reset to upright)",
    )
    p.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="also enhance the images in subfolders, keeping the folder tree under -o",
    )
    from semprior.cli._models import add_model_arguments

    add_model_arguments(p, multiple=False)  # default: the DeepSPG trained on LOL-v1 that ships with semprior
    p.add_argument("--tile", type=int, default=None, help="tile size in pixels (default: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    p.add_argument(
        "--max-memory-mb",
        type=float,
        default=None,
        help="choose the tile size from a memory cap (default: half of the memory available once the "
        "image buffers are counted; the whole image runs when it fits)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep outputs that already exist and process the rest (resume an interrupted batch)",
    )
    p.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first file that cannot be read or enhanced (exit 1) instead of listing failures at the end",
    )
    p.add_argument(
        "--allow-darker",
        action="store_true",
        help="keep the model's output as it is even when a dark photo (mean grey < 0.4) comes out darker "
        "(by default its exposure is raised to the input's; the model's contrast and colours are kept)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="images enhanced at once on the CPU, each with 1/N of the torch threads and of the memory bound "
        "(default: 2 where the process has two or more torch threads and there are two or more images, else 1; "
        "on a GPU always 1)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.epilog = EXIT_STATUS_HELP


#: --format -> output suffix; "same" keeps these input suffixes and writes PNG for the others
FORMAT_SUFFIX = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
SAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def collect_inputs(inputs: list[str], recursive: bool = False) -> tuple[list[tuple[Path, PurePath]], list[Path]]:
    """``[(file, name under OUT without suffix)]`` and the subfolders skipped (not ``recursive``).

    Files are taken as given (their stem); folders are expanded to their images, with
    ``recursive`` also to those of their subfolders (the relative path is kept).
    """
    from semprior.data.io import IMAGE_EXTENSIONS, list_images

    jobs: list[tuple[Path, PurePath]] = []
    skipped: list[Path] = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            folders = [p, *sorted(d for d in p.rglob("*") if d.is_dir())] if recursive else [p]
            found = [f for d in folders for f in list_images(d)]
            if not recursive:
                skipped += [
                    d
                    for d in sorted(p.iterdir())
                    if d.is_dir() and any(f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS for f in d.rglob("*"))
                ]
            if not found:
                more = "; its subfolders have images: pass --recursive" if skipped else ""
                raise FileNotFoundError(f"no images in folder {p} (looked for {', '.join(IMAGE_EXTENSIONS)}){more}")
            jobs += [(f, PurePath(f.relative_to(p).with_suffix(""))) for f in found]
        elif p.is_file():
            jobs.append((p, PurePath(p.stem)))
        else:
            raise FileNotFoundError(f"input not found: {p}")
    return jobs, skipped


def drop_own_outputs(files: list[Path], out: Path) -> tuple[list[Path], list[Path]]:
    """``(inputs, outputs)``: with ``-o`` equal to an input folder, a ``NAME.png`` there beside another
    ``NAME.*`` input is that input's output from an earlier run, not a new input.

    Reruns then see the same inputs as the first run (``--skip-existing`` keeps the outputs); a PNG
    with no such sibling is an input (and is refused, as it would overwrite itself).
    """
    if not out.is_dir():
        return files, []
    here = out.resolve()
    stems: dict[str, list[Path]] = {}
    for f in files:
        if f.parent.resolve() == here:
            stems.setdefault(f.stem, []).append(f)
    ours = [
        f
        for f in files
        if f.parent.resolve() == here
        and f.suffix.lower() == ".png"
        and any(g.suffix.lower() != ".png" for g in stems.get(f.stem, []))
    ]
    return [f for f in files if f not in ours], ours


def output_paths(
    jobs: list[tuple[Path, PurePath]], out: Path, fmt: str, overwrite: bool, skip_existing: bool = False
) -> list[Path]:
    """``OUT/<name><suffix>`` per input (``fmt`` from `FORMAT_SUFFIX` or ``"same"``).

    Clashes and existing outputs are errors.
    """
    seen: dict[Path, Path] = {}
    dests = []
    for f, rel in jobs:
        suffix = f.suffix if fmt == "same" and f.suffix.lower() in SAME_SUFFIXES else FORMAT_SUFFIX.get(fmt, ".png")
        d = out / rel.parent / (rel.name + suffix)
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


def plan(args: argparse.Namespace) -> tuple[list[Path], list[Path], Path, list[Path]]:
    """``(inputs, outputs, output folder or file, skipped subfolders)`` from the arguments.

    Usage errors are raised here.
    """
    from semprior.data.io import WRITE_FORMATS

    if not 1 <= args.quality <= 100:
        raise ValueError(f"--quality must be 1-100, got {args.quality}")
    jobs, skipped = collect_inputs(args.inputs, args.recursive)
    out = Path(args.out)
    one_file = out.suffix.lower() in WRITE_FORMATS and not out.is_dir()
    if one_file:
        if len(args.inputs) != 1 or Path(args.inputs[0]).is_dir():
            what = f"{args.inputs[0]} is a folder" if len(args.inputs) == 1 else f"{len(args.inputs)} inputs are given"
            raise ValueError(f"-o {out} names one file but {what}; give a folder for -o")
        if args.format is not None and (
            args.format == "same" or WRITE_FORMATS[FORMAT_SUFFIX[args.format]] != WRITE_FORMATS[out.suffix.lower()]
        ):
            raise ValueError(f"--format {args.format} contradicts -o {out.name}; drop --format or change the suffix")
        dest = out
        if dest.exists() and not (args.overwrite or args.skip_existing):
            raise FileExistsError(f"{dest} exists; pass --overwrite to replace it or --skip-existing to keep it")
        if jobs[0][0].resolve() == dest.resolve():
            raise ValueError(f"-o {dest} would overwrite its own input; choose another name")
        return [jobs[0][0]], [dest], dest, skipped
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(
            f"-o {out} exists and is not a folder; give a folder (or a new .jpg/.png/.webp file name)"
        )
    kept, ours = drop_own_outputs([f for f, _ in jobs], out)
    if ours:
        print(
            f"{len(ours)} PNG(s) in {printable(str(out))} are the outputs of other inputs there (-o is an input "
            "folder); they are not enhanced again",
            file=sys.stderr,
        )
        jobs = [j for j in jobs if j[0] in set(kept)]
    return (
        [f for f, _ in jobs],
        output_paths(jobs, out, args.format or "png", args.overwrite, args.skip_existing),
        out,
        skipped,
    )


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from semprior._atomic import remove_stale_temps
    from semprior._memory import available_bytes
    from semprior.cli._models import build_models, pick_device
    from semprior.data.io import read_image, read_metadata, write_image
    from semprior.engine.brightness import keep_brightness
    from semprior.engine.tiling import default_memory_mb, enhance_image, is_tileable, tiling_plan

    if args.tile is not None and args.tile < 1:
        raise ValueError(f"--tile must be >= 1, got {args.tile}")
    if args.overwrite and args.skip_existing:
        raise ValueError("--overwrite and --skip-existing contradict each other; pass one of them")
    files, dests, out, skipped = plan(args)
    if skipped:
        print(
            f"warning: skipped {len(skipped)} subfolder(s) with images ({show_names(skipped, 3)}); "
            "pass --recursive to enhance them too (the folder tree is kept under -o)",
            file=sys.stderr,
        )
    todo = [(f, d) for f, d in zip(files, dests) if not (args.skip_existing and d.exists())]
    existing = len(files) - len(todo)
    if sum(x is not None for x in (args.model, args.checkpoint)) > 1:
        raise ValueError("give one of --model or --checkpoint (enhance runs one model)")
    jobs, threads = resolve_jobs(args.jobs, len(todo), pick_device(args.device).type, torch.get_num_threads())
    ((label, model),) = build_models(args, default="deepspg").items()
    if (args.tile is not None or args.max_memory_mb is not None) and not is_tileable(model):
        print(
            f"note: {label} is a global method; it runs on each whole image (tiling would change "
            "its result), so --tile/--max-memory-mb do not apply",
            file=sys.stderr,
        )
    _, tile_side = tiling_plan(
        model, tile=args.tile, overlap=args.overlap, max_memory_mb=args.max_memory_mb
    )  # bad options: stop now
    warn_tiles = tile_side is not None and bool(getattr(model, "global_context", False))
    available = available_bytes()
    if args.max_memory_mb is not None and available is not None and args.max_memory_mb * 2**20 > available:
        raise ValueError(
            f"--max-memory-mb {args.max_memory_mb:g} is more than the {available / 2**20:.0f} MB available "
            "now; lower it, or leave it out to use the default bound"
        )
    auto = args.tile is None and args.max_memory_mb is None and is_tileable(model)
    folder = out.parent if out in dests else out  # -o photo.jpg: the file's folder
    folder.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temps(folder)
    if stale:
        print(f"removed {len(stale)} temporary file(s) left in {folder} by an interrupted run", file=sys.stderr)
    if existing:
        print(f"skipping {existing} input(s) whose output exists (--skip-existing)", file=sys.stderr)
    written: list[Path] = []
    failed: list[tuple[Path, str]] = []
    interrupted = False
    warn_lock = threading.Lock()

    def settle(done: list[tuple[tuple[Path, Path], BaseException | None]]) -> None:
        for (src, dst), err in done:
            if err is None:
                written.append(dst)
            elif args.fail_fast or not isinstance(err, Exception):
                raise err
            else:
                failed.append((src, one_line_reason(err, src)))

    def enhance_one(src: Path, img: Tensor | None, read_error: Exception | None) -> Tensor:
        """One image's output (in a model thread); raises what went wrong with it."""
        nonlocal warn_tiles
        if read_error is not None:
            raise read_error
        assert img is not None
        cap = args.max_memory_mb
        if auto:  # the default bound, from the image's size; the images in flight share the memory
            free = available_bytes()
            cap = default_memory_mb(_pixels(src), None if free is None else free // jobs, name=str(src))
        with warn_lock:
            warn = warn_tiles and tile_side is not None and max(img.shape[-2:]) > tile_side
            warn_tiles = warn_tiles and not warn  # once per run
        if warn:
            print(
                f"\nwarning: {label} attends over the whole image, and {src.name} runs in "
                f"{tile_side}-px tiles: the output changes everywhere, not only at tile borders; "
                "omit --tile or give more --max-memory-mb to run whole images",
                file=sys.stderr,
            )
        y = enhance_image(
            model, img, tile=args.tile, overlap=args.overlap, max_memory_mb=cap, precision=args.dtype
        ).clamp(0, 1)
        return y if args.allow_darker else keep_brightness(img, y)

    def finish(item: tuple[Path, Path], result: Future[Tensor]) -> None:
        """Queue the write of one finished image (in input order), or record why it failed."""
        src = item[0]
        try:
            y = result.result()
            exif, icc = (None, None) if args.strip_metadata else read_metadata(src)
            settle(writer.submit(item, item[1], y[0], args.quality, exif, icc))
        except Exception as exc:
            if args.fail_fast:
                raise
            failed.append((src, one_line_reason(exc, src)))

    # `jobs` images are enhanced at once in model threads while the next files are decoded and the last
    # outputs encoded in background threads; outputs are written in input order, each atomically
    in_flight: deque[tuple[tuple[Path, Path], Future[Tensor]]] = deque()
    with (
        StopAfterCurrent("file") as stop,
        Workers(jobs, threads) as workers,
        Prefetched(todo, lambda item: read_image(item[0]).unsqueeze(0), ahead=jobs) as inputs,
        OrderedWriter(lambda d, im, q, e, c: write_image(d, im, quality=q, exif=e, icc_profile=c)) as writer,
    ):
        bar = tqdm(inputs, total=len(todo), desc="enhance", unit="img", disable=args.no_progress)
        try:
            try:
                for item, img, read_error in bar:
                    if stop.requested:
                        break
                    bar.set_postfix_str(item[0].name)
                    in_flight.append((item, workers.submit(enhance_one, item[0], img, read_error)))
                    del img  # the model thread holds the image until it is done with it
                    while len(in_flight) >= jobs:
                        finish(*in_flight.popleft())
                while in_flight:  # also after the first Ctrl-C: the images started are finished and written
                    finish(*in_flight.popleft())
            finally:
                settle(writer.drain())  # every submitted output is complete before the report
        except KeyboardInterrupt:
            interrupted = True
            workers.cancel()  # a second Ctrl-C: the images in flight stop at their next layer
        finally:
            bar.close()
    written_set, failed_set = set(written), {src for src, _ in failed}
    left = [src for src, dst in todo if dst not in written_set and src not in failed_set]
    return _report(
        out, len(todo), written, failed, existing, left if (interrupted or stop.requested) and left else None
    )


def resolve_jobs(jobs: int | None, n_images: int, device: str, threads: int) -> tuple[int, int]:
    """``(images at once, torch threads per image)`` for ``--jobs`` (``None``: the default), given the
    process's torch ``threads`` (``torch.get_num_threads()``: the cores, or ``OMP_NUM_THREADS``).

    The default on a CPU is two images at once, half of the threads each, where there are two or
    more threads and images (measured faster on a folder of small photos:
    ``benchmarks/results/folder_throughput.md``); never more images at once than there are images;
    a GPU runs one at a time with the process's threads.

    Examples:
        >>> resolve_jobs(None, 100, "cpu", 2), resolve_jobs(None, 1, "cpu", 2), resolve_jobs(None, 100, "cuda", 16)
        ((2, 1), (1, 2), (1, 16))
        >>> resolve_jobs(3, 100, "cpu", 16)
        (3, 5)
    """
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    if device != "cpu":
        if jobs not in (None, 1):
            raise ValueError(f"--jobs {jobs} applies to the CPU; on {device} images run one at a time (omit --jobs)")
        return 1, threads
    n = jobs if jobs is not None else (2 if threads >= 2 else 1)
    n = max(1, min(n, n_images))
    return n, max(1, threads // n)


def _pixels(path: Path) -> int:
    """Width x height from the file's header (PIL reads no pixels); 0 when the header cannot be read."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's DecompressionBombWarning: read_image decides
            with Image.open(path) as im:
                w, h = im.size
        return int(w) * int(h)
    except Exception:  # noqa: BLE001 - read_image then reports the real problem
        return 0


def _report(
    out: Path, n_todo: int, written: list[Path], failed: list[tuple[Path, str]], existing: int, left: list[Path] | None
) -> int:
    """Print what was written, what failed (one line each) and, after Ctrl-C, what was not processed (``left``).

    Returns the exit status: 130 when interrupted with inputs left, else 3 when any input failed, else 0.
    """
    kept = f" ({existing} existing output(s) kept)" if existing else ""
    if written == [out]:  # -o photo.jpg
        print(f"wrote {printable(str(out))}")
    else:
        print(f"wrote {len(written)} of {n_todo} image(s) to {printable(str(out))}{kept}")
    if failed:
        print(f"semprior enhance: {len(failed)} input(s) failed:", file=sys.stderr)
        for src, reason in failed:
            print(f"  {printable(str(src))}: {reason}", file=sys.stderr)
    if left is not None:
        print(f"semprior enhance: interrupted; {len(left)} input(s) not processed: {show_names(left)}", file=sys.stderr)
        print("  rerun the same command with --skip-existing to finish them", file=sys.stderr)
        return EXIT_INTERRUPTED
    if failed:
        return EXIT_SOME_FAILED
    return EXIT_OK
