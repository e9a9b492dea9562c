"""Where ``semprior enhance`` on a folder spends its time: decode, model, encode, one file after another.

Each round is a fresh process (the best round is kept): the shipped DeepSPG at ``--dtype auto``
on every file of the folder, timing ``read_image``, ``enhance_image`` and ``write_image``
separately, serially (no background threads), so the split says how much overlapping decoding
and encoding with the model can save.

Usage (make the folder outside the repository)::

    OMP_NUM_THREADS=1 python benchmarks/profile_folder.py --images /tmp/photos --rounds 2 --out /tmp/folder_split
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

from _harness import RESULTS, provenance, write_result


def child(images: Path) -> dict:
    import torch

    from semprior.data.io import read_image, write_image
    from semprior.engine.tiling import enhance_image
    from semprior.models.factory import create_model_for_inference

    model = create_model_for_inference("deepspg", prior=None, weights_dir=None).eval()
    files = sorted(f for f in images.iterdir() if f.is_file())
    split = {"decode_s": 0.0, "model_s": 0.0, "encode_s": 0.0}
    with tempfile.TemporaryDirectory() as out:
        for f in files:
            t0 = time.perf_counter()
            x = read_image(f).unsqueeze(0)
            t1 = time.perf_counter()
            y = enhance_image(model, x, precision="auto").clamp(0, 1)
            t2 = time.perf_counter()
            write_image(Path(out) / f"{f.stem}.png", y[0])
            t3 = time.perf_counter()
            split["decode_s"] += t1 - t0
            split["model_s"] += t2 - t1
            split["encode_s"] += t3 - t2
    return {"threads": torch.get_num_threads(), "files": len(files), **split}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True, help="folder of photos")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "folder_split"))
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.images))))
        return 0
    runs = []
    for r in range(args.rounds):
        cmd = [sys.executable, __file__, "--images", args.images, "--child"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs.append({"round": r, **json.loads(proc.stdout.strip().splitlines()[-1])})
        print(runs[-1], flush=True)
    b = min(runs, key=lambda x: x["decode_s"] + x["model_s"] + x["encode_s"])
    total = b["decode_s"] + b["model_s"] + b["encode_s"]
    lines = [
        "# `semprior enhance` on a folder: decode, model, encode (serial)",
        "",
        f"{b['files']} files, {b['threads']} torch thread(s), DeepSPG (shipped) at --dtype auto; best of "
        f"{args.rounds} round(s).",
        "",
        "| decode s | model s | encode s | total s | decode + encode share |",
        "|---|---|---|---|---|",
        f"| {b['decode_s']:.2f} | {b['model_s']:.2f} | {b['encode_s']:.2f} | {total:.2f} | "
        f"{(b['decode_s'] + b['encode_s']) / total:.1%} |",
    ]
    data = {"runs": runs, "best": b, "loadavg_at_end": os.getloadavg()}
    write_result(args.out, provenance(__file__, argv), data, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
