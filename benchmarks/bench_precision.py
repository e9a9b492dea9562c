"""Error of the fast inference paths against fp32 eager, on real images (LOL-v1 eval15 by default).

For every image of ``--images`` (a folder of low-light photos) the shipped DeepSPG (or ``--model``)
enhances it with ``precision="fp32"`` (the reference) and with each fast path; the table gives
the PSNR of each fast output against the fp32 output, as floats in ``[0, 1]`` and after the 8-bit
rounding a written PNG has (``png``: the fraction of pixels whose 8-bit value changes, too).
``semprior.engine.precision`` lets ``"auto"`` use a path only when its worst image here is at
least 40 dB.

Usage::

    python benchmarks/bench_precision.py --images /work/shared/data/lol_v1_eval15/low
    python benchmarks/bench_precision.py --images DIR --limit 2 --out /tmp/prec   # seconds: proves the harness
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _harness import RESULTS, provenance, write_result


def _psnr(a, b) -> float:
    import torch

    mse = float((a.double() - b.double()).pow(2).mean())
    return float("inf") if mse == 0 else 10 * float(torch.log10(torch.tensor(1.0 / mse)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True, help="folder of low-light images")
    p.add_argument("--model", default="deepspg", help="registry name with shipped weights (default deepspg)")
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--out", default=str(RESULTS / "precision_eval15"), help="output stem (.json and .md)")
    args = p.parse_args(argv)

    import torch

    from semprior.data.io import list_images, read_image
    from semprior.engine.precision import cpu_bf16_flags
    from semprior.engine.tiling import enhance_image
    from semprior.models.factory import create_model_for_inference

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    model = create_model_for_inference(args.model)
    files = list_images(Path(args.images))[: args.limit]
    rows = []
    for f in files:
        x = read_image(f).unsqueeze(0)
        t0 = time.perf_counter()
        ref = enhance_image(model, x, precision="fp32")
        t_ref = time.perf_counter() - t0
        row = {"image": f.name, "size": f"{x.shape[-1]}x{x.shape[-2]}", "fp32_s": t_ref}
        for path in ("bf16",):
            t0 = time.perf_counter()
            y = enhance_image(model, x, precision=path)
            row[f"{path}_s"] = time.perf_counter() - t0
            row[f"{path}_psnr_db"] = _psnr(y, ref)
            q, qr = (y * 255).round(), (ref * 255).round()
            row[f"{path}_png_psnr_db"] = _psnr(q / 255, qr / 255)
            row[f"{path}_png_changed"] = float((q != qr).float().mean())
            row[f"{path}_max_abs"] = float((y - ref).abs().max())
        rows.append(row)
        print(json.dumps(row), flush=True)
    worst = min(r["bf16_psnr_db"] for r in rows)
    summary = {
        "bf16_worst_psnr_db": worst,
        "bf16_mean_psnr_db": sum(r["bf16_psnr_db"] for r in rows) / len(rows),
        "bf16_worst_png_psnr_db": min(r["bf16_png_psnr_db"] for r in rows),
        "bf16_max_png_changed": max(r["bf16_png_changed"] for r in rows),
    }
    meta = provenance(__file__, argv, bf16_flags=list(cpu_bf16_flags()))
    lines = [
        "# bf16 against fp32 inference",
        "",
        f"Model {args.model} (shipped weights).",
        "",
        "| image | size | bf16 PSNR vs fp32 dB | after 8-bit rounding dB | 8-bit values changed | max abs diff |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['image']} | {r['size']} | {r['bf16_psnr_db']:.2f} | {r['bf16_png_psnr_db']:.2f} | "
        f"{100 * r['bf16_png_changed']:.2f} % | {r['bf16_max_abs']:.4f} |"
        for r in rows
    ]
    lines += [
        "",
        f"Worst image: {worst:.2f} dB (mean {summary['bf16_mean_psnr_db']:.2f} dB); the bound for `auto` is 40 dB.",
    ]
    write_result(args.out, meta, {"model": args.model, "summary": summary, "rows": rows}, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
