"""The one harness of the micro-benchmarks: machine description, memory counters, timing, and result files.

Every benchmark script imports it by name (``from _harness import ...``): Python puts a script's own
folder first on ``sys.path``, so ``python benchmarks/bench_x.py`` finds it with no path edits.

A result is two files, ``STEM.json`` and ``STEM.md``, written by :func:`write_result`. Both record
the provenance: the commit (``+dirty`` when tracked files differed from it), the exact command, the
date and the machine. ``tests/docs/test_results.py`` checks that every result file does.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"


def parse_size(s: str) -> tuple[int, int]:
    """``"WxH"`` (e.g. ``"1920x1080"``) -> ``(H, W)``; an argparse ``type=``."""
    import argparse

    try:
        w, h = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1920x1080 (width x height), got {s!r}") from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size must be at least 8x8, got {s!r}")
    return h, w


def status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_hwm() -> bool:
    """Reset the resident-set high-water mark (``VmHWM``); false where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], object], repeats: int = 1) -> tuple[float, object]:
    """The best wall time of ``repeats`` calls of ``fn`` (seconds) and the last call's result."""
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def machine(threads: int | None = None) -> dict:
    """CPU model, core count, memory, load, Python, torch and GPU of this machine."""
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": threads if threads is not None else int(os.environ.get("BENCH_THREADS", "2")),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["mem_total_gib"] = round(int(Path("/proc/meminfo").read_text().split()[1]) / 2**20, 1)
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def commit() -> str:
    """The short commit of the checkout, ``+dirty`` when tracked files differ from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if sha.returncode == 0 else "unknown"


def command(script: str, argv: list[str] | None = None) -> str:
    """The command line that reruns this benchmark: ``python benchmarks/NAME.py ARGS``."""
    path = Path(script).resolve()
    rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return " ".join(["python", str(rel), *map(shlex.quote, sys.argv[1:] if argv is None else argv)])


def provenance(script: str, argv: list[str] | None = None, threads: int | None = None, **extra: object) -> dict:
    """``{"commit", "command", "date", "machine"}`` of a run of ``script`` (its ``__file__``)."""
    info = machine(threads)
    info.update(extra)
    return {"commit": commit(), "command": command(script, argv), "date": time.strftime("%Y-%m-%d"), "machine": info}


def run_in_child(script: str | Path, case: dict, timeout: float, oom_as: str | None = None) -> dict:
    """Run ``script --case JSON`` in a fresh process (so that each case's memory and threads start clean).

    The script prints its row as the last line of stdout; a timeout or a failure becomes the row's
    ``error`` (with ``oom_as`` as the error when the process ran out of memory, if given).
    """
    cmd = [sys.executable, str(script), "--case", json.dumps(case)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(case, error=f"timeout > {timeout:.0f} s")
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    err = (proc.stderr.strip().splitlines() or [f"rc={proc.returncode}"])[-1]
    if oom_as is not None and ("can't allocate memory" in err or "MemoryError" in err):
        return dict(case, error=oom_as)
    return dict(case, error=f"failed: {err[:120]} (rc={proc.returncode})")


def write_result(stem: str | Path, meta: dict, data: dict, md: list[str]) -> None:
    """Write ``stem.json`` (``meta`` from :func:`provenance`, then ``data``) and ``stem.md`` (``md``'s title line,
    the provenance line, then the rest of ``md``)."""
    out = Path(stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**meta, **data}, indent=1, default=str) + "\n")
    title, rest = (md[0], md[1:]) if md and md[0].startswith("#") else (f"# {out.name}", md)
    while rest and not rest[0].strip():
        rest = rest[1:]
    made = f"Made by `{meta['command']}` at commit {meta['commit']} on {meta['date']}."
    body = [title, "", made, "", f"Machine: {json.dumps(meta['machine'])}", "", *rest]
    out.with_suffix(".md").write_text("\n".join(body).rstrip("\n") + "\n")


def eval15_pair_cli(doc: str, argv: list[str] | None = None):
    """A one-thread benchmark of LOL-v1 eval15 pair ``1.png``: its command line (``LOL_ROOT OUT``) parsed, one torch
    thread set, and ``(args, low, high)`` with the two images as ``(1, 3, H, W)``."""
    import argparse

    import torch

    from semprior.data.io import read_image

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lol", help="LOL-v1 root (reads eval15/low/1.png and eval15/high/1.png)")
    p.add_argument("out", help="result stem: writes OUT.json and OUT.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    lo = read_image(f"{args.lol}/eval15/low/1.png").unsqueeze(0)
    hi = read_image(f"{args.lol}/eval15/high/1.png").unsqueeze(0)
    return args, lo, hi


def write_table(
    script: str, argv: list[str] | None, stem: str | Path, title: str, note: str, table: list[str], rows: list[dict]
) -> int:
    """Write a one-thread result: ``title``, ``note`` followed by the load average at the end, the Markdown
    ``table`` (header lines first); the JSON holds ``rows``. Prints the Markdown; returns 0 (an exit status)."""
    meta = provenance(script, argv, threads=1)
    load_end = os.getloadavg()
    load = f"{'load' if note else 'Load'} at end {[round(v, 2) for v in load_end]}."
    md = [title, note + load, "", *table]
    write_result(stem, meta, {"loadavg_at_end": load_end, "rows": rows}, md)
    print("\n".join(md))
    return 0
