"""Small building blocks shared by the attention blocks: channel LayerNorm and Restormer's GDFN."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._bands import conv_rows


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a ``(B, C, H, W)`` map (Restormer's ``WithBias_LayerNorm``).

    Shape:
        - x: ``(B, C, H, W)`` -> ``(B, C, H, W)``

    Examples:
        >>> import torch
        >>> ChannelLayerNorm(8)(torch.randn(2, 8, 5, 7)).shape
        torch.Size([2, 8, 5, 7])
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        # normalise the last axis of the (B, H, W, C) view: no copy when x is channels-last; the
        # output has x's values in the channels-last layout either way
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class GatedDConvFeedForward(nn.Module):
    """Restormer's gated depthwise-conv feed-forward network (GDFN).

    ``project_in`` (1x1, dim -> 2·hidden), a 3x3 depthwise conv, ``gelu(x1) * x2``, ``project_out``
    (1x1, hidden -> dim), with ``hidden = int(dim * expansion)``.

    Shape:
        - x: ``(B, dim, H, W)`` -> ``(B, dim, H, W)``

    Examples:
        >>> import torch
        >>> GatedDConvFeedForward(8)(torch.randn(1, 8, 6, 6)).shape
        torch.Size([1, 8, 6, 6])
    """

    def __init__(self, dim: int, expansion: float = 2.66, bias: bool = False) -> None:
        super().__init__()
        if expansion <= 0:
            raise ValueError(f"ffn expansion must be > 0, got {expansion}")
        hidden = max(1, int(dim * expansion))
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    @staticmethod
    def gate(hidden: Tensor) -> Tensor:
        """``gelu(x1) * x2`` of the two halves of the depthwise-conv output."""
        x1, x2 = hidden.chunk(2, dim=1)
        return gelu_mul(x1, x2)

    def forward(self, x: Tensor) -> Tensor:
        return self.project_out(self.gate(self.dwconv(self.project_in(x))))

    def rows(self, x: Tensor, r0: int, r1: int, h: int, src_row0: int = 0) -> Tensor:
        """Output rows ``r0:r1`` of `forward` on a full input of ``h`` rows, from ``x`` holding
        input rows ``src_row0:…`` (at least the one-row halo ``r0 - 1 : r1 + 1``, clipped).

        The same layers as `forward`; the hidden tensor (``2 · hidden`` channels) exists for
        these rows only, so a caller looping over bands never holds it for the whole image.

        Shape:
            - x: ``(B, dim, rows, W)`` -> ``(B, dim, r1 - r0, W)``
        """
        a0 = max(r0 - 1, 0)
        src = x[:, :, a0 - src_row0 : min(r1 + 1, h) - src_row0]
        n, w, b = self.project_out.in_channels, self.project_in.weight, self.project_in.bias
        # each half of the hidden tensor from its own output channels, so that both halves are dense
        # tensors: the gate on the two halves of one channels-last tensor is strided and 2-4x slower
        g1, g2 = (
            conv_rows(F.conv2d(src, w[part], None if b is None else b[part]), self.dwconv, r0, r1, h, a0, part)
            for part in (slice(0, n), slice(n, 2 * n))
        )
        return self.project_out(gelu_mul(g1, g2))


def gelu_mul(x1: Tensor, x2: Tensor) -> Tensor:
    """``gelu(x1) * x2`` (the GDFN's gate), in ``x1``'s layout.

    Channels-last inputs are computed as their ``(B, H, W, C)`` views: the same element-wise
    values, but PyTorch's CPU GELU runs about 2x faster on a contiguous tensor than on the same
    memory seen as a channels-last 4-D one.
    """
    cl = torch.channels_last
    if x1.dim() == 4 and x1.is_contiguous(memory_format=cl) and x2.is_contiguous(memory_format=cl):
        return F.gelu(x1.permute(0, 2, 3, 1)).mul_(x2.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return F.gelu(x1) * x2
