"""Classical, parameter-free enhancers as ``nn.Module`` baselines: ``(B, 3, H, W) -> (B, 3, H, W)``.

They have no learnable parameters and no training; they exist so that learned models are
always reported beside honest baselines under the same :class:`~semprior.metrics.MetricProtocol`.
``CLASSICAL`` maps a CLI name to the class.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from semprior._checks import check_image
from semprior.retinex.classical import smooth_illumination

__all__ = ["CLAHE", "CLASSICAL", "Gamma", "HistogramEqualization", "Identity", "LIMERetinex"]


class Identity(nn.Module):
    """Return the input unchanged (the "raw input" row of a results table).

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Example:
        >>> x = torch.rand(1, 3, 4, 4)
        >>> bool(torch.equal(Identity()(x), x))
        True
    """

    def forward(self, img: Tensor) -> Tensor:
        return check_image(img, "img")


class Gamma(nn.Module):
    r"""Global gamma curve :math:`I^{\gamma}` (``gamma < 1`` brightens).

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Example:
        >>> Gamma(0.5)(torch.full((1, 3, 2, 2), 0.25))[0, 0, 0, 0].item()
        0.5
    """

    def __init__(self, gamma: float = 0.4) -> None:
        super().__init__()
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)

    def forward(self, img: Tensor) -> Tensor:
        check_image(img, "img")
        return img.clamp(0.0, 1.0).pow(self.gamma)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


def _apply_on_value(img: Tensor, fn) -> Tensor:
    import kornia

    hsv = kornia.color.rgb_to_hsv(img.clamp(0.0, 1.0))
    v = fn(hsv[:, 2:3].contiguous())
    return kornia.color.hsv_to_rgb(torch.cat([hsv[:, :2], v.clamp(0.0, 1.0)], dim=1)).clamp(0.0, 1.0)


class HistogramEqualization(nn.Module):
    """Global histogram equalisation of the HSV value channel (``kornia.enhance.equalize``).

    Hue and saturation are kept. Not differentiable (histogram binning). A global method
    (``tileable = False``): :func:`~semprior.engine.tiling.enhance_image` runs it on the whole
    image even when tiling is asked for, since tiles would each get their own histogram.

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Example:
        >>> HistogramEqualization()(torch.rand(1, 3, 16, 16) * 0.2).shape
        torch.Size([1, 3, 16, 16])
    """

    tileable = False

    def forward(self, img: Tensor) -> Tensor:
        import kornia

        check_image(img, "img")
        return _apply_on_value(img, kornia.enhance.equalize)


class CLAHE(nn.Module):
    """Contrast-limited adaptive histogram equalisation (``kornia.enhance.equalize_clahe``).

    Applied to the Lab lightness ``L`` (default, chroma kept) or to the HSV value channel.
    ``clip_limit`` follows kornia's convention (relative to the uniform bin height, as OpenCV's).
    The ``grid_size`` cells divide the whole image, so CLAHE is not tileable (``tileable = False``):
    :func:`~semprior.engine.tiling.enhance_image` runs it on the whole image.

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Example:
        >>> CLAHE()(torch.rand(1, 3, 32, 32) * 0.2).shape
        torch.Size([1, 3, 32, 32])
    """

    tileable = False

    def __init__(self, clip_limit: float = 2.0, grid_size: tuple[int, int] = (8, 8), space: Literal["lab", "hsv"] = "lab") -> None:
        super().__init__()
        if not clip_limit > 0:
            raise ValueError(f"clip_limit must be > 0, got {clip_limit}")
        if space not in ("lab", "hsv"):
            raise ValueError(f"space must be 'lab' or 'hsv', got {space!r}")
        self.clip_limit = float(clip_limit)
        self.grid_size = tuple(grid_size)
        self.space = space

    def _clahe(self, ch: Tensor) -> Tensor:
        import kornia

        return kornia.enhance.equalize_clahe(ch, clip_limit=self.clip_limit, grid_size=self.grid_size)

    def forward(self, img: Tensor) -> Tensor:
        import kornia

        check_image(img, "img")
        if self.space == "hsv":
            return _apply_on_value(img, self._clahe)
        lab = kornia.color.rgb_to_lab(img.clamp(0.0, 1.0))
        lum = self._clahe((lab[:, :1] / 100.0).clamp(0.0, 1.0).contiguous()) * 100.0
        return kornia.color.lab_to_rgb(torch.cat([lum, lab[:, 1:]], dim=1), clip=True)

    def extra_repr(self) -> str:
        return f"clip_limit={self.clip_limit}, grid_size={self.grid_size}, space={self.space!r}"


class LIMERetinex(nn.Module):
    r"""LIME-style Retinex enhancement (Guo et al., TIP 2017), simplified.

    Illumination: the max-RGB map, smoothed (Gaussian sigma ``smooth`` or kornia's guided
    filter), kept at least ``eps``; gamma-adjusted :math:`L^{\gamma}` (``gamma=0.8``); output
    :math:`\mathrm{clamp}(I / L^{\gamma}, 0, 1)`. LIME's structure-aware optimisation of ``L``
    is replaced by the smoothing filter; there is no denoising step.

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Example:
        >>> y = LIMERetinex()(torch.rand(1, 3, 16, 16) * 0.2)
        >>> y.shape, bool(y.max() <= 1)
        (torch.Size([1, 3, 16, 16]), True)
    """

    def __init__(
        self,
        gamma: float = 0.8,
        smooth: float = 2.0,
        method: Literal["gaussian", "guided"] = "gaussian",
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if smooth < 0:
            raise ValueError(f"smooth must be >= 0, got {smooth}")
        if method not in ("gaussian", "guided"):
            raise ValueError(f"method must be 'gaussian' or 'guided', got {method!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.gamma, self.smooth, self.method, self.eps = float(gamma), float(smooth), method, float(eps)

    def illumination(self, img: Tensor) -> Tensor:
        """The gamma-adjusted illumination `(B, 1, H, W)` that the image is divided by."""
        check_image(img, "img")
        lmax = img.clamp(0.0, 1.0).amax(dim=1, keepdim=True)
        return smooth_illumination(lmax, self.smooth, self.method).clamp(self.eps, 1.0).pow(self.gamma)

    def forward(self, img: Tensor) -> Tensor:
        check_image(img, "img")
        return (img.clamp(0.0, 1.0) / self.illumination(img)).clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, smooth={self.smooth}, method={self.method!r}"


#: CLI name -> class (the one table for this family; construct with defaults or keyword args).
CLASSICAL: dict[str, type[nn.Module]] = {
    "identity": Identity,
    "gamma": Gamma,
    "he": HistogramEqualization,
    "clahe": CLAHE,
    "lime": LIMERetinex,
}
