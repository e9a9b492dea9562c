"""Where `semprior eval` spends its time: enhancement vs metrics (issue 13's target: metrics < half).

Runs ``semprior eval`` in this process on LOL-v1 eval15 with the five classical baselines (or
the methods given), wrapping the metrics that ``semprior.engine.evaluate`` computes (the
``ReferenceScorer`` of each pair: its construction and every ``scores`` call) and the
enhancement call (``_run``) with timers. Both parts share whatever
load the machine has, so the *share* is meaningful even on a busy CPU; absolute seconds are not.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_eval.py --lol ~/data/LOL
    python benchmarks/bench_eval.py --lol ~/data/LOL --model he --model lime --out benchmarks/results/eval_split

Writes ``OUT.json`` and ``OUT.md`` (default ``benchmarks/results/eval_split``) with the machine
description.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
RESULTS = Path(__file__).parent / "results"
BASELINES = ["identity", "gamma", "he", "clahe", "lime"]


def machine() -> dict:
    """The machine description of the other benchmarks, with the torch threads this run used."""
    from bench_attention import machine as described

    return {**described(), "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lol", required=True, help="LOL-v1 root (with eval15/low and eval15/high)")
    p.add_argument("--model", action="append", help="methods to evaluate (default: the five classical baselines)")
    p.add_argument("--out", default=str(RESULTS / "eval_split"), help="output stem (.json and .md)")
    args = p.parse_args(argv)
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
        argv = ["eval", "--lol", args.lol, "--no-progress", "--out", tmp]
        for m in methods:
            argv += ["--model", m]
        rc = cli(argv)
    total = time.perf_counter() - start
    if rc != 0:
        print(f"semprior eval exited with {rc}", file=sys.stderr)
        return rc
    share = spent["metrics"] / total
    result = {
        "machine": machine(),
        "methods": methods,
        "total_s": total,
        "metrics_s": spent["metrics"],
        "enhance_s": spent["enhance"],
        "metrics_share": share,
        "metrics_over_enhance": spent["metrics"] / spent["enhance"] if spent["enhance"] else None,
    }
    md = (
        f"Machine: {json.dumps(result['machine'])}\n\n"
        "| methods | total s | enhancement s | metrics s | metrics share |\n|---|---|---|---|---|\n"
        f"| {', '.join(methods)} | {total:.1f} | {spent['enhance']:.1f} | {spent['metrics']:.1f} | {share:.0%} |\n"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
