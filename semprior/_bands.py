"""Row-band helpers for exact low-memory inference: a local layer evaluated on rows ``r0:r1`` only.

A convolution's output rows ``r0:r1`` depend on a few more input rows (its *halo*). These helpers
compute exactly those output rows from the input rows they need, with the zero padding of the
full-image convolution applied only at the true image edges, so a chain of local layers run band
by band gives the full-image result (up to float summation order) without ever holding a
full-size intermediate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["band_rows", "conv_rows", "halo", "local_chain_rows", "row_bands"]

#: target pixels per band (about 256 KiB per channel in float32)
BAND_PIXELS = 65536
#: pixels per band of a whole model's banded inference (DeepSPG): its feed-forward holds
#: ``2 * 2.66 * C`` hidden channels per band (170 at ``C = 32``, about 680 bytes per pixel), so half
#: of ``BAND_PIXELS`` keeps a band's working set near the CPU caches. Measured side by side in one
#: process (one thread, random weights): 600x400 4.16 s at 32 rows vs 5.53 s at 108 rows; 1920x1080
#: 49.5 s at 16 rows vs 62.1 s at 34 rows (docs/performance.md)
MODEL_BAND_PIXELS = 32768


def band_rows(width: int, multiple: int = 2, pixels: int = BAND_PIXELS) -> int:
    """Rows per band for an image ``width`` pixels wide: about ``pixels`` per band, a multiple of ``multiple``."""
    rows = max(multiple, pixels // max(width, 1))
    return rows - rows % multiple


def row_bands(h: int, rows: int) -> Iterator[tuple[int, int]]:
    """``(r0, r1)`` covering ``0:h`` in steps of ``rows``."""
    if rows < 1:
        raise ValueError(f"band rows must be >= 1, got {rows}")
    for r0 in range(0, h, rows):
        yield r0, min(r0 + rows, h)


def halo(r0: int, r1: int, h: int, k: int = 1) -> tuple[int, int]:
    """Rows ``r0 - k : r1 + k`` clipped to the image ``0:h``."""
    return max(r0 - k, 0), min(r1 + k, h)


def conv_rows(
    src: Tensor, conv: nn.Conv2d, r0: int, r1: int, h: int, src_row0: int = 0, channels: slice | None = None
) -> Tensor:
    """Output rows ``r0:r1`` of ``conv`` applied to a full input of ``h`` rows.

    ``src`` holds input rows ``src_row0 : src_row0 + src.shape[-2]`` and must cover the rows the
    output needs (``r0 * stride - pad`` to ``(r1 - 1) * stride - pad + kernel``, clipped to the
    image). ``channels`` selects output channels of a depthwise conv (its matching input channels
    are ``src``'s channels).

    Shape:
        - src: ``(B, C_in, rows, W)`` -> ``(B, C_out, r1 - r0, W_out)``
    """
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError(
            f"conv_rows needs numeric zero padding, got padding={conv.padding!r}, mode={conv.padding_mode!r}"
        )
    kh, sh, ph, dh = conv.kernel_size[0], conv.stride[0], conv.padding[0], conv.dilation[0]
    need0, need1 = r0 * sh - ph, (r1 - 1) * sh - ph + dh * (kh - 1) + 1
    a0, a1 = max(need0, 0), min(need1, h)
    if a0 < src_row0 or a1 > src_row0 + src.shape[-2]:
        raise ValueError(f"rows {a0}:{a1} are needed but src holds rows {src_row0}:{src_row0 + src.shape[-2]}")
    f = src[:, :, a0 - src_row0 : a1 - src_row0]
    weight, bias, groups = conv.weight, conv.bias, conv.groups
    if channels is not None:
        if groups != conv.in_channels or groups != conv.out_channels:
            raise ValueError("channels= selects channels of a depthwise conv only")
        weight = weight[channels]
        bias = bias[channels] if bias is not None else None
        groups = weight.shape[0]
    if a0 == need0 and a1 == need1:  # an inner band: no padding
        return F.conv2d(
            f, weight, bias, stride=conv.stride, padding=(0, conv.padding[1]), dilation=conv.dilation, groups=groups
        )
    if sh == 1 and 2 * ph == dh * (kh - 1):
        # a 'same' conv at the image edge: pad inside the conv (no padded copy of the band) and
        # drop the output rows that saw the fake padding on the inner side
        out = F.conv2d(f, weight, bias, padding=conv.padding, dilation=conv.dilation, groups=groups)
        return out[:, :, r0 - a0 : r1 - a0]
    f = F.pad(f, (0, 0, a0 - need0, need1 - a1))
    return F.conv2d(
        f, weight, bias, stride=conv.stride, padding=(0, conv.padding[1]), dilation=conv.dilation, groups=groups
    )


def local_chain_rows(
    layers: Sequence[nn.Module] | nn.Sequential, src: Tensor, r0: int, r1: int, h: int, src_row0: int = 0
) -> Tensor:
    """Rows ``r0:r1`` of ``nn.Sequential(*layers)(full input)`` for stride-1 convs and element-wise layers.

    Each convolution shrinks the band by its halo; element-wise layers (activations) apply as is.
    ``src`` must hold the input rows ``r0 - halo_total : r1 + halo_total`` (clipped to ``0:h``).

    Shape:
        - src: ``(B, C_in, rows, W)`` -> ``(B, C_out, r1 - r0, W)``
    """
    for m in layers:
        if isinstance(m, nn.Conv2d) and (m.stride[0] != 1 or m.dilation[0] != 1 or isinstance(m.padding, str)):
            raise ValueError(f"local_chain_rows needs stride-1, dilation-1 convs with numeric padding, got {m}")
    pads = [int(m.padding[0]) if isinstance(m, nn.Conv2d) else 0 for m in layers]
    x, row0 = src, src_row0
    for i, m in enumerate(layers):
        if isinstance(m, nn.Conv2d):
            o0, o1 = halo(r0, r1, h, sum(pads[i + 1 :]))
            x, row0 = conv_rows(x, m, o0, o1, h, row0), o0
        else:
            x = m(x)
    return x[:, :, r0 - row0 : r1 - row0]
