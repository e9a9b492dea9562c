"""SSIM of one eval15 pair in float64 (the metric) and float32: time and difference (one thread).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_ssim_dtype.py ~/data/LOL benchmarks/results/ssim_dtype
"""

from __future__ import annotations

import importlib
import time

import torch
from _harness import eval15_pair_cli, write_table

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
    args, lo, hi = eval15_pair_cli(__doc__, argv)
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
    head = ["| images | float64 (the metric) | float32 | speed-up | SSIM difference |", "|---|---|---|---|---|"]
    return write_table(__file__, argv, args.out, "# SSIM in float64 and float32", "", [*head, *lines], rows)


if __name__ == "__main__":
    raise SystemExit(main())
