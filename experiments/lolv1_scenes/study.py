"""LOL-v1 on the CPU, in passes: pilots of the training view, then a long run in stages, DeepSPG vs Retinexformer.

Uses only semprior's public API. Runs are ordinary ``semprior train`` run folders; this script reads
their ``log.jsonl`` and checkpoints, selects weights on the scene-aware validation split
(``data.val_holdout: 48`` whole scenes of ``our485``; eval15 is never looked at to choose), and
writes result files (``results/*.json`` and ``.md``) that record the commit, the command and the machine.

    python experiments/lolv1_scenes/study.py pilots --runs ~/runs            # the pilot table
    python experiments/lolv1_scenes/study.py export --run ~/runs/long_deepspg_s1 \\
        --config experiments/lolv1_scenes/long/deepspg_s1.yaml \\
        --to experiments/lolv1_scenes/weights/deepspg_s1                     # a stage's weights, for git
    python experiments/lolv1_scenes/study.py validate --models s2=experiments/lolv1_scenes/weights/deepspg_s2 \\
        shipped=shipped:deepspg                                              # validation, per image, paired
    python experiments/lolv1_scenes/study.py report --lol ~/data/LOL         # eval15 once per final model

A *pass* is one look at every training pixel: steps x batch x view pixels / (436 x 600 x 400),
where the view of a step follows ``train.patch_stages`` (a ``P``-pixel crop, or the whole frame
at a scale, trimmed to the model's multiple).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = HERE / "results"
FRAME = (400, 600)  # LOL-v1 frames, H x W
TRAIN_PAIRS = 436  # our485 minus the 49 pairs of the 48-pair scene split

PILOTS = {  # run folder -> (config, what it tests)
    "pilot_crops": (
        "experiments/lolv1_scenes/pilots/crops.yaml",
        "128-px crops throughout (the earlier recipe's view)",
    ),
    "pilot_grow": ("experiments/lolv1_scenes/pilots/grow.yaml", "crops, then whole frames at half resolution"),
    "pilot_split": ("experiments/lolv1_scenes/pilots/split.yaml", "as grow, + GT-mean, exposure and SSIM loss terms"),
    "pilot_s3_crops": (
        "experiments/lolv1_scenes/pilots/s3_crops.yaml",
        "from stage 2's weights: 128-px crops, split loss (stage 3's view if kept)",
    ),
    "pilot_s3_frames": (
        "experiments/lolv1_scenes/pilots/s3_frames.yaml",
        "from stage 2's weights: whole frames at half resolution, split loss",
    ),
}


def run_config(config: str | Path):
    from semprior.engine.run_config import RunConfig, from_dict, load_yaml

    path = Path(config)
    return from_dict(RunConfig, load_yaml(path if path.is_absolute() else REPO / path), str(config))


def view_pixels(stage: tuple, multiple: int) -> int:
    """Pixels of one training view of ``stage`` = ``(start, patch[, scale])`` on a LOL frame."""
    patch, scale = stage[1], (stage[2] if len(stage) == 3 else 1.0)
    if patch:
        return patch * patch
    h, w = (round(FRAME[0] * scale), round(FRAME[1] * scale))
    return (h - h % multiple) * (w - w % multiple)


def passes(rc, step: int, multiple: int) -> float:
    """Passes over the training pairs after ``step`` steps of the run config ``rc``."""
    stages = list(rc.train.patch_stages) or [(0, rc.data.patch_size)]
    total, done = 0, 0
    for i, s in enumerate(stages):
        end = stages[i + 1][0] if i + 1 < len(stages) else step
        n = max(0, min(end, step) - max(s[0], done))
        total += n * view_pixels(s, multiple)
        done = max(done, min(end, step))
    return total * rc.train.batch_size / (TRAIN_PAIRS * FRAME[0] * FRAME[1])


def read_log(folder: Path) -> dict:
    """Last step, CPU and wall hours and the validation records of a run (``semprior.engine.run_log``)."""
    from semprior.engine.run_log import read_run_log

    log = read_run_log(folder)
    return {"step": log.step, "cpu_hours": log.cpu_hours, "hours": log.hours, "val": log.val}


def multiple_of(rc) -> int:
    from semprior.engine.recipe import build_model

    return int(getattr(build_model(rc), "required_multiple", 1))


def meta(argv: list[str]) -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    import torch

    cpu = (
        next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").is_file()
        else platform.processor()
    )
    return {
        "commit": commit + ("+dirty" if dirty else ""),
        "command": "python experiments/lolv1_scenes/study.py " + " ".join(argv),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{cpu}, {platform.system()}, torch {torch.__version__}",
    }


def write(name: str, data: dict, md: list[str]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))
    header = [f"Made by `{data['command']}` at commit {data['commit']} on {data['date']} ({data['machine']}).", ""]
    (RESULTS / f"{name}.md").write_text("\n".join([md[0], "", *header, *md[1:], ""]))
    tables: list[str] = []  # every table of the page, a blank line between two tables (else Markdown joins them)
    for prev, ln in zip(["", *md], md):
        if ln.startswith("|"):
            tables += [""] if tables and not prev.startswith("|") else []
            tables.append(ln)
    (RESULTS / f"{name}_table.md").write_text(
        "\n".join([f"<!-- generated by {data['command']} at {data['commit']} -->", "", *tables, ""])
    )
    print("\n".join(md))


def pilots(args, argv) -> int:
    rows = []
    for name, (config, what) in PILOTS.items():
        folder = Path(args.runs).expanduser() / name
        if not (folder / "log.jsonl").is_file():
            print(f"{name}: no log in {folder}", file=sys.stderr)
            continue
        rc, log = run_config(config), read_log(folder)
        m = multiple_of(rc)
        curve = [{**v, "passes": passes(rc, v["step"], m)} for v in log["val"]]
        rows.append(
            {
                "run": name,
                "config": config,
                "what": what,
                "steps": log["step"],
                "passes": passes(rc, log["step"], m),
                "cpu_hours": log["cpu_hours"],
                "val": curve[-1] if curve else None,
                "curve": curve,
            }
        )
    md = [
        "# Pilots: which training view (DeepSPG, no prior, bf16, 0.5 pass each)",
        "Scored on the scene-aware validation split only (49 pairs of 24 whole scenes of our485, whole frames; "
        "the trainer's validation of the weight average). eval15 is not used to choose.",
        "",
        "| pilot | what it tests | steps | passes | CPU h | val PSNR | val SSIM | val GT-mean PSNR |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        v = r["val"] or {}
        md.append(
            f"| `{r['config']}` | {r['what']} | {r['steps']} | {r['passes']:.2f} | {r['cpu_hours']:.2f} | "
            f"{v.get('psnr', float('nan')):.2f} | {v.get('ssim', float('nan')):.3f} | "
            f"{v.get('psnr_gtmean', float('nan')):.2f} |"
        )
    write("pilots", {**meta(argv), "rows": rows}, md)
    return 0


def export(args, argv) -> int:
    """Choose a finished stage's weights on validation (last.pt raw / weight average, best.pt) and save them for git."""
    import dataclasses

    import torch

    from semprior import load_model
    from semprior.engine.recipe import build_data, make_validate
    from semprior.engine.run_log import checkpoint_candidates

    folder, rc = Path(args.run).expanduser(), run_config(args.config)
    if args.trainer_choice:  # best.pt, with the score the trainer logged for it (no second validation)
        return _save_stage(args, argv, folder, rc, _trainer_choice(folder))
    if args.stage_end:  # last.pt's weight average (what the trainer validates), with its logged score
        return _save_stage(args, argv, folder, rc, _stage_end(folder), [_trainer_choice(folder), _stage_end(folder)])
    lol = Path(args.lol).expanduser() if args.lol else None
    data = dataclasses.replace(rc.data, root=str(lol)) if lol else rc.data
    _, val = build_data(dataclasses.replace(data, patch_size=0, cache=False), rc.train.seed)
    validate = make_validate(val, batch_size=1)
    scored = []
    for c in checkpoint_candidates(folder):
        model = load_model(c.path, param_key=c.key)
        with torch.no_grad():
            s = validate(model)
        scored.append(
            {
                "weights": c.weights,
                "file": c.path.name,
                "key": c.key,
                "step": c.step,
                **{k: float(v) for k, v in s.items()},
            }
        )
        print(
            f"{c.weights:28s} step {c.step:5d}: val {s['psnr']:.2f} dB / {s['ssim']:.3f} "
            f"(GT-mean {s['psnr_gtmean']:.2f})",
            flush=True,
        )
    return _save_stage(args, argv, folder, rc, max(scored, key=lambda r: r["psnr"]), scored)


def _trainer_choice(folder: Path) -> dict:
    from semprior.engine.checkpoint import load_checkpoint

    step = int(load_checkpoint(folder / "best.pt")["step"])
    rec = next(v for v in reversed(read_log(folder)["val"]) if v["step"] == step)
    return {
        "weights": "best.pt (trainer's choice, its logged validation)",
        "file": "best.pt",
        "key": None,
        "step": step,
        **{k: float(v) for k, v in rec.items() if k != "step"},
    }


def _stage_end(folder: Path) -> dict:
    from semprior.engine.checkpoint import load_checkpoint

    last = load_checkpoint(folder / "last.pt")
    step, key = int(last["step"]), ("ema" if "ema" in last else "model")
    rec = next(v for v in reversed(read_log(folder)["val"]) if v["step"] == step)
    return {
        "weights": f"last.pt {'weight average' if key == 'ema' else 'raw weights'} "
        "(the stage's end, its logged validation)",
        "file": "last.pt",
        "key": key,
        "step": step,
        **{k: float(v) for k, v in rec.items() if k != "step"},
    }


def _save_stage(args, argv, folder: Path, rc, best: dict, scored: list[dict] | None = None) -> int:
    from semprior import load_model, save_pretrained
    from semprior.engine.checkpoint import load_checkpoint

    last = load_checkpoint(folder / "last.pt")
    dest = Path(args.to)
    save_pretrained(load_model(folder / best["file"], param_key=best["key"]), dest)
    log, m = read_log(folder), multiple_of(rc)
    record = {
        **meta(argv),
        "config": args.config,
        "chosen": best,
        "candidates": scored or [best],
        "steps": max(log["step"], best["step"]),
        "passes": passes(rc, max(log["step"], best["step"]), m),
        "cpu_hours": log["cpu_hours"],
        "hours": log["hours"],
        "curve": [{**v, "passes": passes(rc, v["step"], m)} for v in log["val"]],
        "init": _init_record(last.get("init"), args.init),
    }
    (dest / "stage.json").write_text(json.dumps(record, indent=1, default=str))
    print(
        f"wrote {dest} ({best['weights']}, step {best['step']}, {record['passes']:.2f} passes, "
        f"{record['cpu_hours']:.2f} CPU h)"
    )
    return 0


def _init_record(recorded: dict | None, given: str | None) -> dict | None:
    """Where the stage started: the checkpoint's record, or ``--init`` for a checkpoint that lacks it (runs resumed
    before the trainer kept the record across a resume); the two must agree when both are there."""
    if given is None:
        return recorded
    import hashlib

    weights = REPO / given / "model.safetensors"
    if not weights.is_file():
        raise SystemExit(f"--init {given}: no model.safetensors there; give the weights folder the stage started from")
    rec = {"source": given, "path": given, "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    if recorded is not None and recorded.get("sha256") != rec["sha256"]:
        raise SystemExit(
            f"--init {given} is not the weights last.pt records ({recorded.get('source')}); leave --init out"
        )
    return {**rec, "given_by": "--init"} if recorded is None else recorded


def stage_chain(folder: Path) -> list[dict]:
    """The ``stage.json`` records of a weights folder and of the stages it started from (``init``), first first."""
    chain = []
    while folder is not None and (folder / "stage.json").is_file():
        rec = json.loads((folder / "stage.json").read_text())
        chain.insert(0, rec)
        init = (rec.get("init") or {}).get("source")
        folder = (REPO / init) if init and (REPO / init / "stage.json").is_file() else None
    return chain


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean and standard error of the per-image differences ``a - b``."""
    import statistics

    d = [x - y for x, y in zip(a, b)]
    return statistics.fmean(d), (statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan"))


def slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of ``y`` on ``x``."""
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / max(sum((a - mx) ** 2 for a in x), 1e-12)


def _load(spec: str):
    """A weights folder of this study (relative to the repository) or ``shipped:NAME`` (the weights semprior ships)."""
    import semprior

    if spec.startswith("shipped:"):
        return semprior.create_model(spec.split(":", 1)[1], pretrained=True)
    return semprior.load_model(REPO / spec if not Path(spec).is_absolute() else Path(spec))


def validate_models(args, argv) -> int:
    """Every model on the scene-aware validation split, per image: means and paired differences to the first model."""
    import dataclasses

    import torch

    from semprior.engine.evaluate import evaluate_methods
    from semprior.engine.recipe import build_data

    rc = run_config(args.config)
    data = dataclasses.replace(rc.data, root=str(Path(args.lol).expanduser()), patch_size=0, cache=False)
    _, val = build_data(data, rc.train.seed)
    pairs = [val[i] for i in range(len(val))]
    models = dict(item.split("=", 1) for item in args.models)
    with torch.no_grad():
        res = evaluate_methods({name: _load(spec) for name, spec in models.items()}, pairs)
    names, keys = list(models), ("psnr", "ssim", "psnr_gtmean", "ssim_gtmean")
    md = [
        "# LOL-v1 in passes: models on the validation split",
        f"The {len(pairs)} pairs of the scene-aware validation split (`data.val_holdout: {rc.data.val_holdout}` whole "
        "scenes of our485, whole frames, fp32, the protocol of `semprior eval`). `shipped:NAME` is the model semprior "
        "ships; a shipped model trained before the scene split may have seen frames of these scenes (its score is "
        "then optimistic).",
        "",
        "| model | weights | PSNR | SSIM | GT-mean PSNR | GT-mean SSIM |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for n in names:
        md.append(
            f"| {n} | `{models[n]}` | "
            + " | ".join(f"{res.mean(n, k):.{3 if 'ssim' in k else 2}f}" for k in keys)
            + " |"
        )
    if len(names) > 1:
        md += ["", "| paired difference (per image) | PSNR dB | SSIM | GT-mean PSNR dB |", "|---|---|---|---|"]
        for other in names[1:]:
            cells = []
            for k in ("psnr", "ssim", "psnr_gtmean"):
                m, se = paired(res.scores[names[0]][k], res.scores[other][k])
                cells.append(f"{m:+.3f} ± {se:.3f}" if k == "ssim" else f"{m:+.2f} ± {se:.2f}")
            md.append(f"| {names[0]} − {other} | " + " | ".join(cells) + " |")
        md += ["", f"± one standard error of the mean of the {len(res.names)} per-image differences.", ""]
    means = {n: {k: res.mean(n, k) for k in keys} for n in names}
    write(args.name, {**meta(argv), "models": models, "means": means, "names": res.names, "per_image": res.scores}, md)
    return 0


def report(args, argv) -> int:
    """eval15 once per final model (and the shipped one): per-image scores, paired differences, the exposure slope."""
    import torch

    from semprior import load_model
    from semprior.data import PairedFolder
    from semprior.engine.evaluate import evaluate_methods

    lol = Path(args.lol).expanduser()
    finals = dict(item.split("=", 1) for item in args.models)
    methods, chains = {}, {}
    for name, folder in finals.items():
        methods[name] = load_model(REPO / folder if not Path(folder).is_absolute() else Path(folder))
        chains[name] = stage_chain(REPO / folder)
    pairs = PairedFolder(lol / "eval15" / "low", lol / "eval15" / "high")
    with torch.no_grad():
        res = evaluate_methods(methods, pairs, keep=len(pairs))
    grey_ref = [float(s[1][-1].mean()) for s in res.samples]
    rows = []
    for i, name in enumerate(finals):
        chain = chains[name]
        last = chain[-1] if chain else {}
        grey_out = [float(s[1][1 + i].clamp(0, 1).mean()) for s in res.samples]
        rows.append(
            {
                "model": name,
                "weights": finals[name],
                "stages": len(chain),
                "passes": sum(c["passes"] for c in chain),
                "cpu_hours": sum(c["cpu_hours"] for c in chain),
                "val": {k: last.get("chosen", {}).get(k) for k in ("psnr", "ssim", "psnr_gtmean", "ssim_gtmean")},
                "eval15": {k: res.mean(name, k) for k in ("psnr", "ssim", "psnr_gtmean", "ssim_gtmean")},
                "exposure_slope": slope(grey_ref, grey_out),
                "per_image": res.scores[name],
            }
        )
    md = [
        "# LOL-v1 in passes: DeepSPG vs Retinexformer on the CPU",
        "Weights chosen on the scene-aware validation split (49 pairs, 24 whole scenes of our485); eval15 scored "
        "once per model with `evaluate_methods` (the protocol of `semprior eval`).",
        "",
        "| model | weights | stages | passes | CPU h | val PSNR / SSIM | eval15 PSNR / SSIM "
        "| eval15 GT-mean PSNR / SSIM | exposure slope |",
        "|---|---|---:|---:|---:|---|---|---|---:|",
    ]
    for r in rows:
        v, e = r["val"], r["eval15"]
        val = f"{v['psnr']:.2f} / {v['ssim']:.3f}" if v.get("psnr") is not None else "–"
        md.append(
            f"| {r['model']} | `{r['weights']}` | {r['stages']} | {r['passes']:.2f} | {r['cpu_hours']:.2f} | {val} | "
            f"**{e['psnr']:.2f} / {e['ssim']:.3f}** | {e['psnr_gtmean']:.2f} / {e['ssim_gtmean']:.3f} | "
            f"{r['exposure_slope']:.2f} |"
        )
    md += [
        "",
        "Exposure slope: least-squares slope of the output's mean grey on the reference's over the 15 images "
        "(1 = the output follows each scene's brightness; 0 = one brightness for every scene).",
        "",
    ]
    names = list(finals)
    if len(names) > 1:
        md += ["| paired difference (per image, eval15) | PSNR dB | SSIM | GT-mean PSNR dB |", "|---|---|---|---|"]
        for other in names[1:]:
            cells = []
            for k in ("psnr", "ssim", "psnr_gtmean"):
                m, se = paired(res.scores[names[0]][k], res.scores[other][k])
                cells.append(f"{m:+.3f} ± {se:.3f}" if k == "ssim" else f"{m:+.2f} ± {se:.2f}")
            md.append(f"| {names[0]} − {other} | " + " | ".join(cells) + " |")
        md += ["", "± one standard error of the mean of the 15 per-image differences.", ""]
    md += res.protocol_lines()
    figure = RESULTS / f"{args.name}.png"
    curve_figure(rows, chains, figure)
    md += ["", f"![validation and eval15 vs passes and CPU hours]({figure.name})", ""]
    write(
        args.name,
        {**meta(argv), "rows": rows, "names": res.names, "curves": {n: [c["curve"] for c in chains[n]] for n in names}},
        md,
    )
    return 0


def cumulative_curve(chain: list[dict]) -> list[dict]:
    """A chain's validation curves end to end: each point with the passes and CPU hours since the first stage
    (CPU hours within a stage taken in proportion to its steps)."""
    out, passes0, hours0 = [], 0.0, 0.0
    for rec in chain:
        for v in rec["curve"]:
            f = v["step"] / rec["steps"]
            out.append({**v, "passes": passes0 + v["passes"], "cpu_hours": hours0 + f * rec["cpu_hours"]})
        passes0, hours0 = passes0 + rec["passes"], hours0 + rec["cpu_hours"]
    return out


def family(model: str) -> str:
    """A report row's curve: its model and seed, without the stage (``deepspg_s3`` -> ``deepspg``,
    ``deepspg_s1_seed1`` -> ``deepspg seed 1``)."""
    m = re.fullmatch(r"(.+?)_s\d+(?:_seed(\d+))?", model)
    if m is None:
        return model
    return m.group(1) + (f" seed {m.group(2)}" if m.group(2) else "")


def figure(args, argv) -> int:
    """Draw ``results/NAME.png`` again from ``results/NAME.json`` (no scoring) and the stage records in git."""
    rec = json.loads((RESULTS / f"{args.name}.json").read_text())
    rows = rec["rows"]
    chains = {r["model"]: stage_chain(REPO / r["weights"]) for r in rows}
    curve_figure(rows, chains, RESULTS / f"{args.name}.png")
    print(f"wrote {RESULTS / f'{args.name}.png'}")
    return 0


def curve_figure(rows: list[dict], chains: dict[str, list[dict]], path: Path) -> None:
    """Validation PSNR (line; GT-mean dashed) of each model's longest chain and eval15 PSNR of every scored model
    (markers), against passes and against CPU hours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    families: dict[str, str] = {}  # family (model and seed) -> the row with the longest chain
    for r in rows:
        if r["stages"]:
            fam = family(r["model"])
            if fam not in families or r["stages"] > len(chains[families[fam]]):
                families[fam] = r["model"]
    for i, (fam, longest) in enumerate(sorted(families.items())):
        colour = f"C{i}"
        curve = cumulative_curve(chains[longest])
        for ax, x in zip(axes, ("passes", "cpu_hours")):
            xs = [c[x] for c in curve]
            ax.plot(xs, [c["psnr"] for c in curve], ".-", color=colour, label=f"{fam} val")
            ax.plot(xs, [c["psnr_gtmean"] for c in curve], "--", color=colour, label=f"{fam} val GT-mean")
            pts = [r for r in rows if r["stages"] and family(r["model"]) == fam]
            ax.plot([r[x] for r in pts], [r["eval15"]["psnr"] for r in pts], "o", color=colour, label=f"{fam} eval15")
    for ax, label in zip(axes, ("passes over the training pixels", "CPU hours")):
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR (dB)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=4)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def stages(args, argv) -> int:
    """The table of finished stages (``weights/*/stage.json``): steps, passes, CPU hours, validation of the choice."""
    rows = []
    for f in sorted((HERE / "weights").glob("*/stage.json")):
        rec = json.loads(f.read_text())
        chain = stage_chain(f.parent)
        rows.append(
            {
                "weights": str(f.parent.relative_to(REPO)),
                **{k: rec[k] for k in ("config", "steps", "passes", "cpu_hours")},
                "total_passes": sum(c["passes"] for c in chain),
                "total_cpu_hours": sum(c["cpu_hours"] for c in chain),
                "chosen": rec["chosen"],
                "made_by": {k: rec[k] for k in ("commit", "command", "date", "machine")},
            }
        )
    md = [
        "# Long run: finished stages",
        "Validation on the scene-aware split (49 pairs, 24 scenes) of the weights each stage kept; "
        "a stage's own passes and CPU hours, then the totals from the first stage.",
        "",
        "| stage weights | config | steps | passes | CPU h | total passes | total CPU h | val PSNR / SSIM "
        "| val GT-mean PSNR / SSIM |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        c = r["chosen"]
        md.append(
            f"| `{r['weights']}` | `{r['config']}` | {r['steps']} | {r['passes']:.2f} | {r['cpu_hours']:.2f} | "
            f"{r['total_passes']:.2f} | {r['total_cpu_hours']:.2f} | {c['psnr']:.2f} / {c['ssim']:.3f} | "
            f"{c['psnr_gtmean']:.2f} / {c['ssim_gtmean']:.3f} |"
        )
    write(args.name, {**meta(argv), "rows": rows}, md)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("pilots", help="the pilot table")
    q.add_argument("--runs", default="~/runs")
    q = sub.add_parser("export", help="a finished stage's weights, chosen on validation, saved for git")
    q.add_argument("--run", required=True)
    q.add_argument("--config", required=True)
    q.add_argument("--to", required=True)
    q.add_argument("--lol", default=None, help="LOL-v1 root if not the config's")
    q.add_argument(
        "--trainer-choice",
        action="store_true",
        help="take best.pt with the validation the trainer logged for it, instead of scoring every candidate",
    )
    q.add_argument(
        "--init",
        default=None,
        metavar="WEIGHTS_FOLDER",
        help="the weights folder the stage started from, where last.pt does not record it (a run resumed by an "
        "older trainer)",
    )
    q.add_argument(
        "--stage-end",
        action="store_true",
        help="take the stage's end (last.pt's weight average) with its logged validation; best.pt's is recorded beside",
    )
    q = sub.add_parser("report", help="eval15 once per final model, paired differences, exposure slope")
    q.add_argument("--lol", default="~/data/LOL")
    q.add_argument("--models", nargs="+", required=True, metavar="NAME=WEIGHTS_FOLDER")
    q.add_argument("--name", default="report", help="result file stem in results/")
    q = sub.add_parser("validate", help="models on the validation split, per image, paired differences")
    q.add_argument("--models", nargs="+", required=True, metavar="NAME=WEIGHTS_FOLDER|shipped:NAME")
    q.add_argument("--config", default="experiments/lolv1_scenes/long/deepspg_s1.yaml", help="the split's data config")
    q.add_argument("--lol", default="~/data/LOL")
    q.add_argument("--name", default="validation", help="result file stem in results/")
    q = sub.add_parser("figure", help="draw results/NAME.png again from results/NAME.json")
    q.add_argument("--name", default="report", help="result file stem in results/")
    q = sub.add_parser("stages", help="the table of finished stages (weights/*/stage.json)")
    q.add_argument("--name", default="stages", help="result file stem in results/")
    args = p.parse_args(argv)
    return {
        "pilots": pilots,
        "export": export,
        "validate": validate_models,
        "report": report,
        "stages": stages,
        "figure": figure,
    }[args.cmd](args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
