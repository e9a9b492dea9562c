"""SSIM of one eval15 pair in float64 (the metric) and float32: time and difference (one thread).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_ssim_dtype.py ~/data/LOL benchmarks/results/ssim_dtype
"""

from __future__ import annotations

import argparse
import importlib
import os
import time

import torch
from _harness import provenance, write_result

from semprior.data.io import read_image
from semprior.metrics.protocol import MetricProtocol, prepare_image

#: the SSIM module (``semprior.metrics.ssim`` the attribute is the function)
S = importlib.import_module("semprior.metrics.ssim")


def best(fn, n=5):
    fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), float(r)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lol", help="LOL-v1 root (reads eval15/low/1.png and eval15/high/1.png)")
    p.add_argument("out", help="result stem: writes OUT.json and OUT.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    lo = read_image(f"{args.lol}/eval15/low/1.png").unsqueeze(0)
    hi = read_image(f"{args.lol}/eval15/high/1.png").unsqueeze(0)
    protocol = MetricProtocol()
    a, b = prepare_image((lo * 3).clamp(0, 1), protocol).double(), prepare_image(hi, protocol).double()
    flat_a = torch.full((1, 3, 400, 600), 250 / 255, dtype=torch.float64)
    flat_b = torch.full((1, 3, 400, 600), 1.0, dtype=torch.float64)
    cases = (("eval15 1.png (3 x low vs high)", (a, b)), ("flat bright (250/255 vs 1.0)", (flat_a, flat_b)))
    rows, lines = [], []
    for label, (x, y) in cases:
        t64, v64 = best(lambda x=x, y=y: S._ssim_valid(x, y, 1.0, 11, 1.5, 0.01, 0.03))
        t32, v32 = best(lambda x=x, y=y: S._ssim_valid(x.float(), y.float(), 1.0, 11, 1.5, 0.01, 0.03))
        rows.append({"images": label, "float64_s": t64, "float32_s": t32, "ssim_float64": v64, "ssim_float32": v32})
        lines.append(f"| {label} | {t64 * 1e3:.0f} ms | {t32 * 1e3:.0f} ms | {t64 / t32:.1f}x | {abs(v32 - v64):.1e} |")
    meta = provenance(__file__, argv, threads=1)
    load_end = os.getloadavg()
    md = [
        "# SSIM in float64 and float32",
        f"Load at end {[round(v, 2) for v in load_end]}.",
        "",
        "| images | float64 (the metric) | float32 | speed-up | SSIM difference |",
        "|---|---|---|---|---|",
        *lines,
    ]
    write_result(args.out, meta, {"loadavg_at_end": load_end, "rows": rows}, md)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
