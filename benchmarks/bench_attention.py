"""Channel-attention benchmark: reference vs streaming (vs Triton on CUDA), each case in a fresh process.

For every case a new Python process builds the inputs, resets the kernel's resident-set high-water
mark (``/proc/self/clear_refs``), runs the operation and reports time and *peak extra memory*
(``VmHWM`` after minus ``VmRSS`` before, i.e. everything the operation allocated including its
output). On CUDA, Triton cases are timed with ``triton.testing.do_bench`` and memory with
``torch.cuda.max_memory_allocated``.

Cases: ``attn`` = ``channel_attention`` from given q, k, v (C=48 split over heads);
``sem`` = a whole :class:`semprior.attention.SEM` block (dim 48) from its inputs to its output.

Usage::

    python benchmarks/bench_attention.py                       # default grid, writes results
    python benchmarks/bench_attention.py --sizes 256x256 1920x1080 --ops attn --modes fwd
"""

from __future__ import annotations

import argparse
import json
import os
import time

from _harness import RESULTS, provenance, reset_hwm, run_in_child, status_bytes, write_result

SIZES = {"256x256": (256, 256), "600x400": (400, 600), "1920x1080": (1080, 1920), "3840x2160": (2160, 3840)}


def run_case(case: dict) -> dict:
    """Runs in the child process."""
    import torch

    from semprior.attention import SEM
    from semprior.kernels import channel_attention

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    c, heads, backend, mode = case["channels"], case["heads"], case["backend"], case["mode"]
    # BENCH_DEVICE=cuda runs the plain-PyTorch backends on the GPU too (benchmarks/gpu_check.sh)
    device = "cuda" if backend == "triton" or os.environ.get("BENCH_DEVICE") == "cuda" else "cpu"
    grad = mode == "fwdbwd"

    def make(h: int, w: int):
        n = h * w
        if case["op"] == "attn":
            q, k, v = (torch.randn(1, heads, c // heads, n, device=device, requires_grad=grad) for _ in range(3))
            tau = torch.ones(heads, 1, 1, device=device, requires_grad=grad)

            def op():
                out = channel_attention(q, k, v, tau, backend=backend)
                if grad:
                    out.backward(torch.ones_like(out))
                return out

            return op, 3 * q.numel() * 4
        block = SEM(c, 16, heads=heads, backend=backend).to(device)
        x = torch.randn(1, c, h, w, device=device, requires_grad=grad)
        sem = torch.randn(1, 16, max(h // 4, 1), max(w // 4, 1), device=device)

        def op():
            if grad:
                out = block(x, sem)
                out.backward(torch.ones_like(out))
                return out
            with torch.no_grad():
                return block(x, sem)

        return op, x.numel() * 4 + sem.numel() * 4

    warm, _ = make(32, 48)  # first-call costs (lazy imports, thread pools) stay out of the numbers
    warm()
    del warm
    h, w = SIZES[case["size"]]
    n = h * w
    op, input_bytes = make(h, w)
    output_bytes = 1 * heads * (c // heads) * n * 4
    result = dict(case, n=n, input_bytes=input_bytes, output_bytes=output_bytes)
    if device == "cuda":
        import triton

        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        op()
        result["peak_extra_bytes"] = torch.cuda.max_memory_allocated() - base
        result["time_s"] = triton.testing.do_bench(op) / 1e3
        return result
    import gc

    gc.collect()
    ok = reset_hwm()
    before = status_bytes("VmRSS")
    t0 = time.perf_counter()
    out = op()
    result["time_s"] = time.perf_counter() - t0
    result["peak_extra_bytes"] = status_bytes("VmHWM") - before
    result["hwm_reset"] = ok
    del out
    return result


def table(rows: list[dict]) -> str:
    lines = [
        "| op | size | heads | mode | backend | time s | peak extra GB | extra / output "
        "| time ratio ref/this | mem ratio ref/this |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ref = {
        (r["op"], r["size"], r["heads"], r["mode"]): r for r in rows if r["backend"] == "reference" and "error" not in r
    }
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['op']} | {r['size']} | {r['heads']} | {r['mode']} | {r['backend']} | {r['error']} | | | | |"
            )
            continue
        base = ref.get((r["op"], r["size"], r["heads"], r["mode"]))
        tr = f"{base['time_s'] / r['time_s']:.2f}" if base else "–"
        mr = f"{base['peak_extra_bytes'] / max(r['peak_extra_bytes'], 1):.2f}" if base else "–"
        lines.append(
            f"| {r['op']} | {r['size']} | {r['heads']} | {r['mode']} | {r['backend']} | {r['time_s']:.3f} | "
            f"{r['peak_extra_bytes'] / 1e9:.3f} | {r['peak_extra_bytes'] / r['output_bytes']:.2f} | {tr} | {mr} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--heads", nargs="+", type=int, default=[1, 4])
    p.add_argument("--modes", nargs="+", default=["fwd", "fwdbwd"], choices=["fwd", "fwdbwd"])
    p.add_argument("--ops", nargs="+", default=["attn", "sem"], choices=["attn", "sem"])
    p.add_argument("--backends", nargs="+", default=None, help="default: reference streaming (+ triton with CUDA)")
    p.add_argument("--channels", type=int, default=48)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    p.add_argument("--skip", nargs="*", default=[], help="skip cases whose key op/size/heads/mode/backend is listed")
    p.add_argument("--out", default=str(RESULTS / "attention"), help="output stem (.json and .md are written)")
    args = p.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return 0
    backends = args.backends
    if backends is None:
        import torch

        backends = ["reference", "streaming"] + (["triton"] if torch.cuda.is_available() else [])
    rows = []
    for op in args.ops:
        for size in args.sizes:
            for heads in args.heads:
                for mode in args.modes:
                    for backend in backends:
                        case = dict(op=op, size=size, heads=heads, mode=mode, backend=backend, channels=args.channels)
                        key = f"{op}/{size}/{heads}/{mode}/{backend}"
                        if key in args.skip:
                            rows.append(dict(case, error="skipped (does not fit in this machine's memory)"))
                            continue
                        rows.append(run_in_child(__file__, case, args.timeout))
                        print(
                            key,
                            rows[-1].get("time_s", rows[-1].get("error")),
                            rows[-1].get("peak_extra_bytes"),
                            flush=True,
                        )
    md = table(rows)
    print(md)
    write_result(
        args.out, provenance(__file__, argv), {"rows": rows}, ["# Channel attention: time and peak extra memory", md]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
