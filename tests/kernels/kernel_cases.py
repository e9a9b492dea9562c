"""Shared helpers for the kernel tests (imported by the test modules and the interpreter subprocess)."""

from __future__ import annotations

import torch

#: forward/backward tolerance (atol, rtol) per input dtype, against the float32/float64 reference
TOL = {
    torch.float64: (1e-10, 1e-10),
    torch.float32: (1e-5, 1e-4),
    torch.float16: (2e-3, 1e-2),
    torch.bfloat16: (2e-2, 2e-2),
}

#: (B, heads, c, N): N=1, a 97x131 image, heads 1/2/4, c 8/24/48
SHAPES = [
    (1, 1, 8, 1),
    (1, 1, 8, 97 * 131),
    (1, 2, 24, 300),
    (2, 4, 48, 77),
]


def make_inputs(shape, dtype, seed=0, illum=False):
    g = torch.Generator().manual_seed(seed)
    b, h, c, n = shape
    q, k, v, il = (torch.randn(b, h, c, n, generator=g).to(dtype) for _ in range(4))
    tau = torch.rand(h, 1, 1, generator=g) * 2 + 0.5
    return (q, k, v, il if illum else None, tau)


def run(fn, inputs, grad_out):
    """Forward + backward of ``fn(q, k, v, illum, tau)``; returns output and grads (leaves cloned)."""
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*leaves)
    out.backward(grad_out)
    return out.detach(), [None if t is None else t.grad for t in leaves]


def assert_close(a, b, dtype, what):
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(a.float(), b.float(), atol=atol, rtol=rtol, msg=lambda m: f"{what}: {m}")


def with_nan_margin(t: torch.Tensor, extra_c: int = 3, extra_n: int = 5) -> torch.Tensor:
    """A view of ``t`` inside a larger NaN-filled buffer (NaN beyond the valid rows and columns)."""
    b, h, c, n = t.shape
    buf = torch.full((b, h, c + extra_c, n + extra_n), float("nan"), dtype=t.dtype)
    buf[:, :, :c, :n] = t
    return buf[:, :, :c, :n]
