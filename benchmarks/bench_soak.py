"""Soak benchmark: one ``semprior enhance`` call over thousands of photos keeps its memory flat.

Writes ``N`` synthetic night photos (JPEG, smooth gradients plus noise, so the files decode like
camera output) into a scratch folder, then runs the real CLI once over the folder in a **fresh
process** with a hook after every written file that samples the peak resident set
(``VmHWM``) and the current one (``VmRSS``) at checkpoints (50, 100, 200, 500, 1000, ...).
Memory is flat when the peak after ``N`` images stays within a few percent of the peak after 50
(the CI version of this check, on 1,000 tiny images, is
``tests/reliability/test_batch_runs.py::test_soak_1000_images_keep_peak_memory_flat``).

Usage::

    python benchmarks/bench_soak.py                                  # 10,000 x 640x480, lime
    python benchmarks/bench_soak.py --n 3000 --size 1920x1080 --model gamma
    python benchmarks/bench_soak.py --n 2000 --checkpoint runs/deepspg/best.pt --size 600x400

Results go to ``benchmarks/results/soak.json`` and ``soak.md`` (``--results DIR`` to change).
Run it on an otherwise idle machine; times under load are meaningless (memory figures are not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _harness import RESULTS, provenance, write_result

_CHILD = """
    import json, sys, time
    import semprior.data.io as io
    from semprior.cli.main import main

    args, marks = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
    real, count, rows, t0 = io.write_image, [0], [], time.perf_counter()

    def status_kib(field):  # VmHWM: this process's peak RSS (ru_maxrss would include the parent's at fork)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

    def counted(path, image, *a, **k):
        real(path, image, *a, **k)
        count[0] += 1
        if count[0] in marks:
            rows.append({"images": count[0], "peak_rss_kib": status_kib("VmHWM"), "rss_kib": status_kib("VmRSS"),
                         "seconds": round(time.perf_counter() - t0, 2)})

    io.write_image = counted
    rc = main(args)
    print("RESULT " + json.dumps({"rc": rc, "rows": rows}), flush=True)
"""


def make_inputs(folder: Path, n: int, width: int, height: int, seed: int = 0) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(n):
        base = 10 + 25 * (np.sin(xx / (40 + i % 17)) + np.cos(yy / (30 + i % 13)) + 2) / 4
        img = base[..., None] * np.array([1.0, 0.9, 1.2], np.float32) + rng.normal(0, 3, (height, width, 3))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=90)


def checkpoints(n: int) -> list[int]:
    marks, k = [], 50
    while k < n:
        marks.append(k)
        k = k * 2 if str(k)[0] in "15" else k * 5 // 2  # 50, 100, 200, 500, 1000, 2000, 5000, ...
    return sorted(set(marks + [n]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="number of images (default 10000)")
    ap.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of each image (default 640x480)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--model", default="lime", help="classical method (default lime)")
    g.add_argument("--checkpoint", help="DeepSPG checkpoint instead of a classical method")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in the child (default 2)")
    ap.add_argument("--workdir", help="scratch folder (default: a temporary one, removed after)")
    ap.add_argument("--results", default=str(RESULTS), help="where soak.json/soak.md go")
    a = ap.parse_args(argv)
    if a.n < 50:
        ap.error("--n must be >= 50 (the reference point is the peak after 50 images)")
    width, height = (int(v) for v in a.size.lower().split("x"))
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="semprior-soak-"))
    try:
        src, out = work / "in", work / "out"
        t0 = time.perf_counter()
        make_inputs(src, a.n, width, height)
        print(f"wrote {a.n} inputs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        what = ["--checkpoint", a.checkpoint] if a.checkpoint else ["--model", a.method]
        cli = ["enhance", str(src), "-o", str(out), *what, "--no-progress", "--overwrite"]
        env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
        p = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_CHILD), json.dumps(cli), json.dumps(checkpoints(a.n))],
            capture_output=True,
            text=True,
            env=env,
        )
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
        if p.returncode != 0 or not line:
            print(p.stderr, file=sys.stderr)
            return 1
        res = json.loads(line[0][len("RESULT ") :])
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    rows = res["rows"]
    ref = rows[0]["peak_rss_kib"]
    for r in rows:
        r["peak_vs_50"] = round(r["peak_rss_kib"] / ref - 1, 4)
    report = {
        "n": a.n,
        "size": [width, height],
        "what": what,
        "threads": a.threads,
        "exit_status": res["rc"],
        "rows": rows,
    }
    md = [
        f"# Soak: {a.n} images {width}x{height}, {' '.join(what)}, {a.threads} threads",
        "",
        "| images | peak RSS (MiB) | current RSS (MiB) | peak vs after 50 | seconds |",
        "|---:|---:|---:|---:|---:|",
    ]
    md += [
        f"| {r['images']} | {r['peak_rss_kib'] / 1024:.1f} | {r['rss_kib'] / 1024:.1f} | "
        f"{100 * r['peak_vs_50']:+.2f} % | {r['seconds']} |"
        for r in rows
    ]
    print("\n".join(md))
    write_result(Path(a.results) / "soak", provenance(__file__, argv, threads=a.threads), report, md)
    return 0 if res["rc"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
