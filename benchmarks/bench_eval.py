"""Where `semprior eval` spends its time, and the scores of that run.

Runs ``semprior eval`` in this process on LOL-v1 eval15 with the five classical baselines (or
the methods given) twice per round: as it is, and with the metrics replaced by a stub that
returns zeros. The metrics' share is the wall time they add, (full − without) / full:
`semprior eval` scores a pair in a worker thread while the next pair is enhanced, so the time
spent computing them (also reported, with the enhancement calls' time) is not all on the wall
clock. Both runs share whatever load the machine has; run them on a quiet machine and compare
within one run. The scores are those of the full run (`semprior eval`'s `metrics.md`).

With ``--variant NAME=CHECKOUT`` (twice or more) each round runs the measurement once per checkout,
in a fresh process with ``PYTHONPATH`` set to it, alternating, and the table has one row per
checkout (the best round of each).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_eval.py --lol ~/data/LOL
    python benchmarks/bench_eval.py --lol ~/data/LOL --model he --model lime --rounds 2 --out /tmp/eval_he_lime
    OMP_NUM_THREADS=1 python benchmarks/bench_eval.py --lol ~/data/LOL --variant before=/path/to/old --variant now=. \\
        --rounds 3 --out /tmp/eval_ab

Writes ``OUT.json`` and ``OUT.md`` (default ``benchmarks/results/classical_eval15``): the time split
and the scores of the run, with the commit, command and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
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
    p.add_argument("--rounds", type=int, default=1, help="rounds of (full, no-metrics) runs; the best of each is kept")
    p.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=None,
        help="scoring worker threads to time (one full run each per round; default: semprior's own default)",
    )
    p.add_argument("--variant", action="append", help="NAME=CHECKOUT: compare checkouts (see above)")
    args = p.parse_args(argv)
    meta = provenance(__file__, argv, threads=torch.get_num_threads())
    methods = args.model or BASELINES
    if args.variant:
        return compare_checkouts(args, meta, methods)

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

    real_score = ev._score_outputs

    def no_metrics(item, outs, protocol, extra_metrics=None):  # the same run without the metrics
        return {m: dict.fromkeys(ev._KEYS, 0.0) for m in outs}

    ev._run = timed(ev._run, "enhance")
    workers = args.workers or [ev.SCORING_WORKERS]
    variants = [(f"full-w{w}", w) for w in workers] + [("no-metrics", workers[0])]
    runs, scores, means = [], "", {}
    for r in range(args.rounds):
        for variant, w in variants:
            for k in spent:
                spent[k] = 0.0
            ev.SCORING_WORKERS = w
            full_run = variant != "no-metrics"
            ev._score_outputs = timed(real_score, "metrics") if full_run else no_metrics
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                cli_argv = ["eval", "--lol", args.lol, "--no-progress", "--out", tmp]
                for m in methods:
                    cli_argv += ["--model", m]
                rc = cli(cli_argv)
                if rc == 0 and full_run:
                    scores = (Path(tmp) / "metrics.md").read_text()
                    means = json.loads((Path(tmp) / "metrics.json").read_text())["means"]
            if rc != 0:
                print(f"semprior eval exited with {rc}", file=sys.stderr)
                return rc
            total = time.perf_counter() - start
            times = {f"{k}_s": v for k, v in spent.items()}
            runs.append({"round": r, "variant": variant, "workers": w, "total_s": total, **times})
            print(runs[-1], flush=True)
    bare = min((x for x in runs if x["variant"] == "no-metrics"), key=lambda x: x["total_s"])
    rows = []
    for variant, w in variants[:-1]:
        full = min((x for x in runs if x["variant"] == variant), key=lambda x: x["total_s"])
        added = max(full["total_s"] - bare["total_s"], 0.0)
        rows.append(
            {
                "scoring_workers": w,
                "total_s": full["total_s"],
                "total_without_metrics_s": bare["total_s"],
                "metrics_added_s": added,
                "metrics_share": added / full["total_s"],
                "metrics_worker_s": full["metrics_s"],
                "enhance_s": full["enhance_s"],
            }
        )
    result = {"methods": methods, "loadavg_at_end": os.getloadavg(), "runs": runs, **rows[0], "rows": rows}
    result["means"] = means
    md = [
        "# Where `semprior eval` spends its time",
        "",
        "| methods | scoring workers | total s | same run without metrics s | metrics add | metrics share | "
        "metrics computed (workers) s | enhancement s |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {', '.join(methods)} | {x['scoring_workers']} | {x['total_s']:.1f} | "
            f"{x['total_without_metrics_s']:.1f} | {x['metrics_added_s']:.1f} s | {x['metrics_share']:.0%} | "
            f"{x['metrics_worker_s']:.1f} | {x['enhance_s']:.1f} |"
            for x in rows
        ),
        "",
        "The scores of that run (`semprior eval`'s `metrics.md`):",
        "",
        scores.strip(),
    ]
    write_result(args.out, meta, result, md)
    print("\n".join(md))
    return 0


def compare_checkouts(args: argparse.Namespace, meta: dict, methods: list[str]) -> int:
    """One fresh process per checkout and round (alternating); one row per checkout, its best round."""
    variants = [(n, str(Path(c).resolve())) for n, _, c in (v.partition("=") for v in args.variant)]
    runs: dict[str, list[dict]] = {n: [] for n, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, checkout in variants:
                stem = Path(tmp) / f"{name}_{r}"
                cmd = [sys.executable, __file__, "--lol", args.lol, "--rounds", "1", "--out", str(stem)]
                cmd += [a for m in methods for a in ("--model", m)]
                cmd += ["--workers", *map(str, args.workers)] if args.workers else []
                env = dict(os.environ, PYTHONPATH=checkout)
                subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
                runs[name].append(json.loads(stem.with_suffix(".json").read_text()))
                print(name, {k: runs[name][-1][k] for k in ("total_s", "total_without_metrics_s", "metrics_share")})
    rows = []
    for name, checkout in variants:
        best = min(runs[name], key=lambda x: x["total_s"])
        rows.append({"variant": name, "checkout": checkout, **{k: best[k] for k in best if k.endswith("_s")}})
        rows[-1]["metrics_share"] = best["metrics_share"]
    md = [
        "# Where `semprior eval` spends its time, per checkout",
        "",
        f"Methods: {', '.join(methods)}; best of {args.rounds} alternating rounds per checkout (a fresh process each).",
        "",
        "| variant | total s | same run without metrics s | metrics add | metrics share | "
        "metrics computed (workers) s | enhancement s |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {x['variant']} | {x['total_s']:.2f} | {x['total_without_metrics_s']:.2f} | "
            f"{x['metrics_added_s']:.2f} s | {x['metrics_share']:.0%} | {x['metrics_worker_s']:.2f} | "
            f"{x['enhance_s']:.2f} |"
            for x in rows
        ),
    ]
    for x in rows:
        git = ["git", "-C", x["checkout"], "rev-parse", "--short", "HEAD"]
        x["commit"] = subprocess.run(git, capture_output=True, text=True).stdout.strip() or "unknown"
    md[2] += " Commits: " + ", ".join(f"{x['variant']} {x['commit']}" for x in rows) + "."
    result = {"methods": methods, "variants": dict(variants), "loadavg_at_end": os.getloadavg(), "rows": rows}
    write_result(args.out, meta, {**result, "runs": runs}, md)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
