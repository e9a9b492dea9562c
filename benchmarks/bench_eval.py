"""Where `semprior eval` spends its time: enhancement vs metrics (issue 13's target: metrics < half).

Runs ``semprior eval`` in this process on LOL-v1 eval15 with the five classical baselines (or
the methods given), wrapping the metrics that ``semprior.engine.evaluate`` computes (the
``ReferenceScorer`` of each pair: its construction and every ``scores`` call) and the
enhancement call (``_run``) with timers. Both parts share whatever
load the machine has, so the *share* is meaningful even on a busy CPU; absolute seconds are not.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_eval.py --lol ~/data/LOL
    python benchmarks/bench_eval.py --lol ~/data/LOL --model he --model lime --out /tmp/eval_he_lime

Writes ``OUT.json`` and ``OUT.md`` (default ``benchmarks/results/classical_eval15``): the time split and the
scores of the run, with the commit, command and machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from _harness import RESULTS, provenance, write_result

BASELINES = ["identity", "gamma", "he", "clahe", "lime"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lol", required=True, help="LOL-v1 root (with eval15/low and eval15/high)")
    p.add_argument("--model", action="append", help="methods to evaluate (default: the five classical baselines)")
    p.add_argument("--out", default=str(RESULTS / "classical_eval15"), help="output stem (.json and .md)")
    args = p.parse_args(argv)
    meta = provenance(__file__, argv, threads=torch.get_num_threads())
    methods = args.model or BASELINES

    import semprior.engine.evaluate as ev
    from semprior.cli.main import main as cli

    spent = {"metrics": 0.0, "enhance": 0.0}

    def timed(fn, key):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[key] += time.perf_counter() - t

        return wrapper

    class TimedScorer(ev.ReferenceScorer):  # the reference's preparation and every method's four scores
        __init__ = timed(ev.ReferenceScorer.__init__, "metrics")
        scores = timed(ev.ReferenceScorer.scores, "metrics")

    ev.ReferenceScorer, ev._run = TimedScorer, timed(ev._run, "enhance")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cli_argv = ["eval", "--lol", args.lol, "--no-progress", "--out", tmp]
        for m in methods:
            cli_argv += ["--model", m]
        rc = cli(cli_argv)
        scores = (Path(tmp) / "metrics.md").read_text() if rc == 0 else ""
        means = json.loads((Path(tmp) / "metrics.json").read_text())["means"] if rc == 0 else {}
    total = time.perf_counter() - start
    if rc != 0:
        print(f"semprior eval exited with {rc}", file=sys.stderr)
        return rc
    share = spent["metrics"] / total
    result = {
        "methods": methods,
        "total_s": total,
        "metrics_s": spent["metrics"],
        "enhance_s": spent["enhance"],
        "metrics_share": share,
        "metrics_over_enhance": spent["metrics"] / spent["enhance"] if spent["enhance"] else None,
        "means": means,
    }
    md = [
        "# Where `semprior eval` spends its time",
        "",
        "| methods | total s | enhancement s | metrics s | metrics share |",
        "|---|---|---|---|---|",
        f"| {', '.join(methods)} | {total:.1f} | {spent['enhance']:.1f} | {spent['metrics']:.1f} | {share:.0%} |",
        "",
        "The scores of that run (`semprior eval`'s `metrics.md`):",
        "",
        scores.strip(),
    ]
    write_result(args.out, meta, result, md)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
