"""Where a model's inference time goes: ``torch.profiler`` self time by op, on the path ``semprior enhance`` runs.

Usage::

    python benchmarks/profile_forward.py --model deepspg --size 600x400 --precision auto \\
        --out benchmarks/results/profile_deepspg_600x400
"""

from __future__ import annotations

import argparse
import os

from _harness import RESULTS, provenance, write_result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="deepspg", help="registry name with shipped weights")
    p.add_argument("--size", default="600x400", help="WIDTHxHEIGHT")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.add_argument("--rows", type=int, default=15)
    p.add_argument("--out", default=str(RESULTS / "profile_deepspg_600x400"))
    args = p.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    from semprior.engine.precision import autocast_for, resolve_precision
    from semprior.models.factory import create_model_for_inference

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    w, h = (int(v) for v in args.size.split("x"))
    model = create_model_for_inference(args.model).eval()
    cpu = torch.device("cpu")
    path = resolve_precision(args.precision, model, cpu)
    x = torch.rand(1, 3, h, w)
    with torch.no_grad(), autocast_for(path, cpu):
        model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(x)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [
        {"op": e.key, "self_s": e.self_cpu_time_total / 1e6, "share": e.self_cpu_time_total / total, "calls": e.count}
        for e in events[: args.rows]
    ]
    meta = provenance(__file__, argv)
    lines = [
        f"# Where {args.model}'s inference time goes ({args.size}, path {path})",
        "",
        "| op | self time s | share | calls |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{r['op']}` | {r['self_s']:.3f} | {100 * r['share']:.1f} % | {r['calls']} |" for r in rows]
    write_result(args.out, meta, {"path": path, "total_self_s": total / 1e6, "rows": rows}, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
