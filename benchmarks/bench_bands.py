"""Band height of DeepSPG's exact banded inference: time per band height, side by side in one process.

Every band height gives the same output (to float rounding; `tests/models/test_deepspg.py`); the
height only moves the working set of each band (the feed-forward's ``2 × 2.66 × C`` hidden
channels) in and out of the CPU caches. The rounds interleave the heights so that a load change
on the machine hits them all alike; the table shows the best round of each, with its ratio to the
default (``semprior._bands.MODEL_BAND_PIXELS`` pixels per band).

    python benchmarks/bench_bands.py --size 600x400 --rows 16 32 54 108 --out benchmarks/results/bands_600x400
"""

from __future__ import annotations

import argparse
import sys
import time

from _harness import parse_size, provenance, write_result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=parse_size, default=(400, 600), help="WxH, e.g. 600x400")
    p.add_argument("--rows", type=int, nargs="+", default=[16, 32, 54, 108], help="band heights (even)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="write OUT.json and OUT.md")
    a = p.parse_args(argv)
    import torch

    from semprior._bands import MODEL_BAND_PIXELS, band_rows
    from semprior.models.deepspg import DeepSPG, DeepSPGConfig

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    h, w = a.size
    default = band_rows(w, multiple=2, pixels=MODEL_BAND_PIXELS)
    rows = sorted(set(a.rows) | {default})
    model = DeepSPG(DeepSPGConfig(image_prior=False, text_prior=False)).eval()
    x = torch.rand(1, 3, h, w) * 0.3
    times: dict[int, list[float]] = {r: [] for r in rows}
    with torch.no_grad():
        model.forward_banded(x[..., : min(h, 64), : min(w, 64)])  # warm-up
        for _ in range(a.rounds):
            for r in rows:
                t0 = time.perf_counter()
                model.forward_banded(x, band_rows=r)
                times[r].append(time.perf_counter() - t0)
    best = {r: min(v) for r, v in times.items()}
    md = [
        f"# DeepSPG banded inference: band height at {w}x{h} "
        f"({a.threads} thread(s), best of {a.rounds} interleaved rounds)",
        "",
        "| rows per band | pixels per band | time | vs default |",
        "|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = " (default)" if r == default else ""
        md.append(f"| {r}{mark} | {r * w:,} | {best[r]:.2f} s | {best[r] / best[default]:.2f} |")
    print("\n".join(md))
    if a.out:
        data = {
            "size": [w, h],
            "threads": a.threads,
            "default_rows": default,
            "times": {str(r): v for r, v in times.items()},
        }
        write_result(a.out, provenance(__file__, argv, threads=a.threads), data, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
