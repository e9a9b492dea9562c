"""Where `semprior eval` spends its time: what the metrics add to the wall time, and the enhancement.

Runs ``semprior eval`` in this process on LOL-v1 eval15 with the five classical baselines (or
the methods given) twice: as it is, and with the metrics replaced by a stub that returns zeros.
The metrics' share is the wall time they add, (full − without) / full: `semprior eval` scores
a pair in a worker thread while the next pair is enhanced, so the time spent computing them
(also reported, with the enhancement calls' time) is not all on the wall clock. Both runs share
whatever load the machine has; run them on a quiet machine and compare within one run.

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
    p.add_argument("--rounds", type=int, default=1, help="rounds of (full, no-metrics) runs; the best of each is kept")
    args = p.parse_args(argv)
    methods = args.model or BASELINES

    import semprior.engine.evaluate as ev
    from bench_precision import commit
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

    real_score = ev._score_outputs

    def no_metrics(item, outs, protocol):  # the same run without the metrics: what they add to the wall time
        return {m: dict.fromkeys(ev._KEYS, 0.0) for m in outs}

    ev._run = timed(ev._run, "enhance")
    runs = []
    for r in range(args.rounds):
        for variant in ("full", "no-metrics"):
            for k in spent:
                spent[k] = 0.0
            ev._score_outputs = timed(real_score, "metrics") if variant == "full" else no_metrics
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                cargv = ["eval", "--lol", args.lol, "--no-progress", "--out", tmp]
                for m in methods:
                    cargv += ["--model", m]
                rc = cli(cargv)
            if rc != 0:
                print(f"semprior eval exited with {rc}", file=sys.stderr)
                return rc
            runs.append({"round": r, "variant": variant, "total_s": time.perf_counter() - start, **{f"{k}_s": v for k, v in spent.items()}})
            print(runs[-1], flush=True)
    full = min((x for x in runs if x["variant"] == "full"), key=lambda x: x["total_s"])
    bare = min((x for x in runs if x["variant"] == "no-metrics"), key=lambda x: x["total_s"])
    added = max(full["total_s"] - bare["total_s"], 0.0)
    share = added / full["total_s"]
    result = {"commit": commit(), "command": " ".join(["python benchmarks/bench_eval.py", *(argv or sys.argv[1:])]),
              "machine": machine(), "loadavg_at_end": __import__("os").getloadavg(), "methods": methods, "runs": runs,
              "total_s": full["total_s"], "total_without_metrics_s": bare["total_s"], "metrics_added_s": added,
              "metrics_share": share, "metrics_worker_s": full["metrics_s"], "enhance_s": full["enhance_s"]}
    md = (f"Commit {result['commit']}; command `{result['command']}`.\n\nMachine: {json.dumps(result['machine'])}; "
          f"load at end {[round(v, 2) for v in result['loadavg_at_end']]}\n\n"
          "| methods | total s | same run without metrics s | metrics add | metrics share | metrics computed (worker) s | "
          "enhancement s |\n|---|---|---|---|---|---|---|\n"
          f"| {', '.join(methods)} | {full['total_s']:.1f} | {bare['total_s']:.1f} | {added:.1f} s | {share:.0%} | "
          f"{full['metrics_s']:.1f} | {full['enhance_s']:.1f} |\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
