"""Profile of ReferenceScorer.scores (one 600x400 eval15 pair, one thread): where the metrics' time goes.

torch.profiler's self CPU time of 3 ``ReferenceScorer.scores`` calls on eval15 pair 1.png with the
prediction = 3 x low; the 12 costliest ops.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/profile_scores.py ~/data/LOL benchmarks/results/profile_scores_600x400
"""

from __future__ import annotations

from _harness import eval15_pair_cli, write_table
from torch.profiler import profile

from semprior.metrics.scorer import ReferenceScorer


def main(argv: list[str] | None = None) -> int:
    args, lo, hi = eval15_pair_cli(__doc__, argv)
    pred = (lo * 3).clamp(0, 1)
    sc = ReferenceScorer(hi)
    sc.scores(pred)  # warm-up
    with profile() as prof:
        for _ in range(3):
            sc.scores(pred)
    ka = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    tot = sum(e.self_cpu_time_total for e in ka)
    rows = [{"op": e.key, "calls": e.count, "share": e.self_cpu_time_total / tot} for e in ka[:12]]
    table = [
        "| op | calls | share |",
        "|---|---|---|",
        *(f"| {r['op']} | {r['calls']} | {100 * r['share']:.1f} % |" for r in rows),
    ]
    note = "torch.profiler self CPU time of 3 ReferenceScorer.scores calls, eval15 pair 1.png, prediction = 3 x low; "
    return write_table(__file__, argv, args.out, "# Where ReferenceScorer.scores spends its time", note, table, rows)


if __name__ == "__main__":
    raise SystemExit(main())
