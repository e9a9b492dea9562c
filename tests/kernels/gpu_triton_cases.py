"""The Triton kernels compiled for a real GPU (no interpreter), against the reference on the same GPU.

Not collected by the main run (the name does not start with ``test_``): ``benchmarks/gpu_check.sh``
runs it on a CUDA machine. Without CUDA or triton every case is skipped.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from kernel_cases import TOL, run

if os.environ.get("TRITON_INTERPRET") == "1":  # pragma: no cover - the interpreter has its own file
    pytest.skip(
        "this file checks compiled kernels; interp_triton_cases.py covers the interpreter", allow_module_level=True
    )
if not torch.cuda.is_available() or importlib.util.find_spec("triton") is None:
    pytest.skip("needs a CUDA GPU and triton", allow_module_level=True)

from semprior.kernels import channel_attention, ig_channel_attention, select_backend  # noqa: E402
from semprior.kernels.reference import channel_attention_reference, ig_channel_attention_reference  # noqa: E402

# small and ragged shapes as under the interpreter, plus the sizes DeepSPG runs (600x400 at level 1)
SHAPES = [
    (1, 1, 8, 1),
    (2, 2, 8, 97),
    (1, 4, 24, 40),
    (1, 1, 48, 33),
    (1, 1, 5, 131),
    (1, 1, 32, 240_000),
    (2, 4, 64, 60_000),
]


def _inputs(shape, dtype, illum, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q, k, v, il = (torch.randn(shape, generator=g, device="cuda").to(dtype) for _ in range(4))
    tau = torch.rand(shape[1], 1, 1, generator=g, device="cuda") * 2 + 0.5
    return q, k, v, il if illum else None, tau


def test_auto_picks_triton_on_cuda():
    q = torch.randn(1, 1, 8, 16, device="cuda")
    assert select_backend("auto", q, q, q) == "triton"


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("illum", [False, True], ids=["plain", "ig"])
def test_compiled_triton_matches_reference(shape, dtype, illum):
    inputs = _inputs(shape, dtype, illum)
    grad_out = torch.randn(shape, device="cuda").to(dtype)
    if illum:
        tri = lambda q, k, v, i, t: ig_channel_attention(q, k, v, i, t, backend="triton")  # noqa: E731
        ref = lambda q, k, v, i, t: ig_channel_attention_reference(q, k, v, i, t)  # noqa: E731
    else:
        tri = lambda q, k, v, i, t: channel_attention(q, k, v, t, backend="triton")  # noqa: E731
        ref = lambda q, k, v, i, t: channel_attention_reference(q, k, v, t)  # noqa: E731
    out_t, g_t = run(tri, inputs, grad_out)
    out_r, g_r = run(ref, inputs, grad_out)
    atol, rtol = (1e-4, 1e-4) if dtype == torch.float32 else TOL[dtype]
    assert out_t.dtype == dtype and torch.isfinite(out_t).all()
    torch.testing.assert_close(out_t.float(), out_r.float(), atol=atol, rtol=rtol)
    for name, a, b in zip(["q", "k", "v", "illum", "tau"], g_t, g_r):
        if b is None:
            assert a is None
            continue
        scale = b.float().abs().max().clamp(min=1.0)  # large N: gradients grow with N
        torch.testing.assert_close(
            a.float() / scale, b.float() / scale, atol=atol, rtol=rtol, msg=lambda m, name=name: f"grad {name}: {m}"
        )
