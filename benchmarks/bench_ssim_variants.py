"""Faster SSIM variants against the metric: their error against scikit-image and their time (one thread).

The metric (``semprior.metrics.ssim``: float64, strips, the separable blur as shifted slices) is
compared with variants that are not used, each as written here:

- ``float32``: the metric's strip code on float32 inputs;
- ``float32, centred (image)``: each channel's mean over the image subtracted in float64, the five
  moment maps of the centred images blurred in float32, the SSIM formula in float64 (variances and
  covariance do not change under a shift; the mean is added back for the luminance term);
- ``float32, centred (strip)``: the same with the mean of each strip's rows;
- ``float64, banded GEMM columns``: the metric's float64 arithmetic with the column pass as a
  matrix product (a band of the 11 taps times 16 output rows' inputs), the row pass as slices.

Error: the largest ``|SSIM − scikit-image|`` (``structural_similarity``, MATLAB-style settings, float64)
over every LOL-v1 eval15 pair (low and 4 × low against the reference) and over synthetic 8-bit
cases chosen to break cancellation (flat bright, hard edges between flat regions, clipped highlights
beside dark texture, near-constant, high-contrast noise). Time: one SSIM (no cached reference
statistics) of eval15 ``1.png`` (3 × low vs high), best of 7.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_ssim_variants.py ~/data/LOL benchmarks/results/ssim_variants
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import torch
from _harness import eval15_pair_cli, write_table
from skimage.metrics import structural_similarity as sk_ssim

from semprior.data.io import read_image
from semprior.metrics.protocol import MetricProtocol, prepare_image

#: the SSIM module (``semprior.metrics.ssim`` the attribute is the function)
S = importlib.import_module("semprior.metrics.ssim")
C1, C2 = 1e-4, 9e-4
#: timed calls per variant (the best is kept)
REPEATS = 7


def metric(x, y):
    return S._ssim_valid(x, y, 1.0, 11, 1.5, 0.01, 0.03)


def float32_plain(x, y):
    return S._ssim_valid(x.float(), y.float(), 1.0, 11, 1.5, 0.01, 0.03)


def _centred(x, y, per_strip: bool):
    taps = S.gaussian_window(11, 1.5, torch.float64).tolist()
    b, c, h, w = x.shape
    m, n = h - 10, w - 10
    rows = max(1, S.STRIP_ELEMENTS // (b * c * w))
    total = torch.zeros(b, dtype=torch.float64)
    for r0 in range(0, m, rows):
        r1 = min(r0 + rows, m) + 10
        xs, ys = x[..., r0:r1, :], y[..., r0:r1, :]
        src_x, src_y = (xs, ys) if per_strip else (x, y)
        mx, my = src_x.mean(dim=(-2, -1), keepdim=True), src_y.mean(dim=(-2, -1), keepdim=True)
        dx, dy = xs - mx, ys - my
        blurred = S._blur(torch.stack((dx, dy, dx * dx, dy * dy, dx * dy)).float(), taps).double()
        ux, uy, exx, eyy, exy = blurred.unbind(0)
        sxx, syy, sxy = exx - ux * ux, eyy - uy * uy, exy - ux * uy
        ux, uy = ux + mx, uy + my
        s = ((2 * ux * uy + C1) * (2 * sxy + C2)) / ((ux * ux + uy * uy + C1) * (sxx + syy + C2))
        total += s.flatten(1).sum(1)
    return total / (c * m * n)


def float32_centred_image(x, y):
    return _centred(x, y, per_strip=False)


def float32_centred_strip(x, y):
    return _centred(x, y, per_strip=True)


def _band(rows: int, taps: torch.Tensor) -> torch.Tensor:
    band = torch.zeros(rows, rows + 10, dtype=torch.float64)
    for i in range(rows):
        band[i, i : i + 11] = taps
    return band


def float64_gemm_columns(x, y, gemm_rows: int = 16):
    taps_t = S.gaussian_window(11, 1.5, torch.float64)
    taps = taps_t.tolist()
    b, c, h, w = x.shape
    m, n = h - 10, w - 10
    rows = max(1, S.STRIP_ELEMENTS // (b * c * w))
    total = torch.zeros(b, dtype=torch.float64)
    for r0 in range(0, m, rows):
        r1 = min(r0 + rows, m) + 10
        xr = x[..., r0:r1, :].flatten(0, 1).transpose(0, 1)  # rows first: (rows, B*C, W)
        yr = y[..., r0:r1, :].flatten(0, 1).transpose(0, 1)
        buf = torch.stack((xr, yr, xr * xr, yr * yr, xr * yr), dim=1)  # (rows, 5, B*C, W)
        flat = buf.reshape(buf.shape[0], -1)
        mo = buf.shape[0] - 10
        cols = flat.new_empty((mo, flat.shape[1]))
        for q0 in range(0, mo, gemm_rows):
            q1 = min(q0 + gemm_rows, mo)
            torch.mm(_band(q1 - q0, taps_t), flat[q0 : q1 + 10], out=cols[q0:q1])
        ux, uy, exx, eyy, exy = S._blur_valid(cols.view(mo, *buf.shape[1:]), taps, -1).unbind(1)
        s = ((2 * ux * uy + C1) * (2 * (exy - ux * uy) + C2)) / (
            (ux * ux + uy * uy + C1) * (exx + eyy - ux * ux - uy * uy + C2)
        )
        total += s.transpose(0, 1).unflatten(0, (b, c)).sum(dim=(1, 2, 3))
    return total / (c * m * n)


VARIANTS = {
    "float64 (the metric)": metric,
    "float32": float32_plain,
    "float32, centred (image)": float32_centred_image,
    "float32, centred (strip)": float32_centred_strip,
    "float64, banded GEMM columns": float64_gemm_columns,
}


def synthetic_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """8-bit pairs `(prediction, reference)` that stress the cancellation ``E[x²] − μ²``."""
    g = torch.Generator().manual_seed(0)
    h, w = 120, 160
    halves = torch.zeros(1, 3, h, w)
    halves[..., w // 2 :] = 1.0
    dark_left = halves.clone()
    dark_left[..., : w // 2] = 0.02
    clipped = torch.rand(1, 3, h, w, generator=g) * 0.3
    clipped[..., :, :48] = 1.0  # a clipped highlight down the whole left side, dark texture beside it
    cases = {
        "flat bright (0.95 vs 0.93)": (torch.full((1, 3, h, w), 0.95), torch.full((1, 3, h, w), 0.93)),
        "black and white halves, the same": (halves, halves.clone()),
        "0.02 and white vs black and white halves": (dark_left, halves),
        "clipped highlight beside dark texture": ((clipped * 0.9 + 0.05).clamp(0, 1), clipped),
        "near-constant 0.5 ± 0.002": (
            0.5 + 0.002 * torch.randn(1, 3, h, w, generator=g),
            0.5 + 0.002 * torch.randn(1, 3, h, w, generator=g),
        ),
        "high-contrast noise (0 or 1)": (
            torch.rand(1, 3, h, w, generator=g).round(),
            torch.rand(1, 3, h, w, generator=g).round(),
        ),
    }
    return {k: (prepare_image(x, MetricProtocol()), prepare_image(y, MetricProtocol())) for k, (x, y) in cases.items()}


def skimage_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    a, b = x[0].double().numpy().transpose(1, 2, 0), y[0].double().numpy().transpose(1, 2, 0)
    kw = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0}
    return float(sk_ssim(a, b, channel_axis=2, **kw))


def main(argv: list[str] | None = None) -> int:
    args, lo, hi = eval15_pair_cli(__doc__, argv)
    protocol = MetricProtocol()
    pairs = []
    root = Path(args.lol) / "eval15"
    for f in sorted((root / "low").glob("*.png")):
        low, high = read_image(f)[None], read_image(root / "high" / f.name)[None]
        for pred in (low, (low * 4).clamp(0, 1)):
            pairs.append((prepare_image(pred, protocol), prepare_image(high, protocol)))
    synthetic = synthetic_cases()
    refs_eval = [skimage_ssim(x, y) for x, y in pairs]
    refs_syn = {k: skimage_ssim(x, y) for k, (x, y) in synthetic.items()}
    a = prepare_image((lo * 3).clamp(0, 1), protocol).double()
    b = prepare_image(hi, protocol).double()
    rows, table = [], []
    for name, fn in VARIANTS.items():
        err_eval = max(abs(float(fn(x.double(), y.double())) - r) for (x, y), r in zip(pairs, refs_eval, strict=True))
        err_syn = {k: abs(float(fn(x.double(), y.double())) - refs_syn[k]) for k, (x, y) in synthetic.items()}
        fn(a, b)
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            fn(a, b)
            times.append(time.perf_counter() - t0)
        worst_syn = max(err_syn, key=lambda k: err_syn[k])
        rows.append({"variant": name, "ms": 1e3 * min(times), "max_err_eval15": err_eval, "err_synthetic": err_syn})
        table.append(
            f"| {name} | {1e3 * min(times):.1f} ms | {err_eval:.1e} | {err_syn[worst_syn]:.1e} ({worst_syn}) | "
            f"{'yes' if max(err_eval, *err_syn.values()) <= 1e-6 else 'no'} |"
        )
    for r in rows:
        r["speed_up"] = rows[0]["ms"] / r["ms"]
    head = [
        "| variant | one SSIM, 600x400 | max error vs scikit-image, eval15 (30 pairs) | max error, synthetic (case) | "
        "within 1e-6 everywhere |",
        "|---|---|---|---|---|",
    ]
    per_case = ["", "Error per synthetic case:", "", "| case | " + " | ".join(VARIANTS) + " |"]
    per_case.append("|---|" + "---|" * len(VARIANTS))
    for k in synthetic:
        per_case.append(f"| {k} | " + " | ".join(f"{r['err_synthetic'][k]:.1e}" for r in rows) + " |")
    note = "One thread; times are one uncached SSIM of eval15 1.png (3 x low vs high); "
    return write_table(__file__, argv, args.out, "# SSIM variants: error and time", note, head + table + per_case, rows)


if __name__ == "__main__":
    raise SystemExit(main())
