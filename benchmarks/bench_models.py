"""Whole-model benchmark: DeepSPG, DeepSPG-large and Retinexformer side by side, each case in a fresh process.

Cases:

- ``fwd``: whole-image enhancement of one ``H×W`` image under ``torch.no_grad()`` (DeepSPG then
  runs its exact banded path, see docs/performance.md); random weights, the weights do not
  change the cost.
- ``train``: one optimisation step (forward, the model's loss, backward, Adam) on a batch of
  ``--train-batch`` patches of ``--train-patch``² pixels (the size column shows the patch).

For every case a new Python process builds the model and the input, runs a small warm-up,
resets the resident-set high-water mark (``/proc/self/clear_refs``), runs the case once for the
**peak extra memory** (``VmHWM`` after minus ``VmRSS`` before: everything the case allocated,
output included) and then ``--repeats`` more times for the **time** (best run). A case that would
need more than ``--mem-limit-gb`` fails its allocation (``RLIMIT_DATA``) and is reported as not
fitting instead of swapping the machine. DeepSPG runs without a prior (the paper's baseline
row: the prior's own cost depends on the prior chosen, not on DeepSPG) and without the CLIP term.

Ratios (DeepSPG / Retinexformer, time and memory) come from the rows of the same run.

Usage::

    python benchmarks/bench_models.py                                 # full grid (an idle machine!)
    python benchmarks/bench_models.py --sizes 64x48 --modes fwd train --train-patch 32 --train-batch 2 \\
        --repeats 1 --out /tmp/bench_tiny                             # seconds: proves the harness
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import time
from pathlib import Path

from _harness import RESULTS, parse_size, provenance, reset_hwm, run_in_child, status_bytes, write_result

MODELS = ("deepspg-shipped", "deepspg", "deepspg-paper", "deepspg-large", "retinexformer")
#: inference paths (``semprior.engine.precision``): ``fp32`` eager (the reference), ``bf16`` autocast,
#: ``auto`` (what ``semprior enhance`` runs on this machine: resolved per model in the child)
PATHS = ("fp32", "bf16", "auto")
SIZES = ("600x400", "1920x1080", "3840x2160", "7680x4320")


def build(name: str):
    """The model and its training loss ``(model, out, target) -> scalar``."""
    import torch

    if name == "deepspg-shipped":
        from semprior.models.factory import create_model_for_inference

        model = create_model_for_inference("deepspg")
        return model, lambda m, out, gt: m.criterion(out, gt)[0]
    if name in ("deepspg", "deepspg-paper", "deepspg-large"):
        from semprior.models.deepspg import DeepSPG, DeepSPGConfig

        # deepspg-paper: the model of configs/deepspg_lolv1.yaml (ffn_expansion 2.0, the paper's 0.55 M)
        extra = {"ffn_expansion": 2.0} if name == "deepspg-paper" else {}
        model = DeepSPG(
            DeepSPGConfig.preset(name.replace("-paper", ""), text_prior=False, **extra).ablation("baseline")
        )
        return model, lambda m, out, gt: m.criterion(out, gt)[0]
    if name == "retinexformer":
        from semprior.models.retinexformer import Retinexformer

        return Retinexformer(), lambda m, out, gt: torch.nn.functional.l1_loss(out, gt)
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def run_case(case: dict) -> dict:
    """Runs in the child process."""
    import gc

    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    model, loss_fn = build(case["model"])
    params = sum(p.numel() for p in model.parameters())
    h, w = parse_size(case["size"])
    from semprior.engine.precision import autocast_for, resolve_precision

    dev = torch.device(case.get("device", "cpu"))
    model.to(dev)
    cuda = dev.type == "cuda"
    # train steps: fp32, or bf16 autocast when the case asks for it (the GPU check times both)
    path = resolve_precision(case.get("path", "fp32"), model, dev)
    if case["mode"] == "fwd":
        model.eval()

        def make(hh: int, ww: int):
            x = torch.rand(1, 3, hh, ww, device=dev)

            def op():
                with torch.no_grad(), autocast_for(path, dev):
                    return model(x)

            return op
    else:
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def make(hh: int, ww: int):
            low, gt = (torch.rand(case["batch"], 3, hh, ww, device=dev) for _ in range(2))

            def op():
                opt.zero_grad(set_to_none=True)
                with autocast_for(path, dev):
                    loss = loss_fn(model, model(low), gt)
                loss.backward()
                opt.step()
                return loss.detach()

            return op

    def timed(fn):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = fn()
        if cuda:
            torch.cuda.synchronize()
        return res, time.perf_counter() - t0

    make(32, 48)()  # first-call costs (lazy imports, thread pools, Adam state) stay out of the numbers
    op = make(h, w)
    gc.collect()
    ok = reset_hwm()
    before = status_bytes("VmRSS")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    out, t = timed(op)
    times = [t]
    peak = (torch.cuda.max_memory_allocated() - base) if cuda else status_bytes("VmHWM") - before
    del out
    for _ in range(case["repeats"]):
        times.append(timed(op)[1])
    row = dict(case, params=params, time_s=min(times), times_s=times, peak_extra_bytes=peak, hwm_reset=ok)
    row["resolved_path"] = path
    if case.get("flops"):  # conv/matmul FLOPs of the timed op (2 per multiply-add), counted on one more run
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            op()
        row["flops"] = counter.get_total_flops()
    return row


def gemm_rates(threads: int, n: int = 2048, repeats: int = 5, device: str = "cpu") -> dict:
    """The machine's matmul rate (FLOP/s) for ``n x n`` fp32 and bf16 on ``threads`` threads (best of ``repeats``)."""
    import torch

    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
        a @ b
        best = float("inf")
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            a @ b
            sync()
            best = min(best, time.perf_counter() - t0)
        out[name] = 2 * n**3 / best
    return out


def ratios(rows: list[dict]) -> list[dict]:
    """DeepSPG(-large) / Retinexformer time and memory per (size, mode, path), from the same run."""
    ref = {(r["size"], r["mode"], r.get("path")): r for r in rows if r["model"] == "retinexformer" and "error" not in r}
    out = []
    for r in rows:
        base = ref.get((r["size"], r["mode"], r.get("path")))
        if r["model"] == "retinexformer" or "error" in r or base is None:
            continue
        out.append(
            dict(
                model=r["model"],
                size=r["size"],
                mode=r["mode"],
                path=r.get("path"),
                time_ratio=r["time_s"] / base["time_s"],
                mem_ratio=r["peak_extra_bytes"] / max(base["peak_extra_bytes"], 1),
            )
        )
    return out


def table(rows: list[dict], gemm: dict | None = None) -> str:
    """Rows, then (with FLOPs and GEMM rates) time / FLOP-time, then the ratios to Retinexformer."""
    lines = [
        "| model | mode | path (ran) | size | params | time s (best) | GFLOP | time / fp32 FLOP-time | peak extra GB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        size = r["size"] + (f" × {r['batch']}" if r["mode"] == "train" else "")
        path = f"{r.get('path', 'fp32')} ({r['resolved_path']})" if r.get("resolved_path") else r.get("path", "fp32")
        if "error" in r:
            lines.append(f"| {r['model']} | {r['mode']} | {path} | {size} | | {r['error']} | | | |")
            continue
        flops = r.get("flops")
        gf = f"{flops / 1e9:.1f}" if flops else ""
        ratio = f"{r['time_s'] / (flops / gemm['fp32']):.2f}x" if flops and gemm else ""
        lines.append(
            f"| {r['model']} | {r['mode']} | {path} | {size} | {r['params']:,} | {r['time_s']:.3f} | {gf} | "
            f"{ratio} | {r['peak_extra_bytes'] / 1e9:.3f} |"
        )
    if gemm:
        lines += [
            "",
            f"GEMM rate (2048² matmul, {gemm['threads']} threads): fp32 {gemm['fp32'] / 1e9:.0f} GFLOP/s, "
            f"bf16 {gemm['bf16'] / 1e9:.0f} GFLOP/s. FLOP-time = GFLOP / fp32 rate (FLOPs: "
            "`torch.utils.flop_counter`, conv and matmul only, 2 per multiply-add).",
        ]
    rat = ratios(rows)
    if rat:
        lines += [
            "",
            "| model / retinexformer | mode | path | size | time ratio | memory ratio |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['model']} | {r['mode']} | {r['path'] or 'fp32'} | {r['size']} | {r['time_ratio']:.2f} | "
            f"{r['mem_ratio']:.2f} |"
            for r in rat
        ]
    return "\n".join(lines)


def _cpu_details() -> dict:
    """lscpu's model name and the CPU flags that decide the fast paths (bf16, AMX, AVX-512)."""
    from semprior.engine.precision import cpu_bf16_flags

    info: dict = {"bf16_flags": list(cpu_bf16_flags())}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        info["lscpu_model"] = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), None
        )
        flags = next((ln.split(":", 1)[1].split() for ln in out.splitlines() if ln.startswith("Flags")), [])
        info["flags_of_interest"] = sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma")))
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _default_limit_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return round(int(line.split()[1]) / 2**20 * 0.85, 1)
    return 16.0


def _limit_memory(gb: float) -> None:
    limit = int(gb * 2**30)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--sizes", nargs="+", default=list(SIZES), help="forward sizes, WIDTHxHEIGHT")
    p.add_argument("--modes", nargs="+", default=["fwd", "train"], choices=["fwd", "train"])
    p.add_argument(
        "--paths",
        nargs="+",
        default=["fp32"],
        choices=PATHS,
        help="inference paths for fwd cases (default fp32 eager; auto = what `semprior enhance` runs here)",
    )
    p.add_argument(
        "--train-paths",
        nargs="+",
        default=["fp32"],
        choices=("fp32", "bf16"),
        help="precision of the train cases (bf16: autocast)",
    )
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda: where the models run")
    p.add_argument(
        "--flops",
        action="store_true",
        help="count each case's FLOPs (one more run) and measure the GEMM rate: time / FLOP-time",
    )
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--train-patch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=2, help="timed runs after the memory run (best is reported)")
    p.add_argument("--mem-limit-gb", type=float, default=None, help="per case; default 85%% of MemAvailable")
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds per case")
    p.add_argument("--out", default=str(RESULTS / "models"), help="output stem (.json and .md are written)")
    args = p.parse_args(argv)
    if args.case:
        case = json.loads(args.case)
        _limit_memory(case["mem_limit_gb"])
        print(json.dumps(run_case(case)))
        return 0
    for s in args.sizes:
        parse_size(s)
    limit = args.mem_limit_gb or _default_limit_gb()
    cases = []
    for mode in args.modes:
        sizes = args.sizes if mode == "fwd" else [f"{args.train_patch}x{args.train_patch}"]
        for size in sizes:
            for path in args.paths if mode == "fwd" else args.train_paths:
                for model in args.models:
                    cases.append(
                        dict(
                            model=model,
                            mode=mode,
                            size=size,
                            batch=args.train_batch if mode == "train" else 1,
                            repeats=args.repeats,
                            mem_limit_gb=limit,
                            path=path,
                            flops=args.flops,
                            device=args.device,
                        )
                    )
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    gemm = dict(gemm_rates(threads, device=args.device), threads=threads, device=args.device) if args.flops else None
    rows = []
    for case in cases:
        rows.append(run_in_child(__file__, case, args.timeout, oom_as=f"does not fit in {limit} GB"))
        r = rows[-1]
        print(
            r["model"],
            r["mode"],
            r.get("path"),
            r["size"],
            r.get("time_s", r.get("error")),
            r.get("peak_extra_bytes"),
            flush=True,
        )
    if gemm:  # measured again after the cases: the lower of the two (a busy machine shows here)
        again = gemm_rates(threads, device=args.device)
        gemm.update({k: min(gemm[k], again[k]) for k in again})
    md = table(rows, gemm)
    print(md)
    meta = provenance(__file__, argv, **_cpu_details())
    data = {"loadavg_at_end": os.getloadavg(), "gemm": gemm, "rows": rows, "ratios": ratios(rows)}
    write_result(args.out, meta, data, ["# Models: time and peak extra memory", md])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
