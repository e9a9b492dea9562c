"""Other runtimes for inference on the CPU: torch.compile (inductor) and ONNX Runtime, against eager.

One process per model, all paths timed interleaved in it (best of ``--repeats``), on a real image
of ``--size`` when ``--images`` is given (else a dark random one):

- ``eager``: fp32 eager, the exact reference;
- ``auto``: what ``semprior enhance`` runs here (``precision="auto"``: bf16 autocast for the
  shipped DeepSPG on a CPU with native bf16, fp32 otherwise);
- ``compile``: ``torch.compile(model)`` (inductor, fp32); the first call's time is the compile time
  and is reported apart; a compile that does not finish within ``--compile-timeout`` is recorded
  as such (it runs in a child process that is stopped);
- ``ort``: the model exported with ``torch.onnx.export`` (TorchScript tracer, one fixed size) and
  run by ONNX Runtime's CPU provider (``pip install onnxruntime onnx``); export time apart.

Error: PSNR of each path's output against fp32 eager on the first ``--error-images`` images of
``--images`` (the LOL-v1 eval15 low images are 600x400). Writes ``OUT.json`` and ``OUT.md`` with the
commit, the command, the machine and the load (``_harness.write_result``).

Usage::

    BENCH_THREADS=2 python benchmarks/bench_runtimes.py --model deepspg-shipped --paths eager auto ort \\
        --images ~/data/LOL/eval15/low --out benchmarks/results/runtimes_deepspg_600x400
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

from _harness import RESULTS, parse_size, provenance, write_result
from bench_models import build  # the models table of the model benchmarks

PATHS = ("eager", "auto", "compile", "ort")


def _psnr(a, b) -> float:
    import torch

    mse = (a.double() - b.double()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def _compile_child(name: str, size: str, images: list[str], repeats: int, threads: int, q) -> None:
    """torch.compile in a child process (a compile that never ends can be stopped)."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(name)[0].eval()
    inputs = _inputs(size, images)
    compiled = torch.compile(model)
    with torch.no_grad():
        t0 = time.perf_counter()
        compiled(inputs[0])
        compile_s = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            compiled(inputs[0])
            times.append(time.perf_counter() - t0)
        outs = [compiled(x) for x in inputs]
    q.put({"compile_s": compile_s, "times_s": times, "outs": outs})


def _inputs(size: str, images: list[str]):
    import torch

    h, w = parse_size(size)
    if not images:
        return [torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 0.3]
    from semprior.data.io import read_image

    out = []
    for f in images:
        x = read_image(f).unsqueeze(0)
        if x.shape[-2:] != (h, w):
            x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", antialias=True).clamp(0, 1)
        out.append(x)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a bench_models.py model name (deepspg-shipped, retinexformer, ...)")
    p.add_argument("--size", default="600x400")
    p.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    p.add_argument("--images", help="folder of images (the first is timed, the first --error-images give the error)")
    p.add_argument("--error-images", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile-timeout", type=float, default=150.0)
    p.add_argument("--out", default=str(RESULTS / "runtimes"))
    args = p.parse_args(argv)
    import torch

    from semprior.engine.precision import autocast_for, resolve_precision

    threads = int(os.environ.get("BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    files = sorted(str(f) for f in Path(args.images).iterdir())[: args.error_images] if args.images else []
    inputs = _inputs(args.size, files)
    model = build(args.model)[0].eval()
    dev = torch.device("cpu")
    auto = resolve_precision("auto", model, dev)
    rows: dict[str, dict] = {}

    def eager_run(x, mode="fp32"):
        with torch.no_grad(), autocast_for(mode, dev):
            return model(x).float()

    runners = {"eager": eager_run}
    if "auto" in args.paths:
        runners["auto"] = lambda x: eager_run(x, auto)
        rows["auto"] = {"resolved": auto}
    if "ort" in args.paths:
        import onnxruntime as ort

        tmp = Path(tempfile.mkdtemp(prefix="bench_ort_")) / "model.onnx"
        t0 = time.perf_counter()
        with torch.no_grad():
            torch.onnx.export(
                model, (inputs[0],), str(tmp), dynamo=False, opset_version=17, input_names=["x"], output_names=["y"]
            )
        export_s = time.perf_counter() - t0
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        t0 = time.perf_counter()
        sess = ort.InferenceSession(str(tmp), so, providers=["CPUExecutionProvider"])
        sess.run(None, {"x": inputs[0].numpy()})
        rows["ort"] = {
            "export_s": export_s,
            "session_and_first_run_s": time.perf_counter() - t0,
            "onnxruntime": ort.__version__,
        }
        runners["ort"] = lambda x: torch.from_numpy(sess.run(None, {"x": x.numpy()})[0])
    for name in runners:
        runners[name](inputs[0])  # warm-up
        rows.setdefault(name, {})["times_s"] = []
    for _ in range(args.repeats):  # interleaved: every path sees the same load
        for name, fn in runners.items():
            t0 = time.perf_counter()
            fn(inputs[0])
            rows[name]["times_s"].append(time.perf_counter() - t0)
    refs = [eager_run(x) for x in inputs]
    for name, fn in runners.items():
        if name != "eager":
            rows[name]["psnr_vs_fp32_db"] = [_psnr(fn(x), r) for x, r in zip(inputs, refs)]
    if "compile" in args.paths:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        proc = ctx.Process(target=_compile_child, args=(args.model, args.size, files, args.repeats, threads, q))
        t0 = time.perf_counter()
        proc.start()
        try:
            res = q.get(timeout=args.compile_timeout)
        except Exception:  # noqa: BLE001 - queue.Empty: the compile did not finish
            res = None
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
        if res is None:
            rows["compile"] = {"error": f"torch.compile did not finish within {args.compile_timeout:.0f} s"}
        else:
            rows["compile"] = {
                "compile_s": res["compile_s"],
                "times_s": res["times_s"],
                "psnr_vs_fp32_db": [_psnr(o, r) for o, r in zip(res["outs"], refs)],
                "note": "timed in its own process after the others",
            }
        rows["compile"]["wall_s"] = time.perf_counter() - t0
    base = min(rows["eager"]["times_s"])
    lines = [
        "| path | best s | speed-up vs fp32 eager | worst PSNR vs fp32 (dB) | one-off cost |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | | | |")
            continue
        best = min(r["times_s"])
        r["best_s"] = best
        worst = min(r.get("psnr_vs_fp32_db", [float("inf")]))
        label = f"{name} ({r['resolved']})" if "resolved" in r else name
        if "export_s" in r:
            once = f"export {r['export_s']:.1f} s + session {r['session_and_first_run_s']:.1f} s"
        else:
            once = f"compile {r['compile_s']:.1f} s" if "compile_s" in r else ""
        worst_cell = "reference" if name == "eager" else f"{worst:.1f}"
        lines.append(f"| {label} | {best:.3f} | {base / best:.2f}x | {worst_cell} | {once} |")
    meta = provenance(__file__, argv, threads=threads)
    load_end = os.getloadavg()
    error_images = [Path(f).name for f in files]
    data = {
        "loadavg_at_end": load_end,
        "model": args.model,
        "size": args.size,
        "error_images": error_images,
        "rows": rows,
    }
    md = [
        f"# Other runtimes: {args.model} at {args.size}",
        f"Error on {', '.join(error_images) or 'a random image'}; load at end {[round(v, 2) for v in load_end]}.",
        "",
        *lines,
    ]
    write_result(args.out, meta, data, md)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
