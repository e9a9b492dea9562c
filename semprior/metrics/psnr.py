"""Peak signal-to-noise ratio under an explicit [`MetricProtocol`][semprior.metrics.protocol.MetricProtocol]."""

from __future__ import annotations

import torch
from torch import Tensor

from semprior.metrics.protocol import MetricProtocol, prepare_pair

__all__ = ["psnr"]


def psnr(x: Tensor, y: Tensor, protocol: MetricProtocol | None = None) -> Tensor:
    r"""Per-image PSNR in dB: $10 \log_{10}(R^2 / \mathrm{MSE})$, MSE over all channels and pixels.

    Identical images give ``inf``. Average the returned values over a dataset yourself
    (papers report the mean of per-image PSNRs) and print ``protocol`` beside the number.

    Args:
        x: `(B, 3, H, W)` prediction in ``[0, data_range]``.
        y: `(B, 3, H, W)` target.
        protocol: defaults to ``MetricProtocol()`` (RGB, uint8-quantised, range 1, no crop, no GT-mean).

    Shape:
        - Input: `(B, 3, H, W)` twice
        - Output: `(B,)`

    Examples:
        >>> x = torch.zeros(1, 3, 4, 4); y = torch.full((1, 3, 4, 4), 0.1)
        >>> round(psnr(x, y, MetricProtocol(quantize=False)).item(), 3)
        20.0
    """
    protocol = MetricProtocol() if protocol is None else protocol
    a, b = prepare_pair(x, y, protocol)
    return _psnr_prepared(a.double(), b.double(), protocol.data_range).to(x.dtype)


def _psnr_prepared(a: Tensor, b: Tensor, data_range: float) -> Tensor:
    """PSNR of two prepared float64 images (the one formula behind `psnr` and `ReferenceScorer`)."""
    return _psnr_from_mse(torch.sub(a, b).square_().flatten(1).mean(dim=1), data_range)


def _psnr_from_mse(mse: Tensor, data_range: float) -> Tensor:
    """PSNR in dB from the mean squared error."""
    return 10.0 * torch.log10(data_range**2 / mse)
