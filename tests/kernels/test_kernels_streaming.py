"""Streaming backend against the reference: forward, backward, dtypes, tails, NaN margins, determinism."""

from __future__ import annotations

import pytest
import torch
from kernel_cases import SHAPES, assert_close, make_inputs, run, with_nan_margin

from semprior.kernels.reference import channel_attention_reference, ig_channel_attention_reference
from semprior.kernels.streaming import channel_attention_streaming, ig_channel_attention_streaming


def _fns(illum: bool, tile: int):
    if illum:
        return (
            lambda q, k, v, i, t: ig_channel_attention_streaming(q, k, v, i, t, tile=tile),
            lambda q, k, v, i, t: ig_channel_attention_reference(q, k, v, i, t),
        )
    return (
        lambda q, k, v, i, t: channel_attention_streaming(q, k, v, t, tile=tile),
        lambda q, k, v, i, t: channel_attention_reference(q, k, v, t),
    )


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("illum", [False, True], ids=["plain", "ig"])
def test_streaming_matches_reference(shape, dtype, illum):
    inputs = make_inputs(shape, dtype, illum=illum)
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    tile = 1000 if shape[-1] > 1000 else 32  # tails: N is not a multiple of the tile
    stream, ref = _fns(illum, tile)
    out_s, grads_s = run(stream, inputs, grad_out)
    out_r, grads_r = run(ref, inputs, grad_out)
    assert out_s.dtype == dtype
    assert_close(out_s, out_r, dtype, "output")
    for name, gs, gr in zip(["q", "k", "v", "illum", "tau"], grads_s, grads_r):
        if gr is None:
            assert gs is None
            continue
        assert gs.dtype == gr.dtype
        assert torch.isfinite(gs).all()
        # grads of half inputs: compare relative to their scale
        scale = gr.float().abs().max().clamp(min=1.0)
        assert_close(gs / scale, gr / scale, dtype, f"grad {name}")


def test_streaming_gradcheck_float64():
    q, k, v, il, tau = make_inputs((1, 2, 2, 5), torch.float64, illum=True)
    tau = tau.double()
    leaves = [t.requires_grad_() for t in (q, k, v, il, tau)]
    assert torch.autograd.gradcheck(lambda *a: ig_channel_attention_streaming(*a, tile=2), leaves)
    assert torch.autograd.gradcheck(
        lambda q, k, v, t: channel_attention_streaming(q, k, v, t, tile=3), [leaves[i] for i in (0, 1, 2, 4)]
    )


def test_streaming_scalar_temperature_and_zero_rows():
    q, k, v, _, _ = make_inputs((1, 2, 4, 50), torch.float64)
    q[0, 0, 1] = 0.0  # a zero-norm row: the clamp applies, no NaN, same as F.normalize
    leaves_s = [t.clone().requires_grad_() for t in (q, k, v)]
    leaves_r = [t.clone().requires_grad_() for t in (q, k, v)]
    tau_s = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    tau_r = tau_s.detach().clone().requires_grad_()
    out_s = channel_attention_streaming(*leaves_s, tau_s, tile=16)
    out_r = channel_attention_reference(*leaves_r, tau_r)
    torch.testing.assert_close(out_s, out_r)
    out_s.square().sum().backward()
    out_r.square().sum().backward()
    for a, b in zip(leaves_s + [tau_s], leaves_r + [tau_r]):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("illum", [False, True], ids=["plain", "ig"])
def test_nan_beyond_valid_region_does_not_leak(illum):
    inputs = make_inputs((1, 2, 8, 131), torch.float32, illum=illum)
    padded = [t if (t is None or i == 4) else with_nan_margin(t) for i, t in enumerate(inputs)]
    stream, _ = _fns(illum, 50)
    grad_out = with_nan_margin(torch.ones(1, 2, 8, 131))
    out, grads = run(stream, padded, grad_out)
    ref, ref_grads = run(stream, inputs, torch.ones(1, 2, 8, 131))
    # NaN beyond the valid region must not leak: everything finite and equal to the contiguous run
    # up to float32 rounding. Not bitwise: the padded inputs are strided views, the reference is
    # contiguous, and the BLAS may pick different kernels for the two layouts (the last bits
    # differed on an AMD EPYC, not on an Intel Xeon). A leaked NaN would fail isfinite / closeness.
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref)  # float32 defaults: rtol 1.3e-6, atol 1e-5
    for g, rg in zip(grads, ref_grads):
        if g is not None:
            assert torch.isfinite(g).all()
            torch.testing.assert_close(g, rg)


def test_streaming_is_bitwise_deterministic():
    inputs = make_inputs((2, 2, 24, 2000), torch.float32, illum=True)
    grad_out = torch.randn(2, 2, 24, 2000)
    stream, _ = _fns(True, 300)
    out1, g1 = run(stream, inputs, grad_out)
    out2, g2 = run(stream, inputs, grad_out)
    assert torch.equal(out1, out2)
    assert all(torch.equal(a, b) for a, b in zip(g1, g2))


@pytest.mark.parametrize("tile", [0, -3, 2.5])
def test_bad_tile_is_rejected(tile):
    q = torch.randn(1, 1, 4, 10)
    with pytest.raises(ValueError, match="tile"):
        channel_attention_streaming(q, q, q, 1.0, tile=tile)
