"""SSIM loss: ``1 - SSIM``, differentiable (Gaussian window, no quantisation)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from semprior._checks import check_reduction, reduce
from semprior.metrics.ssim import structural_similarity

__all__ = ["SSIMLoss", "ssim_loss"]


def ssim_loss(
    input: Tensor,
    target: Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> Tensor:
    """``1 - SSIM(input, target)`` per sample, then reduced.

    Uses [`semprior.metrics.ssim.structural_similarity`][semprior.metrics.ssim.structural_similarity] (the same math as
    the metric, without the metric's uint8 quantisation, so gradients flow). Images must be at least
    ``window_size`` pixels on each side.

    Shape:
        - Input: `(B, C, H, W)` twice
        - Output: scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> ssim_loss(x, x).item()
        0.0
    """
    check_reduction(reduction)
    return reduce(1.0 - structural_similarity(input, target, data_range, window_size, sigma), reduction)


class SSIMLoss(nn.Module):
    """Module form of [`ssim_loss`][semprior.losses.ssim.ssim_loss].

    Shape:
        - Input: `(B, C, H, W)` twice
        - Output: scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> SSIMLoss(window_size=7)(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)).shape
        torch.Size([])
    """

    def __init__(
        self,
        window_size: int = 11,
        sigma: float = 1.5,
        data_range: float = 1.0,
        reduction: Literal["mean", "sum", "none"] = "mean",
    ) -> None:
        super().__init__()
        if window_size < 1 or window_size % 2 == 0:
            raise ValueError(f"window_size must be a positive odd integer, got {window_size}")
        self.window_size = window_size
        self.sigma = sigma
        self.data_range = data_range
        self.reduction = check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return ssim_loss(input, target, self.window_size, self.sigma, self.data_range, self.reduction)

    def extra_repr(self) -> str:
        return f"window_size={self.window_size}, sigma={self.sigma}, reduction={self.reduction!r}"
