"""Mixed precision runs the network, never the loss: [`fp32_loss`][semprior.losses.precision.fp32_loss]."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["fp32_loss"]


def fp32_loss(criterion: Callable[[Tensor, Tensor], Any], output: Tensor, target: Tensor) -> Any:
    """``criterion(output, target)`` in float32, with autocast switched off while it runs.

    Under ``torch.autocast`` (``train.precision: bf16``) a network's output may be bfloat16, and the
    loss's own convolutions (SSIM's Gaussian window, Sobel edges, a prior's forward for the semantic
    KL) would run in bfloat16 too: three significant digits for a value whose changes are smaller.
    Training losses call this so that only the network runs in the lower precision. Without autocast
    it is ``criterion(output, target)`` unchanged.

    Examples:
        >>> x = torch.rand(1, 3, 4, 4)
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     fp32_loss(lambda a, b: (a - b).square().mean(), x.bfloat16(), x).dtype
        torch.float32
    """
    kind = output.device.type
    if not torch.is_autocast_enabled(kind):
        return criterion(output, target)
    with torch.autocast(kind, enabled=False):
        return criterion(output.float(), target.float())
