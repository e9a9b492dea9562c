"""Eval15 CPU experiment: train on synthetic low-light pairs, test once on real LOL-v1 eval15.

Train/validation pairs are synthesized from the clean photos in ``shared/data/clean`` (Kodak24,
CBSD68, McMaster); a fixed, name-hashed subset of them is held out as the *synthetic validation
split*.  Every choice (synthesis ranges, epochs, checkpoint selection) is made on that split.
The real LOL-v1 eval15 pairs are evaluated exactly once per configuration, after training.

Usage (background, 1-2 torch threads)::

    nohup .venv/bin/python benchmarks/eval15_experiment.py train --config deepspg-noprior \
        --minutes 20 --out runs/eval15/deepspg-noprior > runs/eval15/noprior.log 2>&1 &
    .venv/bin/python benchmarks/eval15_experiment.py report --runs runs/eval15

The synthesis here is the experiment's own *camera tone curve* model (see ``synthesize``):
LOL's pairs behave like a global tone curve plus colour cast and noise, not like a linear
exposure scale applied in linear light.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CLEAN_SETS = ("kodak24", "cbsd68", "mcmaster")


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def load_rgb(path: Path) -> torch.Tensor:
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)  # uint8 (3, H, W)


def is_val(name: str, fraction: float = 0.15) -> bool:
    """Deterministic hold-out by name hash (independent of file order)."""
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    return (h % 1000) < fraction * 1000


def clean_split(root: Path) -> tuple[list[Path], list[Path]]:
    train, val = [], []
    for s in CLEAN_SETS:
        for p in sorted((root / "clean" / s).glob("*.png")):
            (val if is_val(f"{s}/{p.name}") else train).append(p)
    if not train or not val:
        raise FileNotFoundError(f"no clean images under {root / 'clean'}")
    return train, val


def synth_config():
    """The experiment's synthesis ranges, fixed before any training (LOL-like: mostly tone curve).

    ``tone_prob=0.8``: LOL's pairs behave more like a display-space tone curve than a linear
    exposure scale; the noise ranges are wide (log-uniform over 2 decades) so that training sees
    clean and noisy shots; colour casts of +-8 % per channel in linear light.
    """
    from semprior.data.synthesis import LowLightConfig

    return LowLightConfig(
        exposure=(0.05, 0.35),
        tone_prob=0.8,
        tone_gamma=(1.2, 2.2),
        tone_wiggle=0.3,
        color_cast=0.08,
        shot_noise=(1e-5, 1e-3),
        read_noise=(1e-4, 3e-3),
        bits=8,
    )


def synthesize(clean: torch.Tensor, cfg, g: torch.Generator) -> torch.Tensor:
    from semprior.data.synthesis import synthesize_low_light

    return synthesize_low_light(clean, cfg, generator=g)


def random_crops(images: list[torch.Tensor], n: int, size: int, g: torch.Generator) -> torch.Tensor:
    out = []
    for _ in range(n):
        img = images[int(torch.randint(len(images), (1,), generator=g))]
        _, h, w = img.shape
        i = int(torch.randint(h - size + 1, (1,), generator=g))
        j = int(torch.randint(w - size + 1, (1,), generator=g))
        c = img[:, i : i + size, j : j + size]
        if torch.rand(1, generator=g) < 0.5:
            c = c.flip(-1)
        out.append(c)
    return torch.stack(out).float() / 255


def val_pairs(paths: list[Path], cfg, size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed synthetic validation pairs: centre crops, one fixed synthesis per image."""
    g = torch.Generator().manual_seed(1234)
    highs = []
    for p in paths:
        img = load_rgb(p)
        _, h, w = img.shape
        i, j = (h - size) // 2, (w - size) // 2
        highs.append(img[:, i : i + size, j : j + size])
    high = torch.stack(highs).float() / 255
    return synthesize(high, cfg, g), high


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------
class CurveNet(torch.nn.Module):
    """Pipeline check model (not DeepSPG): global monotone per-channel curve + local residual."""

    required_multiple = 1

    def __init__(self, knots: int = 16, width: int = 16):
        super().__init__()
        nn = torch.nn
        self.knots = knots
        self.enc = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, 2, 1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, 3 * knots),
        )
        self.local = nn.Sequential(
            nn.Conv2d(6, width, 3, 1, 1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, 1, 1),
            nn.ReLU(),
            nn.Conv2d(width, 3, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        small = F.interpolate(x, size=(64, 64), mode="area")
        inc = F.softplus(self.enc(small).view(b, 3, self.knots)) + 1e-4
        lut = torch.cat([inc.new_zeros(b, 3, 1), inc.cumsum(-1)], -1)  # (b, 3, K+1), monotone
        lut = lut / lut[..., -1:].clamp_min(1e-6)
        pos = x.clamp(0, 1) * self.knots
        i0 = pos.floor().clamp(max=self.knots - 1).long()
        w = pos - i0
        flat = i0.flatten(2)
        lo = torch.gather(lut, 2, flat).view_as(x)
        hi = torch.gather(lut, 2, flat + 1).view_as(x)
        curved = lo + w * (hi - lo)
        return (curved + 0.2 * torch.tanh(self.local(torch.cat([x, curved], 1)))).clamp(0, 1)


def build_model(name: str) -> tuple[torch.nn.Module, dict]:
    """``name`` -> (model whose forward returns the enhanced image, description)."""
    if name == "curvenet":
        return CurveNet(), {"model": "CurveNet (tuning model, not DeepSPG)"}
    if name in ("deepspg-noprior", "deepspg-region"):
        from semprior.models.deepspg import DeepSPG, DeepSPGConfig

        if name == "deepspg-noprior":  # the paper's baseline row: no image prior, no text prior
            cfg = DeepSPGConfig.preset("deepspg").ablation("baseline")
            prior = None
        else:  # weight-free RegionPrior as the image prior; no text prior (no CLIP weights here)
            from semprior.priors.region import RegionPrior

            cfg = DeepSPGConfig.preset("deepspg", image_prior=True, text_prior=False, coarse_to_fine=False)
            prior = RegionPrior()
        model = DeepSPG(cfg, prior=prior, text_loss=None)
        return model, {
            "model": "DeepSPG",
            "preset": "deepspg",
            "prior": type(prior).__name__ if prior else None,
            "model_config": cfg.to_dict(),
        }
    raise ValueError(f"unknown config {name!r}; use curvenet, deepspg-noprior or deepspg-region")


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


# --------------------------------------------------------------------------------------------
# training with early stopping on the synthetic validation split
# --------------------------------------------------------------------------------------------
def train_loss(out: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    import kornia

    l1 = (out - high).abs().mean()
    ssim = kornia.losses.ssim_loss(out, high, window_size=11)  # (1 - SSIM) / 2
    cos = 1 - F.cosine_similarity(out + 1e-3, high + 1e-3, dim=1).mean()
    return l1 + ssim + 0.5 * cos


@torch.no_grad()
def validate(model: torch.nn.Module, low: torch.Tensor, high: torch.Tensor) -> tuple[float, float]:
    import kornia

    model.eval()
    ps, ss = [], []
    for i in range(0, low.shape[0], 4):
        out = model(low[i : i + 4]).clamp(0, 1)
        h = high[i : i + 4]
        ps.append(kornia.metrics.psnr(out, h, 1.0).item() * out.shape[0])
        ss.append(kornia.metrics.ssim(out, h, 11).mean().item() * out.shape[0])
    model.train()
    return sum(ps) / low.shape[0], sum(ss) / low.shape[0]


def cmd_train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = synth_config()
    train_paths, val_paths = clean_split(DATA)
    train_imgs = [load_rgb(p) for p in train_paths]
    vlow, vhigh = val_pairs(val_paths, cfg)
    model, desc = build_model(args.config)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    best = {"score": -1e9}
    history = []
    step = 0
    while time.time() - t0 < args.minutes * 60:
        high = random_crops(train_imgs, args.batch, args.patch, g)
        low = synthesize(high, cfg, g)
        loss = train_loss(model(low), high)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % args.val_every == 0:
            p, s = validate(model, vlow, vhigh)
            score = p + 10 * s  # selection rule, fixed before training: PSNR + 10 * SSIM on synthetic val
            rec = {"step": step, "minutes": (time.time() - t0) / 60, "loss": loss.item(), "val_psnr": p, "val_ssim": s}
            history.append(rec)
            print(json.dumps(rec), flush=True)
            if score > best["score"]:
                best = {"score": score, **rec}
                ckpt = {"model": model.state_dict(), "step": step, "val_psnr": p, "val_ssim": s}
                if "model_config" in desc:
                    ckpt["model_config"] = desc["model_config"]
                torch.save(ckpt, out / "best.pt")
    meta = {
        "config": args.config,
        **desc,
        "params": n_params(model),
        "synthesis": asdict(cfg),
        "train_images": len(train_paths),
        "val_images": len(val_paths),
        "steps": step,
        "batch": args.batch,
        "patch": args.patch,
        "lr": args.lr,
        "threads": args.threads,
        "train_minutes": (time.time() - t0) / 60,
        "best": best,
        "history": history,
        "loss": "L1 + (1-SSIM)/2 + 0.5 * (1 - cos colour angle)",
        "selection": "max val PSNR + 10*SSIM",
    }
    (out / "train.json").write_text(json.dumps(meta, indent=1))
    print("best", json.dumps(best))
    return 0


# --------------------------------------------------------------------------------------------
# eval15: evaluated once per configuration (refuses to run twice)
# --------------------------------------------------------------------------------------------
EVAL15 = DATA / "lol_v1_eval15"
GRID_ROWS = 3


def _eval15(methods: dict, out: Path, keep: int = GRID_ROWS) -> dict:
    from semprior.data.datasets import PairedFolder
    from semprior.engine.evaluate import evaluate_methods
    from semprior.metrics import MetricProtocol

    done = out / "eval15.json"
    if done.exists():
        raise SystemExit(f"{done} exists: eval15 is a test set and is evaluated once per configuration")
    pairs = PairedFolder(EVAL15 / "low", EVAL15 / "high")
    result = evaluate_methods(methods, pairs, protocol=MetricProtocol(), keep=keep)
    torch.save(
        {
            "names": [n for n, _ in result.samples],
            "outputs": {m: [row[1 + i] for _, row in result.samples] for i, m in enumerate(result.methods)},
            "low": [row[0] for _, row in result.samples],
            "high": [row[-1] for _, row in result.samples],
        },
        out / "eval15_samples.pt",
    )
    res = result.to_dict()
    done.write_text(json.dumps(res, indent=1))
    print(result.to_markdown())
    return res


def cmd_test(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    meta = json.loads((run / "train.json").read_text())
    model, _ = build_model(meta["config"])
    ckpt = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model"], strict=True)
    model.eval()
    _eval15({meta["config"]: model}, run)
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from semprior.models.classical import CLASSICAL

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _eval15({name: cls() for name, cls in CLASSICAL.items()}, out)
    return 0


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "note": "2 cores shared with ~6 other processes; timings are wall-clock",
    }


def cmd_report(args: argparse.Namespace) -> int:
    from semprior.engine.grid import save_grid

    runs = Path(args.runs)
    res_dir = REPO / "benchmarks" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    base = json.loads((runs / "baselines" / "eval15.json").read_text())
    rows, report = (
        [],
        {
            "machine": machine(),
            "protocol": base["protocol"],
            "protocol_gtmean": base["protocol_gtmean"],
            "baselines": base["means"],
            "configs": {},
        },
    )
    floors = {"psnr": 16.80, "ssim": 0.621}
    for name, m in base["means"].items():
        rows.append(
            f"| {name} (classical) | 0 | - | - | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['psnr_gtmean']:.2f} | {m['ssim_gtmean']:.3f} |"
        )
    for c in args.configs:
        meta = json.loads((runs / c / "train.json").read_text())
        ev = json.loads((runs / c / "eval15.json").read_text())
        m = ev["means"][c]
        best = meta["best"]
        report["configs"][c] = {"train": meta, "eval15": ev}
        rows.append(
            f"| {c} | {meta['params']:,} | {meta['train_minutes']:.0f} (best at {best['minutes']:.0f}, step {best['step']}) "
            f"| {best['val_psnr']:.2f} / {best['val_ssim']:.3f} | {m['psnr']:.2f} | {m['ssim']:.3f} "
            f"| {m['psnr_gtmean']:.2f} | {m['ssim_gtmean']:.3f} |"
        )
        m["clears_floors"] = bool(m["psnr"] > floors["psnr"] and m["ssim"] > floors["ssim"])
    (res_dir / "eval15.json").write_text(json.dumps(report, indent=1) + "\n")
    meta0 = report["configs"][args.configs[0]]["train"]
    lines = [
        "# Eval15 CPU experiment: DeepSPG trained on synthetic pairs, tested on real LOL-v1 eval15",
        "",
        "Generated by `benchmarks/eval15_experiment.py report`; raw numbers and the training curves are in",
        "`eval15.json`. Every choice was fixed before training or made on the synthetic validation split;",
        "eval15 was evaluated once per configuration (the script refuses a second evaluation).",
        "",
        "| method | params | train minutes | synthetic-val PSNR / SSIM | eval15 PSNR (dB) | eval15 SSIM | PSNR GT-mean | SSIM GT-mean |",
        "|---|---:|---|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"Protocol: {base['protocol']}; GT-mean columns: {base['protocol_gtmean']}. SSIM: Gaussian 11x11,",
        "sigma 1.5, valid window, mean over RGB (MATLAB/skimage style); means over the 15 images.",
        f"Floors to clear: PSNR > {floors['psnr']} dB (LIME-style Retinex), SSIM > {floors['ssim']} (gamma 0.4).",
        "",
        "## Setup",
        "",
        f"- Training data: {meta0['train_images']} clean photos (Kodak24, CBSD68, McMaster from `shared/data/clean`),",
        f"  synthetic validation: {meta0['val_images']} held-out photos (name hash), fixed centre crops 128x128, one fixed synthesis each.",
        f"- Synthesis (`semprior.data.synthesize_low_light`): `{meta0['synthesis']}`.",
        f"- Optimiser: Adam lr {meta0['lr']}, batch {meta0['batch']}, random {meta0['patch']}x{meta0['patch']} crops + flips,",
        f"  grad clip 1, loss {meta0['loss']}; checkpoint selection: {meta0['selection']} (evaluated every few dozen steps).",
        f"- torch threads per run: {meta0['threads']}; the two DeepSPG runs trained at the same time on the shared 2-core machine.",
        f"- Machine: {report['machine']['cpu']} ({report['machine']['cpu_count']} cores), torch {report['machine']['torch']}.",
        "",
        "![eval15 samples](eval15_grid.png)",
        "",
        "## How the choices were made, and caveats",
        "",
        "- Before any training, only two summary numbers of eval15 were looked at: the mean brightness of the",
        "  low images (0.059) and of the references (0.451), to set the synthesis' darkening range (the issue",
        "  text states the same facts). No eval15 image was used for any other decision.",
        "- The synthesis noise range was lowered from the library default after measuring, on the synthetic",
        "  validation split only, how far an oracle per-image tone curve could get (default noise capped it at",
        "  SSIM ~0.47, so SSIM would be noise-bound); tone_prob 0.8 follows the issue's hint. A first version",
        "  of the script used its own synthesis and a small curve-plus-residual model (`CurveNet`) as a",
        "  pipeline check; it was trained for a few minutes and never evaluated on eval15.",
        "- One seed per configuration, one training budget (36 wall-clock minutes, about 420 steps of",
        "  4 x 64x64 crops, while the 2 cores were shared with other jobs at load 6-13). Synthetic-validation",
        "  PSNR swings by 2-3 dB between checks (constant learning rate, brightness of the output not yet",
        "  settled), so the selected step (300 for both) is partly luck; the differences between the two",
        "  DeepSPG rows (0.6 dB) are within that noise and say nothing about the value of the prior.",
        "- The loss is this script's (L1 + SSIM + colour angle), not DeepSPG's `loss()`; the RegionPrior",
        "  run therefore uses the prior only through the SEM queries (no semantic-KL term), and no text prior.",
        "- The floors are the issue's (16.80 dB from a LIME-style Retinex measured before the project,",
        "  0.621 from gamma 0.4); the library's `lime` baseline scores 16.24 dB here.",
        "",
    ]
    (res_dir / "eval15.md").write_text("\n".join(lines))
    # grid: input, classical, DeepSPG configs, reference on the first eval15 images
    bs = torch.load(runs / "baselines" / "eval15_samples.pt", weights_only=True)
    cols = {k: bs["outputs"][k] for k in ("gamma", "lime") if k in bs["outputs"]}
    for c in args.configs:
        cols[c] = torch.load(runs / c / "eval15_samples.pt", weights_only=True)["outputs"][c]
    grid_rows = [[bs["low"][i], *[v[i] for v in cols.values()], bs["high"][i]] for i in range(len(bs["low"]))]
    save_grid(res_dir / "eval15_grid.png", grid_rows, ["input", *cols, "reference"], cell_height=120)
    print((res_dir / "eval15.md").read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--config", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--minutes", type=float, default=20)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--patch", type=int, default=96)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--val-every", type=int, default=50)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    te = sub.add_parser("test", help="evaluate a finished run's best checkpoint on eval15 (once)")
    te.add_argument("--run", required=True)
    te.add_argument("--threads", type=int, default=1)
    b = sub.add_parser("baselines", help="evaluate the classical baselines on eval15 (once)")
    b.add_argument("--out", required=True)
    b.add_argument("--threads", type=int, default=1)
    r = sub.add_parser("report", help="write benchmarks/results/eval15.{md,json} and the grid")
    r.add_argument("--runs", required=True)
    r.add_argument("--configs", nargs="+", default=["deepspg-noprior", "deepspg-region"])
    args = ap.parse_args(argv)
    return {"train": cmd_train, "test": cmd_test, "baselines": cmd_baselines, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
