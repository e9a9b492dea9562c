"""Retinexformer's illumination estimator, parameter for parameter.

Cai et al., "Retinexformer: One-stage Retinex-based Transformer for Low-light Image
Enhancement", ICCV 2023 (``Illumination_Estimator`` in the official ``RetinexFormer_arch.py``).
The image and its channel mean are stacked (4 channels), lifted by a 1x1 conv, mixed by a
5x5 depthwise-grouped conv (``groups=n_fea_in``) into the *illumination features*, and a
final 1x1 conv gives the *illumination map*.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from semprior._bands import conv_rows, halo
from semprior._checks import check_image

__all__ = ["IlluminationEstimator"]


class IlluminationEstimator(nn.Module):
    r"""Estimate illumination features and an illumination map from an image.

    Reproduces Retinexformer's ``Illumination_Estimator(n_fea_middle, n_fea_in=4, n_fea_out=3)``
    layer for layer (same attribute names ``conv1``, ``depth_conv``, ``conv2``, so official
    state dicts load with ``strict=True``):

    - ``conv1``: 1x1 conv, ``n_fea_in -> n_fea_middle``, bias;
    - ``depth_conv``: 5x5 conv, padding 2, ``groups=n_fea_in``, bias;
    - ``conv2``: 1x1 conv, ``n_fea_middle -> n_fea_out``, bias.

    The input to ``conv1`` is ``cat(img, img.mean(dim=1, keepdim=True))``, so ``n_fea_in`` is the
    image channel count plus one (4 for RGB). The map is returned raw (no activation): in
    Retinexformer it is a light-up map used as ``img * map + img``; consumers that need an
    illumination in ``(0, 1]`` (e.g. [`RetinexDecomposer`][semprior.retinex.decomposer.RetinexDecomposer])
    apply their own activation.

    Args:
        n_fea_middle: width of the illumination features; must be divisible by ``n_fea_in``.
        n_fea_in: input channels of ``conv1`` (image channels + 1 for the mean). Default 4.
        n_fea_out: channels of the illumination map. Default 3.

    The forward returns ``(illu_fea, illu_map)`` as in the original.

    Shape:
        - Input: `(B, n_fea_in - 1, H, W)`
        - Output: `(B, n_fea_middle, H, W)` features and `(B, n_fea_out, H, W)` map.

    Examples:
        >>> est = IlluminationEstimator(40)
        >>> fea, illu = est(torch.rand(2, 3, 16, 16))
        >>> fea.shape, illu.shape
        (torch.Size([2, 40, 16, 16]), torch.Size([2, 3, 16, 16]))
        >>> sum(p.numel() for p in est.parameters())
        10363
    """

    def __init__(self, n_fea_middle: int, n_fea_in: int = 4, n_fea_out: int = 3) -> None:
        super().__init__()
        if n_fea_in < 2:
            raise ValueError(f"n_fea_in must be at least 2 (image channels + 1 mean channel), got {n_fea_in}")
        if n_fea_middle <= 0 or n_fea_middle % n_fea_in != 0:
            raise ValueError(
                f"n_fea_middle must be a positive multiple of n_fea_in={n_fea_in} (the depthwise conv uses "
                f"groups=n_fea_in), got {n_fea_middle}; e.g. use {max(1, round(n_fea_middle / n_fea_in)) * n_fea_in}"
            )
        if n_fea_out <= 0:
            raise ValueError(f"n_fea_out must be positive, got {n_fea_out}")
        self.n_fea_in = n_fea_in
        self.n_fea_middle = n_fea_middle
        self.n_fea_out = n_fea_out
        self.conv1 = nn.Conv2d(n_fea_in, n_fea_middle, kernel_size=1, bias=True)
        self.depth_conv = nn.Conv2d(n_fea_middle, n_fea_middle, kernel_size=5, padding=2, bias=True, groups=n_fea_in)
        self.conv2 = nn.Conv2d(n_fea_middle, n_fea_out, kernel_size=1, bias=True)

    def lift(self, img: Tensor) -> Tensor:
        """``conv1(cat(img, mean_c(img)))``: the point-wise part before the depthwise conv."""
        return self.conv1(torch.cat([img, img.mean(dim=1, keepdim=True)], dim=1))

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor]:
        check_image(img, "img", channels=self.n_fea_in - 1)
        illu_fea = self.depth_conv(self.lift(img))
        return illu_fea, self.conv2(illu_fea)

    def rows(self, img: Tensor, r0: int, r1: int) -> tuple[Tensor, Tensor]:
        """Rows ``r0:r1`` of `forward` on the full (already validated) ``img``, computed from the
        image rows ``r0 - 2 : r1 + 2`` only (the 5x5 conv's halo): exact low-memory inference.

        Shape:
            - img: `(B, n_fea_in - 1, H, W)` -> `(B, n_fea_middle, r1 - r0, W)` and `(B, n_fea_out, r1 - r0, W)`
        """
        h = img.shape[-2]
        a0, a1 = halo(r0, r1, h, self.depth_conv.kernel_size[0] // 2)  # its padding: a 5x5 conv, padding 2
        illu_fea = conv_rows(self.lift(img[:, :, a0:a1]), self.depth_conv, r0, r1, h, a0)
        return illu_fea, self.conv2(illu_fea)

    def extra_repr(self) -> str:
        return f"n_fea_middle={self.n_fea_middle}, n_fea_in={self.n_fea_in}, n_fea_out={self.n_fea_out}"
