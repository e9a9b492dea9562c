r"""Exposure and structure apart: a global-brightness term and a GT-mean-corrected pixel term.

Most of the error a low-light enhancer leaves on LOL-v1 is the global brightness of the whole
image (the GT-mean protocol, which rescales the output to the reference's mean, adds 4-5 dB). A
plain MSE mixes that global error with the structure error. These two terms separate them:

- [`exposure_loss`][semprior.losses.exposure.exposure_loss]: $|\log(\bar y + \epsilon) - \log(\bar x + \epsilon)|$,
  the relative error of the mean grey level (a scene-level quantity the network must infer from
  the whole image);
- [`gtmean_loss`][semprior.losses.exposure.gtmean_loss]: the pixel loss after the output is scaled
  to the reference's mean, $\ell(x \cdot \bar y / \bar x,\ y)$: structure and colour, blind to
  global brightness (the same correction as the GT-mean metric protocol, but differentiable).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from semprior._checks import check_image, check_reduction, check_same_shape, reduce
from semprior.losses.pixel import pixel_loss

__all__ = ["ExposureLoss", "GTMeanLoss", "exposure_loss", "gtmean_loss"]


def exposure_loss(
    input: Tensor, target: Tensor, eps: float = 1e-3, reduction: Literal["mean", "sum", "none"] = "mean"
) -> Tensor:
    """``|log(mean(target) + eps) - log(mean(input) + eps)|`` per sample (means over channels and pixels).

    Shape:
        - Input: `(B, C, H, W)` twice
        - Output: scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> x = torch.full((1, 3, 4, 4), 0.25); y = torch.full((1, 3, 4, 4), 0.5)
        >>> round(exposure_loss(x, y, eps=0).item(), 4)  # log 2
        0.6931
    """
    check_image(input, "input", channels=None)
    check_image(target, "target", channels=None)
    check_same_shape(input, target)
    check_reduction(reduction)
    mx, my = input.flatten(1).mean(1), target.flatten(1).mean(1)
    return reduce((torch.log(my + eps) - torch.log(mx + eps)).abs(), reduction)


def gtmean_loss(
    input: Tensor,
    target: Tensor,
    kind: Literal["mse", "l1", "charbonnier"] = "mse",
    eps: float = 1e-3,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> Tensor:
    """[`pixel_loss`][semprior.losses.pixel.pixel_loss] of ``input * mean(target) / mean(input)`` against ``target``.

    The gain is part of the graph (not detached): the term does not change when the whole output
    is scaled, so it teaches structure and colour, never brightness.

    Shape:
        - Input: `(B, C, H, W)` twice
        - Output: scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> y = torch.rand(2, 3, 8, 8)
        >>> gtmean_loss(0.5 * y, y).item() < 1e-6  # a darker copy has the right structure
        True
    """
    check_image(input, "input", channels=None)
    check_image(target, "target", channels=None)
    check_same_shape(input, target)
    gain = (target.flatten(1).mean(1) + eps) / (input.flatten(1).mean(1) + eps)
    return pixel_loss(input * gain.view(-1, *([1] * (input.dim() - 1))), target, kind, reduction)


class ExposureLoss(nn.Module):
    """Module form of [`exposure_loss`][semprior.losses.exposure.exposure_loss].

    Examples:
        >>> ExposureLoss()(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)).shape
        torch.Size([])
    """

    def __init__(self, eps: float = 1e-3, reduction: Literal["mean", "sum", "none"] = "mean") -> None:
        super().__init__()
        self.eps, self.reduction = eps, check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return exposure_loss(input, target, self.eps, self.reduction)


class GTMeanLoss(nn.Module):
    """Module form of [`gtmean_loss`][semprior.losses.exposure.gtmean_loss].

    Examples:
        >>> GTMeanLoss(kind="l1")(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)).shape
        torch.Size([])
    """

    def __init__(
        self,
        kind: Literal["mse", "l1", "charbonnier"] = "mse",
        eps: float = 1e-3,
        reduction: Literal["mean", "sum", "none"] = "mean",
    ) -> None:
        super().__init__()
        self.kind, self.eps, self.reduction = kind, eps, check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return gtmean_loss(input, target, self.kind, self.eps, self.reduction)
