"""SLLEN in under a CPU minute: alternating LLE / segmentation training, then enhance and write a grid.

Training runs on ``semprior.engine.Trainer`` with SLLEN's alternating schedule (``sllen_phases``):
an LLE step on pairs synthesised (physics-based low-light synthesis) from the photos bundled with
scikit-image, then a segmentation step on procedural shapes (``SyntheticSegmentation``), darkened
by the same synthesis (``LowLightSegmentation``) so the shared encoder sees dark inputs in both
tasks. For real use, replace the segmentation data with ``semprior.data.SegmentationFolder``
(Cityscapes, ADE20K, ...) or train from YAML: ``semprior train --config configs/sllen_lolv1.yaml``.

    python examples/sllen.py --out runs/sllen
    python examples/sllen.py --steps 96 --photos ../shared/data/lime --out runs/sllen

Budget: 96 steps (48 of each task), about 25 CPU seconds on one thread. ``--photos DIR`` then
enhances real low-light photos (``examples/_photos.py``). On the 9 LIME photos
(``benchmarks/results/examples.md``): brightness 0.139 -> 0.509, NIQE 4.563 -> 4.343 (brighter,
NIQE not worse). A demonstration of the schedule on synthetic pairs: the colours are off and
the result is soft; train on LOL-v1 (``semprior train --config``) for a real model.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from semprior.data import LowLightSegmentation, SyntheticSegmentation
from semprior.data.samples import default_clean_images
from semprior.data.synthesis import LowLightConfig, SyntheticPairs, synthesize_low_light
from semprior.engine import TrainConfig, Trainer
from semprior.engine.grid import save_grid
from semprior.metrics.psnr import psnr
from semprior.models.sllen import SLLEN, SLLENConfig, sllen_phases


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=96, help="training steps (the budget)")
    p.add_argument("--minutes", type=float, default=None, help="optional wall-clock cap on training (minutes)")
    p.add_argument("--out", type=Path, default=Path("runs/sllen"), help="output folder for the grid")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument(
        "--pool", type=int, default=48, help="synthesised training pairs, made once (synthesis is the slow part on CPU)"
    )
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--photos",
        type=Path,
        default=None,
        help="folder of real low-light photos to enhance after training (e.g. LOL-v1 eval15/low): "
        "brightness and NIQE of input vs result, written to OUT/photos.json",
    )
    p.add_argument("--photo-limit", type=int, default=None, help="use only the first N photos of --photos")
    return p.parse_args(argv)


def _resize_longest(img: torch.Tensor, side: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    s = side / max(h, w)
    return F.interpolate(
        img[None], size=(round(h * s), round(w * s)), mode="bilinear", antialias=True, align_corners=False
    )[0]


def colorize(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    palette = torch.rand(num_classes, 3, generator=torch.Generator().manual_seed(3))
    return palette[labels].permute(0, 3, 1, 2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.steps <= 0:
        raise ValueError(f"--steps must be > 0, got {args.steps}")
    if args.minutes is not None and args.minutes <= 0:
        raise ValueError(f"--minutes must be > 0, got {args.minutes}")
    torch.manual_seed(args.seed)
    clean = default_clean_images()
    synth = SyntheticPairs(clean, patch_size=args.patch, length=args.pool, seed=args.seed)
    pool = [synth[i] for i in range(args.pool)]
    seg_ds = LowLightSegmentation(
        SyntheticSegmentation(64, size=args.patch, num_classes=4, seed=args.seed), seed=args.seed
    )

    model = SLLEN(SLLENConfig(width=args.width, depth=args.depth, num_classes=seg_ds.num_classes))
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch,
        lr=args.lr,
        lr_schedule="constant",
        log_every=1,
        seed=args.seed,
        progress=False,
    )  # stopped by the time budget below
    trainer = Trainer(model, sllen_phases(lle_steps=1, seg_steps=1), {"train": pool, "segmentation": seg_ds}, cfg)
    print(
        f"SLLEN: {sum(p.numel() for p in model.parameters()):,} parameters; training for {args.steps} steps"
        + (f" (at most {args.minutes} min)" if args.minutes else "")
    )
    t0 = time.perf_counter()
    while trainer.step < args.steps and (args.minutes is None or time.perf_counter() - t0 < 60 * args.minutes):
        trainer.fit(steps=8)
        lle = [v for _, v in trainer.curves["lle/loss"][-4:]]
        seg = [v for _, v in trainer.curves["seg/loss"][-4:]]
        print(
            f"  step {trainer.step:4d}  {time.perf_counter() - t0:6.1f}s  lle L1 {sum(lle) / len(lle):.4f}  seg "
            f"CE {sum(seg) / len(seg):.4f}"
        )

    model.eval()
    rows, scores = [], []
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for name in ("astronaut", "coffee", "chelsea"):
            high = _resize_longest(clean[name], 192)[None]
            low = synthesize_low_light(high, LowLightConfig(), g)
            out = model.forward_all(low)
            enhanced = out.image.clamp(0, 1)
            seg = colorize(out.seg_logits.argmax(1), seg_ds.num_classes)
            rows.append([low, enhanced, high, seg])
            scores.append((name, float(psnr(low, high)), float(psnr(enhanced, high))))
    for name, a, b in scores:
        print(f"  {name:10s} PSNR low {a:5.2f} dB -> SLLEN {b:5.2f} dB")
    path = save_grid(args.out / "sllen_grid.png", rows, ["low", "SLLEN", "reference", "aux segmentation"])
    print(f"wrote {path}")
    if args.photos is not None:
        from _photos import check_photos

        check_photos(lambda x: model(x).clamp(0, 1), args.photos, args.out, "sllen", args.photo_limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
