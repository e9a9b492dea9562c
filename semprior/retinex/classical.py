"""Parameter-free Retinex decomposition: smoothed max-RGB illumination, exact reconstruction."""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor

from semprior._checks import check_image
from semprior.retinex.decomposer import RetinexOutput

__all__ = ["classical_decompose", "smooth_illumination"]


def smooth_illumination(
    lmax: Tensor,
    smooth: float = 2.0,
    method: Literal["gaussian", "guided"] = "gaussian",
    guide: Tensor | None = None,
    eps_guided: float = 1e-3,
) -> Tensor:
    """Smooth a `(B, 1, H, W)` illumination estimate.

    ``"gaussian"`` blurs with a Gaussian of standard deviation ``smooth`` pixels
    (kornia ``gaussian_blur2d``, reflect padding); ``"guided"`` applies kornia's edge-preserving
    guided filter with radius ``ceil(2 * smooth)`` guided by ``guide`` (default: ``lmax`` itself).
    ``smooth=0`` returns the input unchanged. On images smaller than the window, the window is
    truncated per axis to fit (reflect padding needs it). Smoothing can lower the map below the input at
    bright peaks; callers that need ``L >= max(I)`` take ``torch.maximum`` afterwards.

    Shape:
        - Input: `(B, 1, H, W)`
        - Output: `(B, 1, H, W)`

    Examples:
        >>> smooth_illumination(torch.rand(1, 1, 16, 16), smooth=1.5).shape
        torch.Size([1, 1, 16, 16])
    """
    import kornia

    if smooth < 0:
        raise ValueError(f"smooth must be >= 0 (a blur sigma in pixels), got {smooth}")
    if smooth == 0:
        return lmax
    h, w = lmax.shape[-2:]

    def fit(k: int, n: int) -> int:  # reflect padding needs k // 2 < n: truncate the window
        return max(1, min(k, 2 * (n - 1) + 1 if n > 1 else 1))

    if method == "gaussian":
        k = 2 * int(round(3 * smooth)) + 1
        kh, kw = fit(k, h), fit(k, w)
        if kh == 1 and kw == 1:
            return lmax
        return kornia.filters.gaussian_blur2d(lmax, (kh, kw), (smooth, smooth), border_type="reflect")
    if method == "guided":
        r = max(1, math.ceil(2.0 * smooth))
        kh, kw = fit(2 * r + 1, h), fit(2 * r + 1, w)
        if kh == 1 and kw == 1:
            return lmax
        g = lmax if guide is None else guide
        return kornia.filters.guided_blur(g, lmax, (kh, kw), eps_guided, border_type="reflect")
    raise ValueError(f"method must be 'gaussian' or 'guided', got {method!r}")


def classical_decompose(
    img: Tensor,
    smooth: float = 2.0,
    method: Literal["gaussian", "guided"] = "gaussian",
    eps: float = 1e-4,
) -> RetinexOutput:
    r"""Decompose an image into reflectance and illumination without learned parameters.

    The illumination is the max-RGB map $\max_c I_c$ (the LIME initial estimate),
    smoothed (see [`smooth_illumination`][semprior.retinex.classical.smooth_illumination]) and clamped to ``[eps, 1]``;
    the reflectance is $R = I / L$ with **no clamping**, so ``R * L`` reproduces the input up to float
    rounding (``R`` may exceed 1 where smoothing lowered ``L`` below a pixel's value).
    ``features`` holds the `(B, 1, H, W)` unsmoothed max-RGB map.

    Args:
        img: `(B, 3, H, W)` image in ``[0, 1]``.
        smooth: Gaussian sigma in pixels (``0`` = no smoothing, the plain max-RGB).
        method: ``"gaussian"`` or ``"guided"`` (edge-preserving, kornia ``guided_blur``).
        eps: lower bound of the illumination.

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: [`RetinexOutput`][semprior.retinex.decomposer.RetinexOutput] with reflectance
          `(B, 3, H, W)`, illumination `(B, 1, H, W)`, features `(B, 1, H, W)`.

    Examples:
        >>> img = torch.rand(1, 3, 16, 16)
        >>> out = classical_decompose(img, smooth=1.0)
        >>> torch.allclose(out.reflectance * out.illumination, img, atol=1e-6)
        True
    """
    check_image(img, "img")
    if not eps > 0:
        raise ValueError(f"eps must be > 0 (it keeps I / L finite), got {eps}")
    lmax = img.amax(dim=1, keepdim=True)
    illum = smooth_illumination(lmax, smooth, method).clamp(eps, 1.0)
    return RetinexOutput(reflectance=img / illum, illumination=illum, features=lmax)
