"""NIQE numbers the docs print: the MATLAB calibration images, a Kodak photo degraded, and the LIME photos.

Writes ``benchmarks/results/niqe.json`` and ``niqe.md`` (commit, command, machine, every number).

    python benchmarks/bench_niqe.py --calibration DIR --shared ../shared/data

``--calibration`` is a folder with IQA-PyTorch's ``ResultsCalibra/dist_dir/I03, I04, I06, I08,
I19.bmp`` (not in this repository); without it that part is left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from _harness import RESULTS, provenance, write_result

from semprior import create_model, evaluate_unpaired, list_images, niqe, read_image

MATLAB = {
    "I03": 15.7536293917814,
    "I04": 3.65492152353770,
    "I06": 3.23547743716998,
    "I08": 3.18403333858339,
    "I19": 8.63519663862637,
}


def calibration(folder: Path) -> list[dict]:
    import numpy as np
    from PIL import Image

    rows = []
    for name, ref in MATLAB.items():
        arr = np.asarray(Image.open(folder / f"{name}.bmp").convert("RGB")).copy()
        x = torch.from_numpy(arr).permute(2, 0, 1).to(torch.float64)[None] / 255
        v = niqe(x).item()
        rows.append(
            {
                "image": f"{name}.bmp",
                "matlab": ref,
                "semprior": round(v, 4),
                "diff_pct": round(100 * (v - ref) / ref, 2),
            }
        )
    return rows


def kodak(shared: Path) -> dict:
    x = read_image(sorted((shared / "clean" / "kodak24").glob("*.png"))[0])[None]
    torch.manual_seed(0)
    noisy = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    blur = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, 1)
    out = {}
    for model in ("authors", "fitted"):
        c, n, b = niqe(torch.cat([x, noisy, blur]), model).tolist()
        out[model] = {"clean": round(c, 3), "noise_0.05": round(n, 3), "box_blur_5": round(b, 3)}
    return out


def lime(shared: Path) -> dict:
    methods = {"gamma": create_model("gamma"), "lime": create_model("lime")}
    out = {}
    for model in ("authors", "fitted"):
        res = evaluate_unpaired(methods, shared / "lime", niqe_model=model)
        out[model] = {m: {k: round(float(v), 4) for k, v in row.items()} for m, row in res.means().items()}
    out["photos"] = len(list_images(shared / "lime"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calibration", type=Path, help="folder with IQA-PyTorch's ResultsCalibra/dist_dir/*.bmp")
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    meta = provenance(__file__, argv, threads=2)
    result = {
        "calibration": calibration(args.calibration) if args.calibration else None,
        "kodak": kodak(args.shared),
        "lime": lime(args.shared),
    }
    md = ["# NIQE", ""]
    if result["calibration"]:
        md += ["| image | MATLAB release | semprior | difference |", "|---|---:|---:|---:|"]
        md += [
            f"| {r['image']} | {r['matlab']:.4f} | {r['semprior']:.4f} | {r['diff_pct']:+.2f} % |"
            for r in result["calibration"]
        ]
        md.append("")
    md += ["| Kodak photo 1 | clean | + noise σ 0.05 | 5×5 box blur |", "|---|---:|---:|---:|"]
    md += [f"| NIQE ({m}) | {v['clean']} | {v['noise_0.05']} | {v['box_blur_5']} |" for m, v in result["kodak"].items()]
    md += [
        "",
        f"LIME photos ({result['lime']['photos']}), means:",
        "",
        "| model | method | NIQE | brightness | noise σ |",
        "|---|---|---:|---:|---:|",
    ]
    for m in ("authors", "fitted"):
        for meth, row in result["lime"][m].items():
            md.append(f"| {m} | {meth} | {row['niqe']:.3f} | {row['brightness']:.3f} | {row['noise']:.2f} |")
    write_result(RESULTS / "niqe", meta, result, md)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
