"""Run every example at the budget it states and record what it gives on real low-light photos.

    python examples/budgets.py --data ../shared/data --out benchmarks/results

writes ``examples.json`` and ``examples.md`` there: per example the command, training steps, CPU
and wall seconds (one torch thread), and the mean brightness and NIQE (authors' pristine model) of
the photos before and after (``--photos``). ``fit_niqe.py`` has no photos to enhance: it is
recorded by the NIQE ranking of a clean Kodak photo, the same photo with Gaussian noise
(sigma 0.05) and with a 5x5 box blur under the model it fits. ``--only NAME`` runs one example.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: example -> its budget: the arguments its docstring states ({data}: the shared data folder)
BUDGETS: dict[str, list[str]] = {
    "classical_retinex": ["--photos", "{data}/lime"],
    "sllen": ["--steps", "96", "--photos", "{data}/lime"],
    "cugd": ["--steps", "2000", "--photos", "{data}/lime"],
    "deepspg_full": ["--steps", "300", "--photos", "{data}/lime"],
    "fit_niqe": ["{data}/clean"],
}


def command(name: str, data: Path, out: Path) -> list[str]:
    args = [a.format(data=data) for a in BUDGETS[name]]
    tail = ["-o", str(out / "niqe_fitted_params.npz")] if name == "fit_niqe" else ["--out", str(out)]
    return [sys.executable, str(HERE / f"{name}.py"), *args, *tail]


def niqe_ranking(params: Path, data: Path) -> dict[str, float]:
    """NIQE of a clean Kodak photo, with noise and with blur, under the model written to ``params``."""
    import torch
    import torch.nn.functional as F

    from semprior.data.io import list_images, read_image
    from semprior.metrics.niqe import load_niqe_model, niqe

    model = load_niqe_model(params)
    img = read_image(list_images(data / "clean" / "kodak24")[0])[None]
    noisy = (img + 0.05 * torch.randn(img.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    blurred = F.avg_pool2d(F.pad(img, (2, 2, 2, 2), mode="reflect"), 5, stride=1)
    return {k: float(niqe(x, model)) for k, x in (("clean", img), ("noise", noisy), ("blur", blurred))}


def run(name: str, data: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = command(name, data, out)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEMPRIOR_PROGRESS": "0"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    shown = [
        "python",
        f"examples/{name}.py",
        *[a.format(data="../shared/data") for a in BUDGETS[name]],
        *cmd[len(cmd) - 2 :],
    ]
    rec = {
        "command": " ".join(shown[:-1] + [Path(shown[-1]).name if name == "fit_niqe" else "runs/" + name]),
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "wall_seconds": round(wall, 1),
    }
    if name == "fit_niqe":
        rec["niqe_ranking"] = niqe_ranking(out / "niqe_fitted_params.npz", data)
    else:
        rec["photos"] = json.loads((out / "photos.json").read_text())
    return rec


def _cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def markdown(results: dict, meta: dict) -> str:
    lines = [
        "# The examples at their stated budgets",
        "",
        "Written by `python examples/budgets.py` (`OMP_NUM_THREADS=1`; `fit_niqe.py` sets two torch threads;",
        "CPU s: user + system seconds of the whole example). Photos: real low-light images, means; NIQE with",
        "the authors' pristine model, lower is better.",
        "",
        "| example | command | CPU s | photos | brightness before → after | NIQE before → after | commit |",
        "|---|---|---:|---|---|---|---|",
    ]
    for name, r in results.items():
        if "photos" in r:
            p = r["photos"]
            lines.append(
                f"| {name} | `{r['command']}` | {r['cpu_seconds']:.0f} | {len(p['images'])} in "
                f"`{Path(p['folder']).name}` | {p['brightness']['input']:.3f} → {p['brightness']['output']:.3f} | "
                f"{p['niqe']['input']:.3f} → {p['niqe']['output']:.3f} | {r['commit']} |"
            )
        else:
            k = r["niqe_ranking"]
            lines.append(
                f"| {name} | `{r['command']}` | {r['cpu_seconds']:.0f} | – | – | fitted model on a Kodak photo: "
                f"clean {k['clean']:.2f}, noise {k['noise']:.2f}, blur {k['blur']:.2f} | {r['commit']} |"
            )
    lines += [
        "",
        f"Last run: `{meta['command']}` at commit {meta['commit']}, {meta['date']}; machine: {meta['machine']}; "
        f"load average at start {meta['load']}. Each row names the commit that made it.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="the shared data folder (lime/, lol_v1_eval15/, clean/)")
    p.add_argument("--out", type=Path, required=True, help="folder for examples.json and examples.md")
    p.add_argument("--only", action="append", choices=sorted(BUDGETS), help="run only these examples (repeatable)")
    args = p.parse_args(argv)
    data = args.data.resolve()
    path = args.out / "examples.json"
    old = json.loads(path.read_text()) if path.is_file() and args.only else {}
    # rows kept from an earlier run keep that run's provenance (each row records its own commit and command)
    results = {
        k: {"commit": old.get("commit"), "date": old.get("date"), **r} for k, r in old.get("examples", {}).items()
    }
    commit = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    meta = {
        "commit": commit or "unknown",
        "command": "python examples/budgets.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "load": f"{os.getloadavg()[0]:.1f}",
        "machine": f"{_cpu_name()}, {os.cpu_count()} cores, {platform.system()}",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or BUDGETS:
            print(f"running {name} ...", flush=True)
            results[name] = {"commit": meta["commit"], "date": meta["date"], **run(name, data, Path(tmp) / name)}
            print(json.dumps(results[name], indent=1), flush=True)
            ordered = {k: results[k] for k in BUDGETS if k in results}  # written after each example
            path.write_text(json.dumps({**meta, "budgets": BUDGETS, "examples": ordered}, indent=1) + "\n")
            (args.out / "examples.md").write_text(markdown(ordered, meta))
    print(f"wrote {path} and {args.out / 'examples.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
