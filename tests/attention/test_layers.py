"""The GDFN's banded rows and its gate: the same values as the plain forward, in either memory layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semprior.attention.layers import GatedDConvFeedForward, gelu_mul


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gelu_mul_matches_gelu_times(layout: torch.memory_format) -> None:
    torch.manual_seed(0)
    x1, x2 = (torch.randn(2, 5, 7, 9, dtype=torch.float64).contiguous(memory_format=layout) for _ in range(2))
    out = gelu_mul(x1, x2)
    assert torch.allclose(out, F.gelu(x1) * x2, rtol=0, atol=1e-15)
    assert out.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_ffn_rows_equal_forward(bias: bool, layout: torch.memory_format) -> None:
    torch.manual_seed(0)
    ffn = GatedDConvFeedForward(6, 2.66, bias=bias).double()
    x = torch.randn(1, 6, 11, 13, dtype=torch.float64).contiguous(memory_format=layout)
    with torch.no_grad():
        full = ffn(x)
        for r0, r1 in [(0, 4), (4, 9), (9, 11), (0, 11)]:
            a0 = max(r0 - 1, 0)
            rows = ffn.rows(x[:, :, a0 : min(r1 + 1, 11)], r0, r1, 11, a0)
            assert torch.allclose(rows, full[:, :, r0:r1], rtol=0, atol=1e-12)


def test_ffn_rows_bf16_autocast_close_to_fp32() -> None:
    torch.manual_seed(0)
    ffn = GatedDConvFeedForward(8, 2.66)
    x = torch.randn(1, 8, 10, 12).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = ffn.rows(x, 2, 8, 10)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = ffn.rows(x, 2, 8, 10)
    assert fast.shape == ref.shape
    assert (fast.float() - ref).abs().max() < 0.05 * ref.abs().max()
