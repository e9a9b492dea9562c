"""What a training step costs on this machine, and so how many passes over LOL-v1 a CPU-hour buys.

Each case runs in a fresh process with ``--threads`` intra-op threads: it builds the model of the
training recipe (``semprior.engine.recipe``: the registry model, its own training loss, Adam, the
trainer's step with autocast when ``precision`` is ``bf16``), warms up, then times ``--steps``
optimisation steps on random batches of the given view (a ``P×P`` crop, or a whole ``W×H`` frame).
It reports the wall time and the **process CPU time** per step (the CPU time is what a shared
machine charges a run) and converts the CPU time into CPU-hours per pass over the 436 LOL-v1
training pairs (pixels seen / (436 × 600 × 400)). Data loading is timed apart (``--data``): one
training item of real LOL-v1 pairs, decoded from PNG every time or from the in-memory cache.

Usage::

    python benchmarks/bench_train_step.py                      # the full grid (about 10 minutes, idle machine)
    python benchmarks/bench_train_step.py --models deepspg --precisions bf16 --threads 1 --views crop64 \\
        --batch 2 --steps 1 --out /tmp/bench_step                # seconds: proves the harness
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _harness import RESULTS, provenance, write_result

LOL_PIXELS = 436 * 600 * 400  # one pass over the LOL-v1 training pairs (485 minus the 49 of the 48-pair scene split)


def parse_view(v: str) -> tuple[int, int]:
    """``crop128`` -> ``(128, 128)``; ``frame300x200`` -> ``(200, 300)`` (H, W)."""
    if v.startswith("crop"):
        p = int(v[4:])
        return p, p
    if v.startswith("frame"):
        w, h = (int(x) for x in v[5:].split("x"))
        return h, w
    raise argparse.ArgumentTypeError(f"view must be cropP or frameWxH, got {v!r}")


def run_case(case: dict) -> dict:
    import torch

    from semprior.engine.recipe import RunConfig, build_model
    from semprior.engine.trainer import TrainConfig, Trainer
    from semprior.models.registry import get_model_entry

    torch.set_num_threads(case["threads"])
    torch.manual_seed(0)
    h, w = parse_view(case["view"])
    run = RunConfig(model={"name": case["model"]}, prior="none", text="none")
    model = build_model(run)
    b = case["batch"]
    data = [{"low": torch.rand(3, h, w) * 0.2, "high": torch.rand(3, h, w)} for _ in range(b)]
    cfg = TrainConfig(
        steps=10_000,
        batch_size=b,
        precision=case["precision"],
        progress=False,
        log_file=False,
        loss_curve=False,
        ckpt_every=0,
    )
    trainer = Trainer(model, get_model_entry(case["model"]).training_loss, data, cfg, out_dir=None)
    batch = {"low": torch.stack([d["low"] for d in data]), "high": torch.stack([d["high"] for d in data])}
    for _ in range(2):
        trainer.train_step(batch)
    wall, cpu = [], []
    for _ in range(case["steps"]):
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train_step(batch)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    wall.sort()
    cpu.sort()
    med = len(wall) // 2
    cpu_step = cpu[med]
    pixels = b * h * w
    return {
        **case,
        "params": sum(p.numel() for p in model.parameters()),
        "wall_s": wall[med],
        "cpu_s": cpu_step,
        "cpu_h_per_pass": cpu_step * LOL_PIXELS / pixels / 3600,
    }


def data_case(root: str, cache: bool, items: int) -> dict:
    import torch

    from semprior.data import LOLv1

    torch.set_num_threads(1)
    ds = LOLv1(root, "train", patch_size=128, flip=True, cache=cache)
    for i in range(items):  # first touch decodes (and fills the cache)
        ds[i]
    c0 = time.process_time()
    for i in range(items):
        ds[i]
    return {"cache": cache, "items": items, "cpu_ms_per_item": (time.process_time() - c0) / items * 1000}


def table(rows: list[dict], data_rows: list[dict]) -> str:
    lines = [
        "| model | precision | threads | view | batch | wall s / step | CPU s / step | CPU h / pass |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['threads']} | {r['view']} | {r['batch']} | "
            f"{r['wall_s']:.3f} | {r['cpu_s']:.3f} | {r['cpu_h_per_pass']:.2f} |"
        )
    ratios = []
    for r in rows:
        if r["model"] != "deepspg":
            continue
        base = [
            q
            for q in rows
            if q["model"] == "retinexformer" and all(q[k] == r[k] for k in ("precision", "threads", "view", "batch"))
        ]
        fp32 = [
            q
            for q in rows
            if q["model"] == r["model"]
            and q["precision"] == "fp32"
            and all(q[k] == r[k] for k in ("threads", "view", "batch"))
        ]
        ratios.append(
            f"| {r['precision']} | {r['threads']} | {r['view']} | "
            + (f"{r['cpu_s'] / base[0]['cpu_s']:.2f}" if base else "–")
            + " | "
            + (f"{fp32[0]['cpu_s'] / r['cpu_s']:.2f}" if fp32 else "–")
            + " |"
        )
    if ratios:
        lines += [
            "",
            "| DeepSPG case | threads | view | CPU time / Retinexformer's | speed-up over DeepSPG fp32 |",
            "|---|---:|---|---:|---:|",
            *ratios,
        ]
    if data_rows:
        lines += ["", "| data (LOL-v1 item, 128² crop + flip) | CPU ms / item |", "|---|---:|"]
        lines += [
            f"| {'in-memory cache' if d['cache'] else 'PNG decode each time'} | {d['cpu_ms_per_item']:.1f} |"
            for d in data_rows
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["deepspg", "retinexformer"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--views", nargs="+", default=["crop128", "frame300x200"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--data", default=None, help="LOL-v1 root: also time data loading (decode vs cache)")
    p.add_argument("--out", default=str(RESULTS / "train_step"), help="results stem (.json and .md are written)")
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return 0
    rows = []
    for model in args.models:
        for view in args.views:
            parse_view(view)
            for precision in args.precisions:
                for threads in args.threads:
                    case = dict(
                        model=model, precision=precision, threads=threads, view=view, batch=args.batch, steps=args.steps
                    )
                    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
                    out = subprocess.run(
                        [sys.executable, __file__, "--case", json.dumps(case)],
                        env=env,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                    print(json.dumps(rows[-1]), flush=True)
    data_rows = [data_case(args.data, c, 16) for c in (False, True)] if args.data else []
    md = table(rows, data_rows)
    print(md)
    note = (
        f"Median of {args.steps} steps after 2 warm-up steps, each case in a fresh process. CPU h / pass: process CPU "
        "time per step x (436 x 600 x 400 pixels) / (batch x view pixels)."
    )
    write_result(
        args.out, provenance(__file__, argv), {"rows": rows, "data": data_rows}, ["# Training step cost", note, "", md]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
