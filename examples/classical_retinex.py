"""Classical Retinex enhancement of a synthetic low-light photo, with a before/after PNG.

A colour photo that scikit-image ships (no download) is darkened by semprior's own low-light
synthesis (exposure/tone curve, colour cast, Poisson-Gaussian noise, 8-bit quantisation),
enhanced by the parameter-free :class:`semprior.models.classical.LIMERetinex`, scored against
the clean photo under an explicit metric protocol, and written as ``low | enhanced | clean``.

    python examples/classical_retinex.py --out runs/classical
    python examples/classical_retinex.py --photos ../shared/data/lime --out runs/classical

Budget: no training, a few CPU seconds. ``--photos DIR`` also enhances real low-light photos
(``examples/_photos.py``). On the 9 LIME photos (``benchmarks/results/examples.md``):
brightness 0.139 -> 0.449, NIQE 4.563 -> 4.187 (brighter, NIQE not worse).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from semprior.data.io import write_image
from semprior.data.samples import DEFAULT_SAMPLE_NAMES, default_clean_images
from semprior.data.synthesis import LowLightConfig, synthesize_low_light
from semprior.metrics import MetricProtocol, psnr, ssim
from semprior.models.classical import Gamma, LIMERetinex
from semprior.retinex import classical_decompose


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder (created)")
    ap.add_argument("--image", default="astronaut", choices=DEFAULT_SAMPLE_NAMES, help="skimage.data photo")
    ap.add_argument("--seed", type=int, default=0, help="seed of the low-light synthesis")
    ap.add_argument("--exposure", type=float, default=0.15, help="darkening factor (0, 1]")
    ap.add_argument("--smooth", type=float, default=5.0, help="illumination smoothing sigma (px)")
    ap.add_argument("--gamma", type=float, default=0.8, help="illumination gamma of LIMERetinex")
    ap.add_argument("--crop", type=int, default=0, help="centre-crop the photo to this size (0 = full image)")
    ap.add_argument(
        "--photos",
        type=Path,
        default=None,
        help="folder of real low-light photos to enhance too (e.g. the LIME images): brightness and NIQE "
        "of input vs result, written to OUT/photos.json",
    )
    ap.add_argument("--photo-limit", type=int, default=None, help="use only the first N photos of --photos")
    args = ap.parse_args(argv)

    clean = default_clean_images((args.image,))[args.image][None]
    if args.crop:
        h, w = clean.shape[-2:]
        if not 11 <= args.crop <= min(h, w):
            raise SystemExit(
                f"--crop must be between 11 and {min(h, w)} for skimage.data.{args.image}, got {args.crop}"
            )
        top, left = (h - args.crop) // 2, (w - args.crop) // 2
        clean = clean[..., top : top + args.crop, left : left + args.crop]
    cfg = LowLightConfig(exposure=(args.exposure, args.exposure))
    low = synthesize_low_light(clean, cfg, generator=torch.Generator().manual_seed(args.seed))

    enhancer = LIMERetinex(gamma=args.gamma, smooth=args.smooth)
    with torch.no_grad():
        enhanced = enhancer(low)
        gamma_baseline = Gamma(0.4)(low)
    parts = classical_decompose(low, smooth=args.smooth)

    protocol = MetricProtocol()
    print(
        f"image: skimage.data.{args.image} {tuple(clean.shape[-2:])}, synthetic low light (exposure "
        f"{args.exposure}, seed {args.seed})"
    )
    print(f"protocol: {protocol}")
    for name, img in (("low input", low), ("gamma 0.4", gamma_baseline), ("LIMERetinex", enhanced)):
        print(
            f"  {name:12s} PSNR {psnr(img, clean, protocol).item():6.2f} dB  SSIM "
            f"{ssim(img, clean, protocol).item():.3f}"
        )

    args.out.mkdir(parents=True, exist_ok=True)
    panel = torch.cat([low, enhanced, clean], dim=-1)
    write_image(args.out / "before_after.png", panel)
    illum = parts.illumination.expand(-1, 3, -1, -1)
    write_image(args.out / "decomposition.png", torch.cat([illum, parts.reflectance.clamp(0, 1)], dim=-1))
    print(
        f"wrote {args.out / 'before_after.png'} (low | enhanced | clean) and {args.out / 'decomposition.png'} (L | R)"
    )
    if args.photos is not None:
        from _photos import check_photos

        check_photos(enhancer, args.photos, args.out, "LIMERetinex", args.photo_limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
