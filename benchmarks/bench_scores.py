"""Time of ``ReferenceScorer.scores`` (PSNR and SSIM, as is and GT-mean) on one eval15 pair, per checkout.

Each variant is a fresh process with ``PYTHONPATH`` set to a checkout, one torch thread, timing
``scores(3 x low)`` against eval15 ``1.png`` (600x400) ``--repeats`` times after one warm-up; the
variants alternate round by round and the best time of each is kept, with the scores (which
must agree).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_scores.py --lol ~/data/LOL --variant before=/path/to/old/checkout \\
        --variant now=. --rounds 3 --out /tmp/scores
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _harness import RESULTS, provenance, write_result

CHILD = """
import json, sys, time, torch
torch.set_num_threads(1)
from semprior.data.io import read_image
from semprior.metrics.scorer import ReferenceScorer
lo = read_image(sys.argv[1] + "/eval15/low/1.png")[None]
hi = read_image(sys.argv[1] + "/eval15/high/1.png")[None]
pred = (lo * 3).clamp(0, 1)
scorer = ReferenceScorer(hi)
scores = scorer.scores(pred)
best = min(
    (lambda t: (scorer.scores(pred), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(int(sys.argv[2]))
)
print(json.dumps({"best_s": best, "scores": scores}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lol", required=True, help="LOL-v1 root (reads eval15/low/1.png and eval15/high/1.png)")
    p.add_argument("--variant", action="append", required=True, help="NAME=CHECKOUT (goes on PYTHONPATH)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default=str(RESULTS / "scores_600x400"))
    args = p.parse_args(argv)
    variants = [(n, str(Path(c).resolve())) for n, _, c in (v.partition("=") for v in args.variant)]
    runs: dict[str, list[dict]] = {n: [] for n, _ in variants}
    for _ in range(args.rounds):
        for name, checkout in variants:
            env = dict(os.environ, PYTHONPATH=checkout)
            cmd = [sys.executable, "-c", CHILD, args.lol, str(args.repeats)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(name, runs[name][-1], flush=True)
    base = min(r["best_s"] for r in runs[variants[0][0]])
    lines = [
        "# `ReferenceScorer.scores` on one 600x400 eval15 pair",
        "",
        f"One torch thread, best of {args.rounds} processes x {args.repeats} calls per variant.",
        "",
        "| variant | best ms | speed-up vs first | psnr | ssim | psnr_gtmean | ssim_gtmean |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, _ in variants:
        best = min(runs[name], key=lambda r: r["best_s"])
        s = best["scores"]
        lines.append(
            f"| {name} | {1000 * best['best_s']:.1f} | {base / best['best_s']:.2f}x | {s['psnr']:.6f} | "
            f"{s['ssim']:.8f} | {s['psnr_gtmean']:.6f} | {s['ssim_gtmean']:.8f} |"
        )
    data = {"variants": dict(variants), "runs": runs, "loadavg_at_end": os.getloadavg()}
    write_result(args.out, provenance(__file__, argv, threads=1), data, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
