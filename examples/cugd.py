"""CUGD in a few CPU minutes: train a small conditional diffusion model, then DDIM-sample and write a grid.

The context prior is the weight-free :class:`semprior.priors.region.RegionPrior` (colour/texture
statistics + soft superpixel regions, exposure-invariant), so the example runs offline; pass
``--sam-checkpoint sam_vit_b_01ec64.pth`` to use SAM's image encoder as the paper does. Training
uses the engine's model-agnostic :class:`~semprior.engine.trainer.Trainer` with
``loss_fn = cugd_training_loss`` (``CUGD.loss``: epsilon objective + semantic context
regularisation through the frozen prior).

    python examples/cugd.py --out runs/cugd
    python examples/cugd.py --steps 300 --photos ../shared/data/lime --out runs/cugd

Budget: 300 steps (batch 8, 32x32 patches), about 4 CPU minutes on one thread, plus a few
minutes for ``--photos`` (10 DDIM steps per 192-pixel tile). At this budget CUGD is not a usable
enhancer: on the 9 LIME photos (``benchmarks/results/examples.md``) brightness 0.139 -> 0.717,
NIQE 4.563 -> 5.181 (over-exposed, washed-out and blotchy: brighter, but NIQE worse). Larger
budgets, measured on the same photos by ``benchmarks/bench_cugd_budget.py``
(``benchmarks/results/cugd_budget.md``; input NIQE 4.563):

- `--steps 1200` (247 CPU s): brightness 0.317, NIQE 5.176
- `--steps 2400 --pool 256` (338 CPU s): brightness 0.628, NIQE 6.180

(CPU seconds of the whole example, training and photos). No run gives a NIQE as good as the
input's, and the brightness does not settle with more training: the budget at which this small CUGD gives a plausible
result on real photos is above the largest budget measured. The example shows the pipeline
(frozen prior context, epsilon objective, DDIM), not a result.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from semprior.data.samples import default_clean_images
from semprior.data.synthesis import LowLightConfig, SyntheticPairs, synthesize_low_light
from semprior.engine.grid import save_grid
from semprior.engine.trainer import TrainConfig, Trainer
from semprior.metrics.psnr import psnr
from semprior.models.cugd import CUGD, CUGDConfig, cugd_training_loss


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000, help="training steps (the budget)")
    p.add_argument("--minutes", type=float, default=None, help="optional wall-clock cap on training (minutes)")
    p.add_argument("--out", type=Path, default=Path("runs/cugd"), help="output folder for the grid")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--patch", type=int, default=32)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument(
        "--pool",
        type=int,
        default=128,
        help="synthesised training pairs, made once (synthesis is the slow part on CPU)",
    )
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="cosine")
    p.add_argument("--prediction", choices=("eps", "v"), default="v", help="CUGDConfig.prediction")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM stochasticity (CUGDConfig.eta)")
    p.add_argument("--sampling-steps", type=int, default=25)
    p.add_argument("--context-weight", type=float, default=0.05)
    p.add_argument("--sam-checkpoint", type=Path, default=None, help="use SAMPrior(vit_b) with this checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--photos",
        type=Path,
        default=None,
        help="folder of real low-light photos to enhance after training (e.g. LOL-v1 eval15/low): "
        "brightness and NIQE of input vs result, written to OUT/photos.json",
    )
    p.add_argument("--photo-limit", type=int, default=None, help="use only the first N photos of --photos")
    p.add_argument(
        "--photo-tile", type=int, default=192, help="tile size for --photos (CUIE's attention is quadratic in pixels)"
    )
    return p.parse_args(argv)


def _resize_longest(img: torch.Tensor, side: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    s = side / max(h, w)
    return F.interpolate(
        img[None], size=(round(h * s), round(w * s)), mode="bilinear", antialias=True, align_corners=False
    )[0]


def build_prior(args: argparse.Namespace) -> torch.nn.Module:
    if args.sam_checkpoint is not None:
        from semprior.priors.sam import SAMPrior

        if not args.sam_checkpoint.is_file():
            raise FileNotFoundError(f"--sam-checkpoint {args.sam_checkpoint} does not exist")
        return SAMPrior("vit_b", checkpoint=args.sam_checkpoint)
    from semprior.priors.region import RegionPrior

    return RegionPrior(levels=1, base_stride=2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.steps <= 0:
        raise ValueError(f"--steps must be > 0, got {args.steps}")
    if args.minutes is not None and args.minutes <= 0:
        raise ValueError(f"--minutes must be > 0, got {args.minutes}")
    torch.manual_seed(args.seed)
    clean = default_clean_images()
    synth = SyntheticPairs(clean, patch_size=args.patch, length=args.pool, seed=args.seed)
    data = [{"low": it["low"], "high": it["high"]} for it in (synth[i] for i in range(args.pool))]
    prior = build_prior(args)
    cfg = CUGDConfig(
        width=args.width,
        depth=2,
        heads=4,
        sampling_steps=args.sampling_steps,
        context_weight=args.context_weight,
        prediction=args.prediction,
        eta=args.eta,
    )
    model = CUGD(prior, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(
        f"CUGD: {trainable:,} trainable parameters, prior {type(prior).__name__} frozen; "
        f"training for {args.steps} steps" + (f" (at most {args.minutes} min)" if args.minutes else "")
    )
    trainer = Trainer(
        model,
        cugd_training_loss,
        data,
        TrainConfig(
            steps=args.steps,
            batch_size=args.batch,
            lr=args.lr,
            lr_schedule=args.lr_schedule,
            seed=args.seed,
            progress=False,
            log_every=10,
        ),
        device="cpu",
    )
    t0 = time.perf_counter()
    while trainer.step < args.steps and (args.minutes is None or time.perf_counter() - t0 < 60 * args.minutes):
        res = trainer.fit(steps=2)
        if trainer.step % 4 == 0:
            last = {k: v[-1][1] for k, v in res.curves.items() if v}
            print(
                f"  step {trainer.step:4d}  {time.perf_counter() - t0:6.1f}s  "
                + "  ".join(f"{k} {v:.4f}" for k, v in last.items())
            )

    model.eval()
    rows, scores = [], []
    g = torch.Generator().manual_seed(123)
    for name in ("astronaut", "coffee", "chelsea"):
        high = _resize_longest(clean[name], 128)[None]
        low = synthesize_low_light(high, LowLightConfig(), g)
        enhanced = model.enhance(low, generator=torch.Generator().manual_seed(args.seed))
        rows.append([low, enhanced, high])
        scores.append((name, float(psnr(low, high)), float(psnr(enhanced, high))))
    for name, a, b in scores:
        print(f"  {name:10s} PSNR low {a:5.2f} dB -> CUGD ({cfg.sampling_steps} DDIM steps) {b:5.2f} dB")
    path = save_grid(args.out / "cugd_grid.png", rows, ["low", f"CUGD ({cfg.sampling_steps} DDIM steps)", "reference"])
    print(f"wrote {path}")
    if args.photos is not None:
        from _photos import check_photos

        from semprior.engine.tiling import enhance_image

        def enhance_photo(x: torch.Tensor) -> torch.Tensor:  # tiles bound the bottleneck attention's memory
            torch.manual_seed(args.seed)  # the DDIM start noise
            return enhance_image(model, x, tile=args.photo_tile)

        check_photos(enhance_photo, args.photos, args.out, "cugd", args.photo_limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
