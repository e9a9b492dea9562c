"""Ship a stage of the LOL-v1 study (``experiments/lolv1_scenes``) as semprior's ``lolv1-cpu`` weights.

Called by ``tools/ship_pretrained.py --stage FOLDER``: see its docstring for the rule it applies.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METRICS = ("psnr", "ssim", "psnr_gtmean")


@functools.cache
def _study():
    """The study script as a module (its stage chain and paired differences), loaded once."""
    path = REPO / "experiments" / "lolv1_scenes" / "study.py"
    spec = importlib.util.spec_from_file_location("lolv1_scenes_study", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rel(folder: Path) -> str:
    try:
        return str(folder.resolve().relative_to(REPO))
    except ValueError:
        return str(folder)


def _fail(msg: str) -> int:
    print(msg, file=sys.stderr)
    return 1


def compare(validation: dict, candidate: str, shipped: str) -> dict:
    """Means of both models and the paired per-image differences ``candidate - shipped`` on validation."""
    study = _study()
    names = {spec: name for name, spec in validation["models"].items()}
    a, b = validation["per_image"][names[candidate]], validation["per_image"][names[shipped]]
    out = {"pairs": len(validation["names"]), "candidate": {}, "shipped": {}, "difference": {}}
    for k in METRICS:
        out["candidate"][k] = sum(a[k]) / len(a[k])
        out["shipped"][k] = sum(b[k]) / len(b[k])
        m, se = study.paired(a[k], b[k])
        out["difference"][k] = {"mean": m, "se": se}
    return out


def ship_stage(a, dest: Path, made: dict) -> int:
    """Check the rule, then write the weights, ``selection.json`` and ``MODEL_CARD.md`` to ``dest``."""
    from semprior import load_model, save_pretrained

    study = _study()
    folder = Path(a.stage) if Path(a.stage).is_absolute() else REPO / a.stage
    rel = _rel(folder)
    chain = study.stage_chain(folder)
    if not chain:
        return _fail(f"{folder} has no stage.json: export the stage first (experiments/lolv1_scenes/study.py export)")
    val_path, report_path = Path(a.validation), Path(a.report)
    for path, cmd in ((val_path, "validate"), (report_path, "report")):
        if not path.is_file():
            return _fail(f"no {path}: run `python experiments/lolv1_scenes/study.py {cmd}` with {rel} first")
    validation, report = json.loads(val_path.read_text()), json.loads(report_path.read_text())
    shipped = f"shipped:{a.model}"
    missing = [s for s in (rel, shipped) if s not in validation["models"].values()]
    if missing:
        return _fail(
            f"{val_path} has no validation of {', '.join(missing)}: run study.py validate with "
            f"NAME={rel} and shipped_{a.model}={shipped}"
        )
    row = next((r for r in report["rows"] if r["weights"] == rel), None)
    if row is None:
        return _fail(f"{report_path} has no eval15 row of {rel}: run study.py report with it")
    held = json.loads((folder / "config.json").read_text())["model"]
    if held != a.model:
        return _fail(f"{rel} holds a {held} model, not a {a.model}")
    model = load_model(folder)
    cmp = compare(validation, rel, shipped)
    d = cmp["difference"]
    if d["psnr"]["mean"] < -d["psnr"]["se"] or d["ssim"]["mean"] <= 0:
        return _fail(
            f"{rel} does not win on validation against the shipped {a.model}: PSNR "
            f"{d['psnr']['mean']:+.2f} ± {d['psnr']['se']:.2f} dB, SSIM {d['ssim']['mean']:+.3f}; nothing shipped"
        )
    save_pretrained(model, dest)
    stages = [
        {
            "config": c["config"],
            "steps": c["steps"],
            "passes": c["passes"],
            "cpu_hours": c["cpu_hours"],
            "hours": c["hours"],
            "weights": c["chosen"]["weights"],
            "val": {k: c["chosen"].get(k) for k in (*METRICS, "ssim_gtmean")},
            "commit": c.get("commit"),
        }
        for c in chain
    ]
    selection = {
        "chosen": {"stage": rel, "weights": chain[-1]["chosen"]["weights"], "config": chain[-1]["config"]},
        "stages": stages,
        "passes": sum(s["passes"] for s in stages),
        "cpu_hours": sum(s["cpu_hours"] for s in stages),
        "wall_hours": sum(s["hours"] for s in stages),
        "validation": {**cmp, "against": shipped, "commit": validation.get("commit"), "result": _rel(val_path)},
        "eval15": row["eval15"],
        "exposure_slope": row.get("exposure_slope"),
        "report": {"commit": report.get("commit"), "result": _rel(report_path)},
        **made,
    }
    (dest / "selection.json").write_text(json.dumps(selection, indent=1))
    (dest / "MODEL_CARD.md").write_text(stage_card(a.model, dest, selection))
    print(json.dumps(row["eval15"], indent=1))
    return 0


def describe(model: str, baseline_of: str) -> tuple[str, str, str]:
    """What a shipped model is, its role in semprior, and its paper's eval15 score (for a model card)."""
    if model == "deepspg":
        return (
            "DeepSPG `deepspg` preset",
            "The default model of `semprior enhance` (no flag needed).",
            "The paper's DeepSPG (HRNet + CLIP, GPU, 500 epochs): 26.87 / 0.866; its baseline without priors 25.19 dB.",
        )
    return (
        "Retinexformer, the published LOL-v1 configuration",
        f"`semprior enhance photo.jpg -o out/ --model retinexformer`; the baseline of {baseline_of}.",
        "The Retinexformer paper (150k iterations, GPU): 25.16 / 0.845.",
    )


def stage_card(model: str, dest: Path, sel: dict) -> str:
    """The model card of a shipped study stage: data, stages, selection, eval15, how to reproduce."""
    from safetensors.torch import load_file

    n = sum(v.numel() for v in load_file(dest / "model.safetensors").values())
    what, role, paper = describe(model, "the LOL-v1 study")
    priors = (
        "no image or text prior (the paper's HRNet-W48 and CLIP weights cannot be downloaded here; the paper's "
        "baseline row)"
        if model == "deepspg"
        else "no semantic prior (Retinexformer uses none)"
    )
    loss = (
        "MSE, edge, GT-mean, exposure and SSIM terms (`model.loss` in the configs)"
        if model == "deepspg"
        else "L1, as published"
    )
    rows = "\n".join(
        f"| {i + 1} | `{s['config']}` | {s['steps']} | {s['passes']:.2f} | {s['cpu_hours']:.2f} | "
        f"{s['val']['psnr']:.2f} / {s['val']['ssim']:.3f} |"
        for i, s in enumerate(sel["stages"])
    )
    v, ev = sel["validation"], sel["eval15"]
    d = v["difference"]
    configs = " → ".join(f"`{Path(s['config']).stem}`" for s in sel["stages"])
    return f"""# {what}, LOL-v1, CPU-trained (`create_model("{model}", pretrained="lolv1-cpu")`)

{role} Files: `model.safetensors` (weights),
`config.json` (architecture; no prior is stored), `selection.json` (how it was made and chosen, the
numbers below).

- **Architecture:** {what}, {n:,} trainable parameters, {priors}.
- **Data:** LOL-v1 `our485` (Wei et al., BMVC 2018): 436 pairs for training; 49 pairs of 24 whole
  scenes held out for selection (`data.val_holdout: 48`, `data.val_split: scenes`: no scene on both
  sides). **LOL is a research dataset**: its images come with the dataset's research-use terms;
  these weights inherit them. Not for safety-critical use.
- **Training:** {len(sel["stages"])} stages ({configs}, `experiments/lolv1_scenes/long/`), each a
  warm restart from the previous stage's weights in git: batch 8 of 128-px crops, Adam with a cosine
  schedule, bf16 autocast, a weight average (EMA); loss: {loss}. {sel["passes"]:.1f} passes over the
  training pixels, {sel["cpu_hours"]:.1f} CPU hours (single-thread processes, two side by side on a
  2-core AMD EPYC):

| stage | config | steps | passes | CPU h | val PSNR / SSIM at its end |
|---:|---|---:|---:|---:|---|
{rows}

- **Selection** (validation pairs only; eval15 was not looked at): these weights are the last
  stage's end ({sel["chosen"]["weights"].split(" (")[0]}). Against the model shipped before them, on the same
  {v["pairs"]} validation pairs, per image: PSNR {d["psnr"]["mean"]:+.2f} ± {d["psnr"]["se"]:.2f} dB,
  SSIM {d["ssim"]["mean"]:+.3f} ± {d["ssim"]["se"]:.3f}, GT-mean PSNR
  {d["psnr_gtmean"]["mean"]:+.2f} ± {d["psnr_gtmean"]["se"]:.2f} dB (± one standard error; the model
  before had trained on most of these pairs, which favours it). The rule: ship when PSNR is not
  lower by more than one standard error and SSIM is higher.
- **LOL-v1 eval15** (15 real pairs, the test set; scored once, with `semprior eval --lol LOL
  --model {model}`: RGB, uint8-quantised, no border crop; GT-mean rescales the output's mean grey
  level to the reference's): **PSNR {ev["psnr"]:.2f} dB, SSIM {ev["ssim"]:.3f}**; with GT-mean
  {ev["psnr_gtmean"]:.2f} dB / {ev["ssim_gtmean"]:.3f}. {paper}
- **Reproduce the numbers:** `tests/data/test_shipped_model.py` runs `semprior eval` on eval15 and
  checks them to 0.01 dB. Reproduce the weights: the stage configs in order, as
  `experiments/lolv1_scenes/README.md` shows (`semprior train --config ...`, then `study.py export
  --stage-end`), then `study.py validate` and `study.py report` with the last stage, and
  `python tools/ship_pretrained.py --model {model} --stage {sel["chosen"]["stage"]}`.
"""
