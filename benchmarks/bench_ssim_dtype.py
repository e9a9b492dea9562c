"""SSIM of one eval15 pair in float64 (the metric) and float32: time and difference (one thread).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_ssim_dtype.py ~/data/LOL benchmarks/results/ssim_dtype
"""
import importlib
import os
import subprocess
import sys
import time

import torch

from semprior.data.io import read_image
from semprior.metrics.protocol import MetricProtocol, prepare_image

S = importlib.import_module("semprior.metrics.ssim")
torch.set_num_threads(1)
lol, out = sys.argv[1], sys.argv[2]
lo = read_image(f"{lol}/eval15/low/1.png").unsqueeze(0)
hi = read_image(f"{lol}/eval15/high/1.png").unsqueeze(0)
p = MetricProtocol()
a, b = prepare_image((lo * 3).clamp(0, 1), p).double(), prepare_image(hi, p).double()
flat_a, flat_b = torch.full((1, 3, 400, 600), 250 / 255, dtype=torch.float64), torch.full((1, 3, 400, 600), 1.0, dtype=torch.float64)


def best(fn, n=5):
    fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), float(r)


rows = []
for label, (x, y) in (("eval15 1.png (3 x low vs high)", (a, b)), ("flat bright (250/255 vs 1.0)", (flat_a, flat_b))):
    t64, v64 = best(lambda: S._ssim_valid(x, y, 1.0, 11, 1.5, 0.01, 0.03))
    t32, v32 = best(lambda: S._ssim_valid(x.float(), y.float(), 1.0, 11, 1.5, 0.01, 0.03))
    rows.append(f"| {label} | {t64 * 1e3:.0f} ms | {t32 * 1e3:.0f} ms | {t64 / t32:.1f}x | {abs(v32 - v64):.1e} |")
sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
md = "\n".join([f"Commit {sha}; command `OMP_NUM_THREADS=1 python benchmarks/bench_ssim_dtype.py {lol} {out}`; load at end "
                f"{[round(v, 2) for v in os.getloadavg()]}", "",
                "| images | float64 (the metric) | float32 | speed-up | SSIM difference |", "|---|---|---|---|---|", *rows])
open(out + ".md", "w").write(md + "\n")
print(md)
