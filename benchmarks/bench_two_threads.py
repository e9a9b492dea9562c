"""Does a second thread get a second core? One-thread work timed alone and two at once (two threads).

`semprior eval` hides the metrics behind the enhancement only where the scoring thread gets a core
of its own. This times, in one process with one torch thread per call, a compute-bound job (a
1024² float32 matrix product) and the metrics' job (``ReferenceScorer.scores`` on eval15 ``1.png``,
3 × low vs high): once alone, then two copies at once in two threads. Two free cores: each copy
takes about as long as alone. One core's worth of CPU left by other work: each takes twice as long.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_two_threads.py ~/data/LOL benchmarks/results/two_threads
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import torch
from _harness import eval15_pair_cli, write_table

from semprior.metrics.scorer import ReferenceScorer

#: calls per timing (the mean is kept)
CALLS = 15


def main(argv: list[str] | None = None) -> int:
    args, lo, hi = eval15_pair_cli(__doc__, argv)
    pred = (lo * 3).clamp(0, 1)
    a = torch.randn(1024, 1024)

    def scores() -> float:
        scorer = ReferenceScorer(hi)
        scorer.scores(pred)
        t0 = time.perf_counter()
        for _ in range(CALLS):
            scorer.scores(pred)
        return (time.perf_counter() - t0) / CALLS

    def gemm() -> float:
        a @ a
        t0 = time.perf_counter()
        for _ in range(CALLS):
            a @ a
        return (time.perf_counter() - t0) / CALLS

    rows, table = [], ["| job (one thread each) | alone | two at once (each) | slow-down |", "|---|---|---|---|"]
    with ThreadPoolExecutor(2) as pool:
        for name, job in (("1024² float32 matrix product", gemm), ("ReferenceScorer.scores, 600x400", scores)):
            alone = job()
            pair = [f.result() for f in [pool.submit(job), pool.submit(job)]]
            rows.append({"job": name, "alone_s": alone, "two_at_once_s": pair})
            table.append(
                f"| {name} | {1e3 * alone:.1f} ms | {1e3 * pair[0]:.1f} / {1e3 * pair[1]:.1f} ms | "
                f"{sum(pair) / 2 / alone:.2f}x |"
            )
    note = f"Mean of {CALLS} calls per timing, one torch thread per call; "
    return write_table(__file__, argv, args.out, "# One thread alone and two at once", note, table, rows)


if __name__ == "__main__":
    raise SystemExit(main())
