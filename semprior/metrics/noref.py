"""Simple no-reference statistics of an image: exposure, contrast, colour and noise.

Each takes `(B, 3, H, W)` in ``[0, 1]`` and returns `(B,)` float64 (luminance: BT.601 weights).

- `brightness`: mean luminance, ``[0, 1]``;
- `exposure_clipping`: fraction of pixels with luminance below ``0.02`` (crushed shadows) and
  above ``0.98`` (blown highlights);
- `rms_contrast`: standard deviation of the luminance;
- `colorfulness`: Hasler & Süsstrunk (2003), ``sqrt(σ_rg² + σ_yb²) + 0.3 sqrt(μ_rg² + μ_yb²)`` on
  ``[0, 255]`` values (``rg = R - G``, ``yb = (R + G) / 2 - B``; ~0 for gray, ~33 "moderately
  colourful", > 100 extreme);
- `noise_sigma`: Immerkær (1996) fast noise estimate, the standard deviation of additive
  Gaussian noise in 8-bit levels, from the Laplacian-difference mask
  ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` on the luminance (textured images read higher).

[`noref_scores`][semprior.metrics.noref.noref_scores] gathers them with [`niqe`][semprior.metrics.niqe.niqe].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from semprior._checks import check_image

__all__ = ["brightness", "colorfulness", "exposure_clipping", "noise_sigma", "noref_scores", "rms_contrast"]

_Y = (0.299, 0.587, 0.114)


def _luma(img: Tensor) -> Tensor:
    check_image(img, "img", unit_range=True)
    w = torch.tensor(_Y, dtype=torch.float64, device=img.device).view(1, 3, 1, 1)
    return (img.to(torch.float64) * w).sum(1)


def brightness(img: Tensor) -> Tensor:
    """Mean luminance per image.

    Examples:
        >>> round(brightness(torch.full((1, 3, 4, 4), 0.5)).item(), 6)
        0.5
    """
    return _luma(img).mean((-2, -1))


def exposure_clipping(img: Tensor, low: float = 0.02, high: float = 0.98) -> tuple[Tensor, Tensor]:
    """``(fraction below low, fraction above high)`` of the luminance, per image."""
    y = _luma(img)
    return (y < low).double().mean((-2, -1)), (y > high).double().mean((-2, -1))


def rms_contrast(img: Tensor) -> Tensor:
    """Standard deviation of the luminance per image."""
    return _luma(img).flatten(1).std(-1, unbiased=False)


def colorfulness(img: Tensor) -> Tensor:
    """Hasler–Süsstrunk colourfulness on ``[0, 255]`` values.

    Examples:
        >>> colorfulness(torch.full((1, 3, 8, 8), 0.4)).tolist()
        [0.0]
    """
    check_image(img, "img", unit_range=True)
    r, g, b = (img.to(torch.float64) * 255).unbind(1)
    rg, yb = (r - g).flatten(1), ((r + g) / 2 - b).flatten(1)
    std = (rg.var(-1, unbiased=False) + yb.var(-1, unbiased=False)).sqrt()
    mean = (rg.mean(-1).square() + yb.mean(-1).square()).sqrt()
    return std + 0.3 * mean


def noise_sigma(img: Tensor) -> Tensor:
    """Immerkær's noise standard deviation in 8-bit levels (needs ``H, W >= 3``).

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = (0.5 + 10 / 255 * torch.randn(1, 3, 256, 256, generator=g)).clamp(0, 1)
        >>> round(noise_sigma(x).item())   # gray + i.i.d. noise of 10 levels per channel: luma sigma ~ 6.7
        7
    """
    y = _luma(img) * 255
    if y.shape[-1] < 3 or y.shape[-2] < 3:
        raise ValueError(f"noise_sigma needs images of at least 3x3 pixels, got {tuple(y.shape[-2:])}")
    k = torch.tensor([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=torch.float64, device=y.device)[None, None]
    conv = F.conv2d(y[:, None], k).abs().sum((-3, -2, -1))
    h, w = y.shape[-2:]
    return conv * math.sqrt(math.pi / 2) / (6 * (w - 2) * (h - 2))


def noref_scores(img: Tensor, niqe_model=None) -> dict[str, Tensor]:
    """Every no-reference score of this package, each `(B,)`: ``niqe`` (NaN below 96x96 pixels), ``brightness``,
    ``dark_fraction``, ``bright_fraction``, ``contrast``, ``colorfulness``, ``noise``."""
    from semprior.metrics.niqe import PATCH, niqe

    b = img.shape[0]
    small = min(img.shape[-2:]) < PATCH
    dark, bright = exposure_clipping(img)
    return {
        "niqe": torch.full((b,), math.nan, dtype=torch.float64) if small else niqe(img, niqe_model),
        "brightness": brightness(img),
        "dark_fraction": dark,
        "bright_fraction": bright,
        "contrast": rms_contrast(img),
        "colorfulness": colorfulness(img),
        "noise": noise_sigma(img),
    }
