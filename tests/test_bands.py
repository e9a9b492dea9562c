"""Row-band helpers: a local layer evaluated on a band of rows equals the same rows of the full-image layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semprior._bands import band_rows, conv_rows, halo, local_chain_rows, row_bands
from semprior.retinex.decomposer import RetinexDecomposer
from semprior.retinex.illumination import IlluminationEstimator


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(3, 4, 3, padding=1),
        nn.Conv2d(4, 4, 5, padding=2, groups=4),
        nn.Conv2d(3, 5, 4, stride=2, padding=1, bias=False),
        nn.Conv2d(3, 2, 1),
        nn.Conv2d(3, 2, 3, padding=2, dilation=2),
    ],
)
def test_conv_rows_equal_full_conv(conv):
    torch.manual_seed(0)
    conv = conv.double()
    x = torch.randn(2, conv.in_channels, 13, 9, dtype=torch.float64)
    full = conv(x)
    ho = full.shape[-2]
    for r0, r1 in [(0, ho), (0, 1), (2, 5), (ho - 1, ho)]:
        torch.testing.assert_close(conv_rows(x, conv, r0, r1, 13), full[:, :, r0:r1])
        # from a partial source holding just the rows needed
        kh, sh, ph, dh = conv.kernel_size[0], conv.stride[0], conv.padding[0], conv.dilation[0]
        a0, a1 = max(r0 * sh - ph, 0), min((r1 - 1) * sh - ph + dh * (kh - 1) + 1, 13)
        torch.testing.assert_close(conv_rows(x[:, :, a0:a1], conv, r0, r1, 13, a0), full[:, :, r0:r1])
    with pytest.raises(ValueError, match="are needed"):
        conv_rows(x[:, :, 5:6], conv, 0, 1, 13, 5)


def test_depthwise_channel_subset():
    conv = nn.Conv2d(6, 6, 3, padding=1, groups=6).double()
    x = torch.randn(1, 6, 8, 5, dtype=torch.float64)
    full = conv(x)
    part = slice(2, 5)
    torch.testing.assert_close(conv_rows(x[:, part], conv, 3, 6, 8, channels=part), full[:, part, 3:6])
    with pytest.raises(ValueError, match="depthwise"):
        conv_rows(x[:, :3], nn.Conv2d(3, 3, 3, padding=1).double(), 0, 2, 8, channels=slice(0, 3))


def test_local_chain_rows_equal_sequential():
    torch.manual_seed(1)
    seq = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.GELU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.GELU(),
        nn.Conv2d(4, 1, 3, padding=1),
    ).double()
    x = torch.randn(1, 3, 15, 6, dtype=torch.float64)
    full = seq(x)
    for r0, r1 in [(0, 15), (0, 2), (5, 9), (13, 15)]:
        a0, a1 = halo(r0, r1, 15, 3)
        torch.testing.assert_close(local_chain_rows(list(seq), x[:, :, a0:a1], r0, r1, 15, a0), full[:, :, r0:r1])


def test_band_bookkeeping():
    assert list(row_bands(7, 3)) == [(0, 3), (3, 6), (6, 7)]
    assert halo(0, 4, 10, 2) == (0, 6) and halo(5, 10, 10) == (4, 10)
    assert band_rows(3840, 2) % 2 == 0 and band_rows(10**7, 4) == 4
    with pytest.raises(ValueError, match=">= 1"):
        list(row_bands(5, 0))


def test_decomposer_and_estimator_rows_equal_forward():
    torch.manual_seed(2)
    dec = RetinexDecomposer(8).double()
    est = IlluminationEstimator(8, n_fea_out=3).double()
    img = torch.rand(2, 3, 11, 7, dtype=torch.float64)
    full, (fea, raw) = dec(img), est(img)
    for r0, r1 in [(0, 11), (0, 1), (3, 8), (9, 11)]:
        part = dec.rows(img, r0, r1)
        for name in ("reflectance", "illumination", "features"):
            torch.testing.assert_close(getattr(part, name), getattr(full, name)[:, :, r0:r1])
        f, m = est.rows(img, r0, r1)
        torch.testing.assert_close(f, fea[:, :, r0:r1])
        torch.testing.assert_close(m, raw[:, :, r0:r1])
