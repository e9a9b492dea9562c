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
        exposure=(0.05, 0.35), tone_prob=0.8, tone_gamma=(1.2, 2.2), tone_wiggle=0.3, color_cast=0.08,
        shot_noise=(1e-5, 1e-3), read_noise=(1e-4, 3e-3), bits=8,
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


def val_pairs(paths: list[Path], cfg, size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
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
            nn.Conv2d(3, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(width, 3 * knots),
        )
        self.local = nn.Sequential(
            nn.Conv2d(6, width, 3, 1, 1), nn.ReLU(), nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(),
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
    if name.startswith("deepspg"):
        from semprior.models.deepspg import DeepSPG, DeepSPGConfig

        prior = None
        if name == "deepspg-region":
            from semprior.priors.region import RegionPrior

            prior = RegionPrior()
        elif name != "deepspg-noprior":
            raise ValueError(f"unknown config {name!r}")
        cfg = DeepSPGConfig.preset("deepspg")
        model = DeepSPG(cfg, prior=prior, text_loss=None)
        return DeepSPGImage(model), {"model": "DeepSPG", "preset": "deepspg", "prior": type(prior).__name__ if prior else None}
    raise ValueError(f"unknown config {name!r}; use curvenet, deepspg-noprior or deepspg-region")


class DeepSPGImage(torch.nn.Module):
    """Adapter: DeepSPG forward -> enhanced image tensor."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.required_multiple = int(getattr(model, "required_multiple", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, torch.Tensor):
            return out
        for attr in ("enhanced", "output", "image"):
            if hasattr(out, attr):
                return getattr(out, attr)
        if isinstance(out, dict) and "enhanced" in out:
            return out["enhanced"]
        raise TypeError(f"cannot find the enhanced image in DeepSPG output of type {type(out).__name__}")


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
                torch.save(model.state_dict(), out / "best.pt")
    meta = {
        "config": args.config, **desc, "params": n_params(model), "synthesis": asdict(cfg),
        "train_images": len(train_paths), "val_images": len(val_paths), "steps": step,
        "batch": args.batch, "patch": args.patch, "lr": args.lr, "threads": args.threads,
        "train_minutes": (time.time() - t0) / 60, "best": best, "history": history,
        "loss": "L1 + (1-SSIM)/2 + 0.5 * (1 - cos colour angle)", "selection": "max val PSNR + 10*SSIM",
    }
    (out / "train.json").write_text(json.dumps(meta, indent=1))
    print("best", json.dumps(best))
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
    args = ap.parse_args(argv)
    return {"train": cmd_train}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
