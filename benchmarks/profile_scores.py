"""Profile of ReferenceScorer.scores (one 600x400 eval15 pair, one thread): where the metrics' time goes.

torch.profiler's self CPU time of 3 ``ReferenceScorer.scores`` calls on eval15 pair 1.png with the
prediction = 3 x low; the 12 costliest ops.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/profile_scores.py ~/data/LOL benchmarks/results/profile_scores_600x400
"""

from __future__ import annotations

import argparse
import os

import torch
from _harness import provenance, write_result
from torch.profiler import profile

from semprior.data.io import read_image
from semprior.metrics.scorer import ReferenceScorer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lol", help="LOL-v1 root (reads eval15/low/1.png and eval15/high/1.png)")
    p.add_argument("out", help="result stem: writes OUT.json and OUT.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    lo = read_image(f"{args.lol}/eval15/low/1.png").unsqueeze(0)
    hi = read_image(f"{args.lol}/eval15/high/1.png").unsqueeze(0)
    pred = (lo * 3).clamp(0, 1)
    sc = ReferenceScorer(hi)
    sc.scores(pred)  # warm-up
    with profile() as prof:
        for _ in range(3):
            sc.scores(pred)
    ka = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    tot = sum(e.self_cpu_time_total for e in ka)
    rows = [{"op": e.key, "calls": e.count, "share": e.self_cpu_time_total / tot} for e in ka[:12]]
    meta = provenance(__file__, argv, threads=1)
    load_end = os.getloadavg()
    md = [
        "# Where ReferenceScorer.scores spends its time",
        "torch.profiler self CPU time of 3 ReferenceScorer.scores calls, eval15 pair 1.png, prediction = 3 x low; "
        f"load at end {[round(v, 2) for v in load_end]}.",
        "",
        "| op | calls | share |",
        "|---|---|---|",
        *(f"| {r['op']} | {r['calls']} | {100 * r['share']:.1f} % |" for r in rows),
    ]
    write_result(args.out, meta, {"loadavg_at_end": load_end, "rows": rows}, md)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
