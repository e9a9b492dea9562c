"""Triton kernels under TRITON_INTERPRET=1 on CPU tensors, against the reference.

Not collected by the main run (the name does not start with ``test_``): ``test_kernels_triton.py``
runs this file in a fresh pytest subprocess with ``TRITON_INTERPRET=1`` set before triton is
imported, so no other test sees the interpreter.
"""

from __future__ import annotations

import os

import pytest
import torch
from kernel_cases import assert_close, make_inputs, run, with_nan_margin

if os.environ.get("TRITON_INTERPRET") != "1":  # pragma: no cover - guarded by the launcher
    pytest.fail("run this file with TRITON_INTERPRET=1 (tests/kernels/test_kernels_triton.py does)", pytrace=False)

from semprior.kernels import channel_attention, ig_channel_attention, select_backend  # noqa: E402
from semprior.kernels.reference import channel_attention_reference, ig_channel_attention_reference  # noqa: E402

# the interpreter is slow: small N, but every channel count, heads 1/2/4, N=1 and a ragged tail
SHAPES = [(1, 1, 8, 1), (2, 2, 8, 97), (1, 4, 24, 40), (1, 1, 48, 33), (1, 1, 5, 131)]


def _fns(illum):
    if illum:
        return (
            lambda q, k, v, i, t: ig_channel_attention(q, k, v, i, t, backend="triton"),
            lambda q, k, v, i, t: ig_channel_attention_reference(q, k, v, i, t),
        )
    return (
        lambda q, k, v, i, t: channel_attention(q, k, v, t, backend="triton"),
        lambda q, k, v, i, t: channel_attention_reference(q, k, v, t),
    )


def test_auto_picks_triton_under_interpreter():
    q = torch.randn(1, 1, 8, 16)
    assert select_backend("auto", q, q, q) == "triton"


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("illum", [False, True], ids=["plain", "ig"])
def test_triton_fp32_matches_reference_1e4(shape, illum):
    inputs = make_inputs(shape, torch.float32, illum=illum)
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    tri, ref = _fns(illum)
    out_t, g_t = run(tri, inputs, grad_out)
    out_r, g_r = run(ref, inputs, grad_out)
    torch.testing.assert_close(out_t, out_r, atol=1e-4, rtol=1e-4)
    for name, a, b in zip(["q", "k", "v", "illum", "tau"], g_t, g_r):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=lambda m, name=name: f"grad {name}: {m}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("illum", [False, True], ids=["plain", "ig"])
def test_triton_half_matches_reference(dtype, illum):
    shape = (1, 2, 16, 70)
    inputs = make_inputs(shape, dtype, illum=illum)
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(4)).to(dtype)
    tri, ref = _fns(illum)
    out_t, g_t = run(tri, inputs, grad_out)
    out_r, g_r = run(ref, inputs, grad_out)
    assert out_t.dtype == dtype and torch.isfinite(out_t).all()
    assert_close(out_t, out_r, dtype, "output")
    for name, a, b in zip(["q", "k", "v", "illum", "tau"], g_t, g_r):
        if b is not None:
            assert a.dtype == b.dtype
            scale = b.float().abs().max().clamp(min=1.0)
            assert_close(a / scale, b / scale, dtype, f"grad {name}")


@pytest.mark.parametrize("illum", [False, True], ids=["plain", "ig"])
def test_triton_nan_beyond_valid_region_does_not_leak(illum):
    shape = (1, 2, 8, 45)
    inputs = make_inputs(shape, torch.float32, illum=illum)
    padded = [t if (t is None or i == 4) else with_nan_margin(t) for i, t in enumerate(inputs)]
    tri, _ = _fns(illum)
    out, grads = run(tri, padded, with_nan_margin(torch.ones(shape)))
    out_c, grads_c = run(tri, inputs, torch.ones(shape))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, out_c, atol=1e-6, rtol=1e-6)
    for g, gc in zip(grads, grads_c):
        if g is not None:
            assert torch.isfinite(g).all()
            torch.testing.assert_close(g, gc, atol=1e-6, rtol=1e-6)


def test_triton_is_bitwise_deterministic():
    shape = (1, 2, 8, 300)
    inputs = make_inputs(shape, torch.float32, illum=True)
    grad_out = torch.randn(shape)
    tri, _ = _fns(True)
    out1, g1 = run(tri, inputs, grad_out)
    out2, g2 = run(tri, inputs, grad_out)
    assert torch.equal(out1, out2)
    assert all(torch.equal(a, b) for a, b in zip(g1, g2) if a is not None)
