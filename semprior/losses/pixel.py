"""Pixel reconstruction loss: MSE (as in DeepSPG), L1 or Charbonnier."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from semprior._checks import check_image, check_reduction, check_same_shape, reduce

__all__ = ["PixelLoss", "pixel_loss"]

_KINDS = ("mse", "l1", "charbonnier")


def pixel_loss(
    input: Tensor,
    target: Tensor,
    kind: Literal["mse", "l1", "charbonnier"] = "mse",
    reduction: Literal["mean", "sum", "none"] = "mean",
    eps: float = 1e-3,
) -> Tensor:
    r"""Per-pixel distance between two images, averaged per sample, then reduced.

    - ``"mse"``: $(x - y)^2$
    - ``"l1"``: $|x - y|$
    - ``"charbonnier"``: $\sqrt{(x - y)^2 + \epsilon^2}$ (smooth L1, differentiable at 0)

    Args:
        input: `(B, C, H, W)` prediction.
        target: `(B, C, H, W)` reference, same shape.
        kind: the distance.
        reduction: ``"mean"`` / ``"sum"`` over the batch, or ``"none"`` for the `(B,)` per-sample values.
        eps: Charbonnier epsilon.

    Shape:
        - Input: `(B, C, H, W)` twice
        - Output: scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> x = torch.zeros(2, 3, 4, 4); y = torch.full((2, 3, 4, 4), 0.5)
        >>> pixel_loss(x, y).item(), pixel_loss(x, y, kind="l1", reduction="none").tolist()
        (0.25, [0.5, 0.5])
    """
    check_image(input, "input", channels=None)
    check_image(target, "target", channels=None)
    check_same_shape(input, target)
    check_reduction(reduction)
    diff = input - target
    if kind == "mse":
        d = diff.square()
    elif kind == "l1":
        d = diff.abs()
    elif kind == "charbonnier":
        if not eps > 0:
            raise ValueError(f"eps must be > 0 for the Charbonnier loss, got {eps}")
        d = torch.sqrt(diff.square() + eps * eps)
    else:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    return reduce(d.flatten(1).mean(dim=1), reduction)


class PixelLoss(nn.Module):
    """Module form of [`pixel_loss`][semprior.losses.pixel.pixel_loss] (same arguments).

    Shape:
        - Input: `(B, C, H, W)` twice
        - Output: scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> PixelLoss(kind="charbonnier")(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)).shape
        torch.Size([])
    """

    def __init__(
        self,
        kind: Literal["mse", "l1", "charbonnier"] = "mse",
        reduction: Literal["mean", "sum", "none"] = "mean",
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        self.kind = kind
        self.reduction = check_reduction(reduction)
        self.eps = eps

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return pixel_loss(input, target, self.kind, self.reduction, self.eps)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, reduction={self.reduction!r}"
