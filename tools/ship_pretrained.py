"""Turn a finished (or paused) CPU training run into the weights that ship inside semprior.

    python experiments/lolv1_cpu/experiment.py report --runs ~/runs --lol ~/data/LOL   # first
    python tools/ship_pretrained.py --model deepspg --runs ~/runs

1. **Select on validation only.** For each run of the model (DeepSPG: ``deepspg_none`` and
   ``deepspg_region`` where present) the candidates are the raw weights and the weight average of
   ``last.pt`` and the ``best.pt`` the trainer kept; each is scored on the 20 held-out ``our485``
   pairs (``data.val_holdout: 20``, the trainer's own ``validate``) by ``choose`` in
   ``experiments/lolv1_cpu/experiment.py``: its report makes the selection and scores eval15 once; this script
   reads ``experiments/lolv1_cpu/results/lolv1_cpu.json`` and ships the run with the best validation PSNR.
2. ``save_pretrained`` writes it to ``semprior/pretrained/deepspg-lolv1-cpu/``
   (``model.safetensors`` + ``config.json``).
3. The report's eval15 scores (``evaluate_methods``, the protocol of ``semprior eval``) and the
   selection table go to ``selection.json`` and ``MODEL_CARD.md`` beside the weights
   (``tests/data/test_shipped_model.py`` reproduces them with ``semprior eval --model deepspg``
   on the shipped files).

A stage of the LOL-v1 study ships the same way from its weights folder in git:

    python tools/ship_pretrained.py --model deepspg --stage experiments/lolv1_scenes/weights/deepspg_s5

It reads the stage chain (``stage.json`` of the folder and of each stage it started from), the study's
validation (``experiments/lolv1_scenes/results/validation.json``: the folder and ``shipped:MODEL`` on the
same scene-aware validation pairs, per image) and its report (``results/report.json``: eval15 scored once
for the folder). It ships only if the stage does not lose to the shipped model on validation: PSNR not
lower by more than one paired standard error and SSIM higher (the shipped models trained on most of those
pairs, which favours them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # ship_stage.py beside this script
MODELS = ("deepspg", "retinexformer")


def model_of(config: str) -> str:
    """The model a report row's run trained (``model.name`` of its config)."""
    import yaml

    return str(yaml.safe_load((REPO / config).read_text())["model"]["name"])


def made_by(argv: list[str] | None) -> dict:
    """The commit (``+dirty`` when tracked files differ), command, date and machine of this run."""
    import platform
    import subprocess
    import time

    import torch

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    args = sys.argv[1:] if argv is None else argv
    return {
        "commit": git("rev-parse", "--short", "HEAD") + dirty,
        "command": " ".join(["python tools/ship_pretrained.py", *args]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}, torch {torch.__version__}",
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="deepspg", choices=MODELS)
    p.add_argument("--runs", default="~/runs")
    p.add_argument(
        "--results",
        default=str(REPO / "experiments" / "lolv1_cpu" / "results" / "lolv1_cpu.json"),
        help="the report of experiments/lolv1_cpu/experiment.py (its selection is the one that ships)",
    )
    p.add_argument("--stage", default=None, help="ship this weights folder of the LOL-v1 study (with stage.json)")
    study_results = REPO / "experiments" / "lolv1_scenes" / "results"
    p.add_argument(
        "--validation", default=str(study_results / "validation.json"), help="with --stage: study.py validate"
    )
    p.add_argument("--report", default=str(study_results / "report.json"), help="with --stage: study.py report")
    a = p.parse_args(argv)
    from semprior.models import get_model_entry
    from semprior.models.registry import PRETRAINED_DIR

    runs, results = Path(a.runs).expanduser(), Path(a.results)
    dest = PRETRAINED_DIR / get_model_entry(a.model).pretrained["lolv1-cpu"].file
    if a.stage is not None:
        from ship_stage import ship_stage

        return ship_stage(a, dest, made_by(argv))
    if not results.is_file():
        print(
            f"no report at {results}: run `python experiments/lolv1_cpu/experiment.py report` first "
            "(it selects each run's weights on validation and scores eval15 once)",
            file=sys.stderr,
        )
        return 1
    reported = [r for r in json.loads(results.read_text())["rows"] if model_of(r["config"]) == a.model]
    CONFIGS = {r["run"]: r["config"] for r in reported}  # run folder -> its config, as the report recorded
    if not reported:
        print(f"the report has no row of a {a.model} run", file=sys.stderr)
        return 1
    best = max(reported, key=lambda r: r["val_psnr"])  # across runs: validation PSNR, as within a run
    run = best["run"]
    chosen = next(c for c in best["candidates"] if c["weights"] == best["weights"])
    path = runs / run / chosen["file"]
    if not path.is_file():  # a carried row ships too where its run folder is here (the step is checked below)
        print(
            f"the best {a.model} run, {run} (reported {best['measured']}), has no {chosen['file']} in "
            f"{runs / run}: ship it from the machine that trained it, or train it again",
            file=sys.stderr,
        )
        return 1

    from semprior import load_model, save_pretrained
    from semprior.engine.checkpoint import load_checkpoint
    from semprior.engine.run_config import RunConfig, from_dict, load_yaml

    if int(load_checkpoint(path)["step"]) != chosen["step"]:
        print(
            f"{path} is no longer step {chosen['step']} (the run went on after the report): report again",
            file=sys.stderr,
        )
        return 1
    rc = from_dict(RunConfig, load_yaml(REPO / CONFIGS[run]), "config")
    # steps of a later stage count from the step its first stage's weights were chosen at
    rows = [
        (r["run"], c["weights"], c["step"] + r.get("stage", {}).get("from_step", 0), c["psnr"], c["ssim"])
        for r in reported
        for c in r["candidates"]
    ]
    save_pretrained(load_model(path, param_key=chosen["key"]), dest)
    ev = best["eval15"]  # the report's single eval15 scoring of these weights
    # the row's hours and steps (summed over the stages of a staged run; its log covers its own stage)
    log = {
        **best["log"],
        "step": best["steps"],
        "hours": best["hours"],
        "cpu_hours": best["cpu_hours"],
        "cpu_exact": best["cpu_exact"],
    }
    (dest / "selection.json").write_text(
        json.dumps(
            {
                "chosen": {"run": run, "weights": chosen["weights"], "step": chosen["step"], "config": CONFIGS[run]},
                "validation": [
                    {"run": r, "weights": lb, "step": s, "psnr": ps, "ssim": ss} for r, lb, s, ps, ss in rows
                ],
                **({"stage": best["stage"]} if best.get("stage") else {}),
                "eval15": ev,
                **made_by(argv),
                "steps_total": rc.train.steps + best.get("stage", {}).get("from_step", 0),
                "steps_trained": log["step"],
                "wall_hours": round(log["hours"], 2),
                "cpu_hours": round(log["cpu_hours"], 2),
            },
            indent=1,
        )
    )
    (dest / "MODEL_CARD.md").write_text(
        model_card(a.model, CONFIGS, run, chosen["weights"], chosen["step"], rc, rows, ev, dest, log, best.get("stage"))
    )
    print(json.dumps(ev, indent=1))
    return 0


def model_card(model, CONFIGS, run, label, step, rc, rows, ev, dest: Path, log: dict, stage: dict | None = None) -> str:
    """The model card: what the weights are, how they were made and chosen, and what they score."""
    from safetensors.torch import load_file

    n = sum(v.numel() for v in load_file(dest / "model.safetensors").values())
    cfg = json.loads((dest / "config.json").read_text())
    prior = (cfg.get("prior") or {}).get("name") or "none"
    val = "\n".join(f"| {r} | {lb} | {s} | {ps:.2f} | {ss:.3f} |" for r, lb, s, ps, ss in rows)
    t = rc.train
    priors = (
        f"image prior: `{prior}` (the paper's HRNet-W48 and CLIP weights cannot be downloaded here), no text prior"
        if model == "deepspg"
        else "no semantic prior (Retinexformer uses none)"
    )
    local = stage["steps"] if stage else log["step"]  # steps of this config's own schedule
    done = (
        f"trained to the end of its schedule ({t.steps} steps)"
        if local >= t.steps
        else f"**interim weights**: the run stopped at step {local} of {t.steps}"
    )
    start = stage["from_step"] if stage else 0
    if stage:
        done = (
            f"a second stage: it starts from the weights of `{stage['continues']}` at step {start} (the config's "
            f"`init`; fresh Adam, schedule and weight average) and was {done[0].lower() + done[1:]}"
        )
    step_desc = f"step {start + step} ({start} + {step})" if stage else f"step {step}"
    reproduce = (
        f"`semprior train --config {CONFIGS[run]} --out ~/runs/{run} --until {step}`"
        if not stage
        else f"`python experiments/lolv1_cpu/experiment.py resume --runs ~/runs --start --only {run}` (it "
        f"starts `{CONFIGS[run]}` from the weights `{stage['continues']}` chose, with `--set init=...`; "
        f"stop at step {step})"
    )
    cpu = f"{'' if log['cpu_exact'] else '≤ '}{log['cpu_hours']:.1f}"
    from ship_stage import describe

    what, role, paper = describe(model, "the CPU experiment")
    return f"""# {what}, LOL-v1, CPU-trained (`create_model("{model}", pretrained="lolv1-cpu")`)

{role} Files: `model.safetensors` (weights),
`config.json` (architecture and prior; the frozen prior is rebuilt by name, never stored),
`selection.json` (how it was chosen, the numbers below).

- **Architecture:** {what}, {n:,} trainable parameters, {priors}.
- **Data:** LOL-v1 `our485` (Wei et al., BMVC 2018), 465 pairs for training; 20 pairs held out by
  name hash (`data.val_holdout: 20`) for selection. **LOL is a research dataset**: its images come
  with the dataset's research-use terms; these weights inherit them. Not for safety-critical use.
- **Training:** `{CONFIGS[run]}`: Adam lr {t.lr:g}, cosine to {t.min_lr_ratio:g} of it, batch {t.batch_size},
  coarse-to-fine patches {[list(s) for s in t.patch_stages]}, EMA {t.ema_decay}; {done}; these weights are
  {step_desc}. Single-thread training on a shared 2-core machine (AMD EPYC): {log["hours"]:.1f} wall hours,
  {cpu} CPU hours{" for both stages" if stage else ""} (the comparison: `experiments/lolv1_cpu/results/lolv1_cpu.md`).
- **Selection** (validation pairs only; eval15 was not looked at):

| run | weights | step | val PSNR (dB) | val SSIM |
|---|---|---:|---:|---:|
{val}

Chosen: `{run}`, {label}.

- **LOL-v1 eval15** (15 real pairs, the test set; scored once, with `semprior eval --lol LOL
  --model {model}`: RGB, uint8-quantised, no border crop; GT-mean rescales the output's mean grey
  level to the reference's): **PSNR {ev["psnr"]:.2f} dB, SSIM {ev["ssim"]:.3f}**; with GT-mean
  {ev["psnr_gtmean"]:.2f} dB / {ev["ssim_gtmean"]:.3f}. {paper}
- **Reproduce the numbers:** `tests/data/test_shipped_model.py` runs `semprior eval` on eval15 and
  checks them to 0.01 dB. Reproduce the weights: run the config to step {step} with
  {reproduce}, then
  `python experiments/lolv1_cpu/experiment.py report` and `python tools/ship_pretrained.py --model {model}`.
"""


if __name__ == "__main__":
    sys.exit(main())
