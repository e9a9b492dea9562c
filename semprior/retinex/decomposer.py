"""Learned one-stage Retinex decomposition: image -> reflectance, illumination, features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from semprior._checks import check_image, check_module_dtype
from semprior.retinex.illumination import IlluminationEstimator

__all__ = ["RetinexDecomposer", "RetinexOutput"]


@dataclass(frozen=True)
class RetinexOutput:
    """Named result of a Retinex decomposition.

    Attributes:
        reflectance: `(B, 3, H, W)`, ``img / illumination`` clamped to ``[0, 1]``.
        illumination: `(B, 1, H, W)` (``"gray"``) or `(B, 3, H, W)` (``"rgb"``), in ``[eps, 1]``.
        features: `(B, C, H, W)` illumination features (Retinexformer's ``illu_fea``), meant to
            guide attention (IG-MSA) in later blocks.
    """

    reflectance: Tensor
    illumination: Tensor
    features: Tensor


class RetinexDecomposer(nn.Module):
    r"""Learned Retinex decomposition following the one-stage Retinex idea (Retinexformer).

    An [`IlluminationEstimator`][semprior.retinex.illumination.IlluminationEstimator] maps ``cat(img, mean_c(img))``
    to illumination features ``F`` and a raw map; the illumination is

    $$
    L = \epsilon + (1 - \epsilon)\,\sigma(\text{map}) \in [\epsilon, 1],
    $$

    and the reflectance is $R = \mathrm{clamp}(I / L, 0, 1)$ (``L`` broadcast over RGB when
    ``illumination="gray"``). Where ``I <= L`` the product ``R * L`` reproduces ``I``; brighter
    pixels are clipped, as a reflectance cannot exceed 1. The module has no loss of its own: train
    it through the enhancer that consumes it.

    Args:
        channels: width ``C`` of the illumination features; a multiple of 4 (depthwise groups).
        illumination: ``"gray"`` for a single-channel illumination, ``"rgb"`` for one per channel.
        eps: lower bound of the illumination, keeps the division finite.

    Shape:
        - Input: `(B, 3, H, W)` in ``[0, 1]``
        - Output: [`RetinexOutput`][semprior.retinex.decomposer.RetinexOutput] with reflectance `(B, 3, H, W)`,
          illumination `(B, 1, H, W)` or `(B, 3, H, W)`, features `(B, C, H, W)`.

    Examples:
        >>> dec = RetinexDecomposer(channels=16, illumination="gray")
        >>> out = dec(torch.rand(2, 3, 8, 8))
        >>> out.reflectance.shape, out.illumination.shape, out.features.shape
        (torch.Size([2, 3, 8, 8]), torch.Size([2, 1, 8, 8]), torch.Size([2, 16, 8, 8]))
    """

    def __init__(
        self,
        channels: int = 40,
        illumination: Literal["gray", "rgb"] = "gray",
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        if illumination not in ("gray", "rgb"):
            raise ValueError(f"illumination must be 'gray' or 'rgb', got {illumination!r}")
        if not 0.0 < eps < 1.0:
            raise ValueError(f"eps must be in (0, 1), got {eps}")
        self.channels = channels
        self.illumination = illumination
        self.eps = float(eps)
        self.estimator = IlluminationEstimator(channels, n_fea_in=4, n_fea_out=1 if illumination == "gray" else 3)

    def forward(self, img: Tensor) -> RetinexOutput:
        check_module_dtype(check_image(img, "img"), self, "img")
        return self._compose(img, *self.estimator(img))

    def rows(self, img: Tensor, r0: int, r1: int) -> RetinexOutput:
        """Rows ``r0:r1`` of `forward` on the full (already validated) ``img``, from image rows
        ``r0 - 2 : r1 + 2`` only
        ([`IlluminationEstimator.rows`][semprior.retinex.illumination.IlluminationEstimator.rows]): exact low-memory
        inference.

        Shape:
            - img: `(B, 3, H, W)` -> [`RetinexOutput`][semprior.retinex.decomposer.RetinexOutput] of ``r1 - r0`` rows
        """
        return self._compose(img[:, :, r0:r1], *self.estimator.rows(img, r0, r1))

    def _compose(self, img: Tensor, features: Tensor, raw: Tensor) -> RetinexOutput:
        illum = self.eps + (1.0 - self.eps) * torch.sigmoid(raw)
        reflectance = (img / illum).clamp(0.0, 1.0)
        return RetinexOutput(reflectance=reflectance, illumination=illum, features=features)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, illumination={self.illumination!r}, eps={self.eps}"
