"""The real-data CPU experiment (issue 11): DeepSPG without prior, DeepSPG with the weight-free
RegionPrior and Retinexformer, trained under one engine on LOL-v1 ``our485`` minus 20 held-out
pairs, selected on those 20 pairs, and scored **once** on eval15.

    # train (resumable; each run writes RUNS/NAME/{last.pt,best.pt,log.jsonl})
    OMP_NUM_THREADS=1 semprior train --config configs/cpu/deepspg_region_lolv1.yaml --out ~/runs/deepspg_region
    ... --resume ~/runs/deepspg_region/last.pt           # after an interruption, continues exactly
    # where the runs stand (no evaluation on eval15)
    python experiments/lolv1_cpu/experiment.py status --runs ~/runs
    # continue every unfinished run exactly (prints the commands; --start launches them, detached)
    python experiments/lolv1_cpu/experiment.py resume --runs ~/runs --start
    # the final table: evaluates each run's best.pt on eval15 once, writes
    # experiments/lolv1_cpu/results/lolv1_cpu.{md,json,png}
    python experiments/lolv1_cpu/experiment.py report --runs ~/runs --lol ~/data/LOL

"Hours" are wall-clock hours of each single-thread training process, summed over sessions
(resumes), on a shared 2-core machine: an upper bound of its CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNS = {  # run folder name -> (config, table label)
    "deepspg_none": ("configs/cpu/deepspg_none_lolv1.yaml", "DeepSPG, no prior (paper's baseline row)"),
    "deepspg_region": ("configs/cpu/deepspg_region_lolv1.yaml", "DeepSPG, RegionPrior (weight-free image prior)"),
    "retinexformer": ("configs/cpu/retinexformer_lolv1.yaml", "Retinexformer (LOL-v1 config)"),
    "deepspg_none_s2": ("configs/cpu/deepspg_none_lolv1_stage2.yaml", "DeepSPG, no prior, stage 2 (warm restart)"),
    "retinexformer_s2": ("configs/cpu/retinexformer_lolv1_stage2.yaml", "Retinexformer, stage 2 (warm restart)"),
    "deepspg_region_s2": (
        "configs/cpu/deepspg_region_lolv1_stage2.yaml",
        "DeepSPG, RegionPrior, stage 2 (warm restart)",
    ),
}
#: a later stage -> (the run it continues, the commit that shipped that run's chosen weights, their folder in that
#: commit, the sha256 of its model.safetensors). The stage's config reads them from RUNS/<run>/chosen (`init`), which
#: `resume` writes from git: the earlier stage's run folder may be on a machine that is gone. A stage whose earlier
#: weights were never shipped has commit None and names the file of the earlier run folder its config reads
#: (that folder must be on this machine when the stage starts).
STAGES = {
    "deepspg_none_s2": (
        "deepspg_none",
        "f5c6e0b",
        "semprior/pretrained/deepspg-lolv1-cpu",
        "3eb1344b9a0d4fffc83ebb070e70f4850546867bdea15f8e31fdb2b6309cf0d0",
    ),
    "retinexformer_s2": (
        "retinexformer",
        "f5c6e0b",
        "semprior/pretrained/retinexformer-lolv1-cpu",
        "6599c92bcd4bc3cb3aaba69b66c95a3e29be32ea79da91458534ddefb777c351",
    ),
    "deepspg_region_s2": ("deepspg_region", None, "best.pt", None),
}
PAPER = [  # the published rows the table is set beside (LOL-v1 eval15, PSNR / SSIM)
    ("DeepSPG paper, Table 1 (HRNet + CLIP, full training)", 26.87, 0.866),
    ("DeepSPG paper, Table 2 baseline without priors", 25.19, None),
    ("Retinexformer paper (150k iterations)", 25.16, 0.845),
]


def read_log(folder: Path) -> dict:
    """The run's log (``semprior.engine.run_log.read_run_log``) in the form ``lolv1_cpu.json`` stores:
    validation as ``(step, psnr, ssim)`` and ``(step, GT-mean psnr)``, loss as ``(step, loss)``."""
    from semprior.engine.run_log import read_run_log

    log = read_run_log(folder)
    return {
        "step": log.step,
        "val": [(v["step"], v["psnr"], v["ssim"]) for v in log.val],
        "val_gtmean": [(v["step"], v["psnr_gtmean"]) for v in log.val if "psnr_gtmean" in v],
        "hours": log.hours,
        "cpu_hours": log.cpu_hours,
        "cpu_exact": log.cpu_exact,
        "loss": log.loss,
    }


def shift_log(log: dict, offset: int) -> dict:
    """``log`` with every step moved by ``offset`` (a later stage drawn after the step it started from)."""
    return {
        **log,
        "step": log["step"] + offset,
        "val": [(s + offset, *v) for s, *v in log["val"]],
        "val_gtmean": [(s + offset, *v) for s, *v in log["val_gtmean"]],
        "loss": [(s + offset, *v) for s, *v in log["loss"]],
    }


TARGET_PSNR, TARGET_SSIM = 23.0, 0.82  # issue 11, eval15 without GT-mean


def validator(config: str, lol: Path):
    """The trainer's ``validate`` on the 20 pairs ``config`` holds out of ``lol/our485``."""
    import dataclasses

    from semprior.engine.recipe import RunConfig, build_data, make_validate
    from semprior.engine.run_config import from_dict, load_yaml

    rc = from_dict(RunConfig, load_yaml(REPO / config), "config")
    _, val = build_data(dataclasses.replace(rc.data, root=str(lol)), rc.train.seed)
    return make_validate(val, batch_size=2)


def choose(folder: Path, validate) -> list[dict]:
    """Every candidate of a run scored on validation, best PSNR first (eval15 is never looked at)."""
    from semprior.engine.run_log import score_candidates

    return score_candidates(folder, validate, verbose=True)


def diagnosis(data: list[dict], logs: dict) -> list[str]:
    """The targets, met or missed by how much, and what limits each run (from its own logs)."""
    lines = ["## Targets and what limits the runs", ""]
    deep = [d for d in data if d["run"].startswith("deepspg")]
    rfxs = [d for d in data if d["run"].startswith("retinexformer")]
    if deep:
        best = max(deep, key=lambda d: d["val_psnr"])  # chosen on validation, as the shipped one (never on eval15)
        p, q = best["eval15"]["psnr"], best["eval15"]["ssim"]
        lines.append(
            f"- The DeepSPG chosen on validation ({best['label']}): eval15 {p:.2f} dB / {q:.3f}; target "
            f"{TARGET_PSNR} dB / "
            f"{TARGET_SSIM}: PSNR {'met' if p >= TARGET_PSNR else f'missed by {TARGET_PSNR - p:.2f} dB'}, "
            f"SSIM {'met' if q >= TARGET_SSIM else f'missed by {TARGET_SSIM - q:.3f}'}."
        )
        for rfx in rfxs:  # each Retinexformer row against the DeepSPG chosen on validation among those of its CPU time
            rp, budget = rfx["eval15"]["psnr"], rfx["cpu_hours"]
            same = [d for d in deep if abs(d["cpu_hours"] - budget) <= 0.15 * budget]  # within 15 % of its CPU time
            if same:
                b = max(same, key=lambda d: d["val_psnr"])
                bp = b["eval15"]["psnr"]
                lines.append(
                    f"- DeepSPG vs Retinexformer under the same CPU budget ({b['cpu_hours']:.1f} vs "
                    f"{budget:.1f} CPU h; "
                    f"{b['label']} vs {rfx['label']}): {bp:.2f} vs {rp:.2f} dB "
                    f"({'ahead' if bp > rp else 'behind'} by {abs(bp - rp):.2f} dB)."
                )
        if rfxs and best["cpu_hours"] > 1.15 * max(r["cpu_hours"] for r in rfxs):
            lines.append(
                f"- The best DeepSPG had more CPU time than any Retinexformer ({best['cpu_hours']:.1f} vs "
                ""
                f"{max(r['cpu_hours'] for r in rfxs):.1f} h): set beside Retinexformer it is not a same-budget "
                "comparison."
            )
    for d in data:
        val = logs[d["run"]]["val"]
        gap = d["eval15"]["psnr_gtmean"] - d["eval15"]["psnr"]
        parts = [f"GT-mean adds {gap:.2f} dB (the share of the error that is global brightness)"]
        pi = d.get("per_image") or {}
        if pi.get("psnr") and pi.get("psnr_gtmean"):  # is it a bias or the exposure of single images?
            gains = sorted(b - a for a, b in zip(pi["psnr"], pi["psnr_gtmean"]))
            big = sum(g > 3 for g in gains)
            parts.append(
                f"per eval15 image it adds {gains[0]:.1f} to {gains[-1]:.1f} dB (median {gains[len(gains) // 2]:.1f}; "
                f"more than 3 dB on {big} of {len(gains)})"
            )
        if len(val) >= 2:
            (s0, p0, _), (s1, p1, _) = val[-2], val[-1]
            trend = "still rising" if p1 > p0 else "flat or falling"
            parts.insert(0, f"validation {trend} at the end ({p0:.2f} → {p1:.2f} dB from step {s0} to {s1})")
        vg = logs[d["run"]]["val_gtmean"]
        if vg and val and vg[-1][0] == val[-1][0]:
            parts.append(f"on validation GT-mean adds {vg[-1][1] - val[-1][1]:.2f} dB at step {vg[-1][0]}")
        parts.append(f"the chosen weights ({d['weights']}) are step {d['best_step']} of {d['steps']}")
        lines.append(f"- {d['label']}: " + "; ".join(parts) + ".")
    return lines + [""]


def status(runs: Path) -> None:
    for name in RUNS:
        folder = runs / name
        if not (folder / "log.jsonl").is_file():
            later = [
                f"{s} (from " + (f"the weights shipped in {v[1]})" if v[1] else f"its {v[2]})")
                for s, v in STAGES.items()
                if v[0] == name
            ]
            print(f"{name:18s} " + (f"not here; continued by {', '.join(later)}" if later else "not started"))
            continue
        log = read_log(folder)
        best = max(log["val"], key=lambda v: v[1]) if log["val"] else None
        val = f"best val {best[1]:.2f} dB / {best[2]:.3f} at step {best[0]}" if best else "no validation yet"
        cpu = f"{'' if log['cpu_exact'] else '<= '}{log['cpu_hours']:.2f} CPU h"
        print(f"{name:18s} step {log['step']:5d}, {log['hours']:.2f} h wall, {cpu}, {val}")
        if log["val"]:  # the curve: is it still rising?
            print(" " * 19 + "val " + ", ".join(f"{s}: {p:.2f}/{q:.3f}" for s, p, q in log["val"]))
        if log["val_gtmean"]:  # logged by the trainer since session 18
            print(" " * 19 + "val GT-mean PSNR " + ", ".join(f"{s}: {p:.2f}" for s, p in log["val_gtmean"]))


def total_steps(config: str) -> int:
    import yaml

    return int(yaml.safe_load((REPO / config).read_text())["train"]["steps"])


def running(folder: Path) -> bool:
    """Whether a ``semprior train ... --out FOLDER`` process is alive (two writers would corrupt the run)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"train" in args and b"--out" in args:
            i = args.index(b"--out")
            if i + 1 < len(args) and Path(args[i + 1].decode()).expanduser().resolve() == folder.resolve():
                return True
    return False


def prepare_stage(runs: Path, name: str) -> Path:
    """Write ``RUNS/<earlier run>/chosen`` (config.json + model.safetensors) from the commit that shipped
    the earlier stage's weights, checked against the pinned sha256; returns the folder."""
    import hashlib
    import subprocess

    earlier, commit, folder, sha = STAGES[name]
    if commit is None:  # weights never shipped: the stage's config reads the earlier run's file directly
        path = runs / earlier / folder
        if not path.is_file():
            raise SystemExit(
                f"{name} starts from {path}, which is not here: train {earlier} first "
                f"({RUNS[earlier][0]}), on this machine"
            )
        return path
    repo = REPO
    dest = runs / earlier / "chosen"
    dest.mkdir(parents=True, exist_ok=True)
    for fname in ("config.json", "model.safetensors"):
        blob = subprocess.run(["git", "show", f"{commit}:{folder}/{fname}"], cwd=repo, capture_output=True, check=False)
        if blob.returncode:
            raise SystemExit(
                f"{name}: cannot read {folder}/{fname} at commit {commit} ({blob.stderr.decode().strip()}); "
                "stage weights come from the repository's history: use a full clone, not a shallow one"
            )
        (dest / fname).write_bytes(blob.stdout)
    got = hashlib.sha256((dest / "model.safetensors").read_bytes()).hexdigest()
    if got != sha:
        raise SystemExit(f"{name}: {dest}/model.safetensors has sha256 {got}, expected {sha}")
    return dest


def resume(runs: Path, start: bool, threads: int, only: list[str] | None = None) -> int:
    """The command that continues each unfinished run exactly (``--start``: launch them, detached,
    one single-thread process each, output to ``RUN/resumeN.out``); ``only``: just these runs."""
    import subprocess

    repo = REPO
    exe = Path(sys.executable).with_name("semprior")
    for name, (config, _) in RUNS.items():
        if only and name not in only:
            continue
        later = [s for s, v in STAGES.items() if v[0] == name]
        if later:  # closed: its chosen weights were shipped and a later stage continues from them
            print(f"{name:18s} closed; continued by {', '.join(later)}")
            continue
        folder = runs / name
        last = folder / "last.pt"
        done = read_log(folder)["step"] if (folder / "log.jsonl").is_file() else 0
        if done >= total_steps(config):
            print(f"{name:18s} finished ({done} steps)")
            continue
        cmd = [str(exe), "train", "--config", config, "--out", str(folder)] + (
            ["--resume", str(last)] if last.is_file() else []
        )
        if name in STAGES and not last.is_file():  # a later stage starts from its first stage's chosen weights
            earlier, commit, file, _ = STAGES[name]
            init = prepare_stage(runs, name) if start else runs / earlier / ("chosen" if commit else file)
            cmd += ["--set", f"init={init}"]
            print(f"{'':18s} starts from {init} (the weights of {earlier})")
        if running(folder):
            print(f"{name:18s} is running now (logged step {done}); not started again")
            continue
        print(f"{name:18s} at logged step {done}: OMP_NUM_THREADS={threads} " + " ".join(cmd))
        if start:
            folder.mkdir(parents=True, exist_ok=True)
            n = 1 + sum(1 for _ in folder.glob("resume*.out"))
            log = open(folder / f"resume{n}.out", "w")  # noqa: SIM115  (the child keeps it open)
            subprocess.Popen(
                cmd,
                cwd=repo,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "OMP_NUM_THREADS": str(threads)},
            )
            print(f"{'':18s} started, output in {log.name}")
    return 0


def report(runs: Path, lol: Path, out: Path) -> int:
    """The final table. Runs found in ``runs`` are selected on validation and scored on eval15 once;
    a run that is not there (a later session on another machine) keeps its row, curve and per-image
    scores from the previous ``lolv1_cpu.json``, marked with the date they were measured."""
    import datetime

    import torch

    from semprior import load_model
    from semprior.data import PairedFolder
    from semprior.engine.evaluate import evaluate_methods

    torch.set_num_threads(2)
    prev = json.loads((out / "lolv1_cpu.json").read_text()) if (out / "lolv1_cpu.json").is_file() else {}
    earlier = {r["run"]: r for r in prev.get("rows", []) if "log" in r}
    fresh, methods, logs, validate = [], {}, {}, None
    for name, (config, label) in RUNS.items():
        folder = runs / name
        if not (folder / "last.pt").is_file():
            print(
                f"{name}: no last.pt in {folder}"
                + ("; its row comes from the earlier report" if name in earlier else "; no row")
            )
            continue
        logs[name] = read_log(folder)
        validate = validate or validator(config, lol)
        scored = choose(folder, validate)
        chosen = scored[0]
        # the log records every log_every-th step; last.pt (saved on SIGTERM) may be a few steps past it
        logs[name]["step"] = max(logs[name]["step"], *(c["step"] for c in scored))
        methods[name] = load_model(chosen["path"], param_key=chosen["key"])
        fresh.append((name, label, config, chosen, scored))
    if not methods and not earlier:
        print("no run found", file=sys.stderr)
        return 1
    machine = f"{platform.processor() or platform.machine()}, {platform.system()}, torch {torch.__version__}"
    today = datetime.date.today().isoformat()
    res = evaluate_methods(methods, PairedFolder(lol / "eval15" / "low", lol / "eval15" / "high")) if methods else None
    by_run = {}
    for name, label, config, chosen, scored in fresh:
        lg = logs[name]
        by_run[name] = {
            "run": name,
            "label": label,
            "config": config,
            "weights": chosen["weights"],
            "best_step": chosen["step"],
            "steps": lg["step"],
            "hours": lg["hours"],
            "cpu_hours": lg["cpu_hours"],
            "cpu_exact": lg["cpu_exact"],
            "val_psnr": chosen["psnr"],
            "eval15": {k: res.mean(name, k) for k in ("psnr", "ssim", "psnr_gtmean", "ssim_gtmean")},
            "candidates": [
                {
                    "weights": c["weights"],
                    "file": c["path"].name,
                    "key": c["key"],
                    "step": c["step"],
                    "psnr": c["psnr"],
                    "ssim": c["ssim"],
                }
                for c in scored
            ],
            "per_image": res.scores[name],
            "measured": today,
            "machine": machine,
            "log": lg,
        }
    for name in RUNS:  # the earlier rows of runs that are not here, in the table's order
        if name not in by_run and name in earlier:
            by_run[name] = {**earlier[name], "carried": True}
            logs[name] = earlier[name]["log"]
    for name, (before, commit, file, _) in STAGES.items():  # a later stage counts from the step its weights came from
        d = by_run.get(name)
        if d is None or d.get("carried"):
            continue  # a carried row already holds the sums
        if before not in by_run:
            raise SystemExit(
                f"{name} continues {before}, whose row is neither on this machine nor in the earlier report"
            )
        e = by_run[before]
        start = e["best_step"]  # shipped weights: the first stage's choice on validation
        if commit is None:  # the first stage's file itself (its trainer's choice)
            start = next((c["step"] for c in e.get("candidates", []) if c["file"] == file and c["key"] is None), None)
            if start is None:
                raise SystemExit(f"{name} starts from {before}/{file}, which the report of {before} does not list")
        d["stage"] = {
            "continues": before,
            "from_step": start,
            "steps": d["steps"],
            "hours": d["hours"],
            "cpu_hours": d["cpu_hours"],
        }
        d["best_step"] += start
        d["steps"] += start
        for k in ("hours", "cpu_hours"):
            d[k] += e[k]
        d["cpu_exact"] = d["cpu_exact"] and e["cpu_exact"]
        logs[name] = d["log"] = shift_log(logs[name], start)
    data = [by_run[n] for n in RUNS if n in by_run]
    table = [
        "| model | config | weights (chosen on validation) | step / trained | wall h | CPU h | val PSNR (20 "
        "held-out) | eval15 PSNR / SSIM | GT-mean PSNR / SSIM |",
        "|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for d in data:
        e = d["eval15"]
        cpu = f"{'' if d['cpu_exact'] else '≤ '}{d['cpu_hours']:.1f}"
        mark = f" (measured {d['measured']})" if d.get("carried") else ""
        if d.get("stage"):
            mark += f", from step {d['stage']['from_step']} of `{d['stage']['continues']}` (steps and hours include it)"
        table.append(
            f"| {d['label']}{mark} | `{d['config']}` | {d['weights']} | {d['best_step']} / {d['steps']} | "
            f"{d['hours']:.1f} | {cpu} | {d['val_psnr']:.2f} | **{e['psnr']:.2f} / {e['ssim']:.3f}** | "
            f"{e['psnr_gtmean']:.2f} / {e['ssim_gtmean']:.3f} |"
        )
    for label, p, s in PAPER:
        table.append(f"| {label} | – | – | – | – | – | – | {p:.2f} / {'–' if s is None else f'{s:.3f}'} | – |")
    protocol = res.protocol_lines() if res is not None else prev.get("protocol_lines", [])
    md = [
        "# LOL-v1 on the CPU: DeepSPG vs Retinexformer (real pairs)",
        "",
        "Trained on LOL-v1 our485 minus 20 pairs held out by name hash (`data.val_holdout: 20`). Per run, "
        "the weights are chosen on those 20 among `last.pt` (raw and weight average) and the trainer's "
        "`best.pt` (`choose`, the same selection `tools/ship_pretrained.py` uses); eval15 is evaluated "
        "once per chosen model with `evaluate_methods` (uint8, RGB, no border crop).",
        "",
        *table,
        "",
        *protocol,
        "",
        f"Machine: {machine}. Wall h: wall-clock of the single-thread training processes on a shared 2-core "
        "machine (two or three at once), summed over resumed sessions. CPU h: each process's CPU time from "
        "the trainer's `cpu_seconds`; `≤` where early segments were logged before it existed and count their "
        "wall time. A row marked *measured DATE* comes from an earlier report whose run folder is not on this "
        "machine (same script, same split).",
        "",
        *diagnosis(data, logs),
        "![validation curves](lolv1_cpu.png)",
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "lolv1_cpu.md").write_text("\n".join(md))
    (out / "lolv1_cpu.json").write_text(
        json.dumps({"rows": data, "protocol_lines": protocol, "machine": machine}, indent=1, default=str)
    )
    plot(logs, out / "lolv1_cpu.png")
    print("\n".join(md))
    return 0


def plot(logs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, lg in logs.items():
        if lg["val"]:
            axes[0].plot([v[0] for v in lg["val"]], [v[1] for v in lg["val"]], marker="o", label=name)
        axes[1].plot([x[0] for x in lg["loss"]], [x[1] for x in lg["loss"]], label=name, alpha=0.7)
    axes[0].set(xlabel="step", ylabel="validation PSNR (dB, 20 held-out pairs)")
    axes[1].set(xlabel="step", ylabel="training loss", yscale="log")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["status", "resume", "report"])
    p.add_argument(
        "--start",
        action="store_true",
        help="resume: launch the unfinished runs (detached) instead of printing the commands",
    )
    p.add_argument(
        "--threads", type=int, default=1, help="resume: torch threads per run (1 when runs share the machine)"
    )
    p.add_argument("--only", nargs="+", choices=list(RUNS), help="resume: just these runs (default: all)")
    p.add_argument("--runs", default="~/runs", help="folder holding one folder per run")
    p.add_argument("--lol", default="~/data/LOL", help="LOL-v1 root (eval15/low, eval15/high)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = p.parse_args(argv)
    runs = Path(a.runs).expanduser()
    if a.what == "status":
        status(runs)
        return 0
    if a.what == "resume":
        return resume(runs, a.start, a.threads, a.only)
    return report(runs, Path(a.lol).expanduser(), Path(a.out))


if __name__ == "__main__":
    sys.exit(main())
