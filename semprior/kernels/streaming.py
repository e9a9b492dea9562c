"""Streaming channel attention: one pass over spatial tiles, no normalised copies, own backward.

Forward (per batch element and head; ``q, k: (c, N)``, ``v: (c_v, N)``)::

    pass 1 (reads q, k once):  S = Σ_t q_t k_tᵀ,  a² = Σ_t q_t²,  b² = Σ_t k_t²     (c×c, c, c)
    small:                     P = S / (max(a, ε) max(b, ε)ᵀ),  A = softmax(τ P)
    pass 2 (reads v once):     out_t = A v_t  for each tile t

Backward recomputes nothing large: the forward keeps only the ``c×c`` maps and the norms
(the inputs are kept by reference, as any autograd graph does). With ``G = dS``::

    pass 1 (reads dout, v):    dA = Σ_t dout_t v_tᵀ
    small:                     dL = A ⊙ (dA - rowsum(dA ⊙ A)),  dτ = Σ dL ⊙ P,
                               dP = τ dL,  G = dP / (a bᵀ),  r_q = -rowsum(dP ⊙ P) / a²,  r_k = -colsum(dP ⊙ P) / b²
    pass 2 (reads q, k, v, dout):  dq_t = G k_t + r_q q_t,  dk_t = Gᵀ q_t + r_k k_t,  dv_t = Aᵀ dout_t

(``r`` is zero for rows whose norm is below ``ε``, as the clamp in ``F.normalize`` has no
gradient there.) The illumination-guided variant uses ``V = v ⊙ illum`` in both passes and
returns ``dv = dV ⊙ illum``, ``dillum = dV ⊙ v``. Extra memory is a few tiles plus the outputs.
Results are bitwise reproducible (fixed tile order, no atomics).
"""

from __future__ import annotations

import torch
from torch import Tensor

from semprior._checks import is_tracing
from semprior.kernels.backward import cxc_backward
from semprior.kernels.reference import EPS, _check_qkv, _temperature, acc_dtype

#: smallest default spatial tile (pixels per step)
MIN_TILE = 65536
#: the default tile is about N / TILE_FRACTION: per-tile temporaries (half-precision or
#: illumination-guided inputs, backward) stay under ~1/8 of the output, while tiles stay large
#: enough for efficient matmuls (measured: 64k-pixel tiles ran 2x slower than 1M-pixel tiles at 1080p)
TILE_FRACTION = 8


def default_tile(n: int) -> int:
    """Default tile for ``n`` positions: ``max(65536, ⌈n / 8⌉)`` rounded up to a multiple of 4096."""
    t = max(MIN_TILE, -(-n // TILE_FRACTION))
    return -(-t // 4096) * 4096


def _stats(q: Tensor, k: Tensor, acc: torch.dtype, tile: int) -> tuple[Tensor, Tensor, Tensor]:
    b, h, c, n = q.shape
    s = torch.zeros(b, h, c, c, dtype=acc, device=q.device)
    nq = torch.zeros(b, h, c, dtype=acc, device=q.device)
    nk = torch.zeros(b, h, c, dtype=acc, device=q.device)
    for start in range(0, n, tile):
        qt = q[..., start : start + tile].to(acc)
        kt = k[..., start : start + tile].to(acc)
        s.add_(qt @ kt.transpose(-2, -1))
        nq.add_(torch.linalg.vector_norm(qt, dim=-1).square_())
        nk.add_(torch.linalg.vector_norm(kt, dim=-1).square_())
    return s, nq.sqrt_().clamp_(min=EPS), nk.sqrt_().clamp_(min=EPS)


def _values(v: Tensor, illum: Tensor | None, start: int, tile: int, acc: torch.dtype) -> Tensor:
    vt = v[..., start : start + tile].to(acc)
    return vt if illum is None else vt * illum[..., start : start + tile].to(acc)


def _matmul_add_into(dst: Tensor, m: Tensor, x: Tensor, r: Tensor, y: Tensor) -> None:
    """``dst = m @ x + r * y``, in place when ``dst`` has the accumulation dtype (no full-tile temporaries)."""
    if dst.dtype == m.dtype and not is_tracing():  # torch.compile cannot trace strided out= (a graph break)
        torch.matmul(m, x, out=dst)
        dst.addcmul_(r, y)
    else:
        dst.copy_(m @ x + r * y)


class _StreamingChannelAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, illum: Tensor | None, tau: Tensor, tile: int) -> Tensor:
        acc = acc_dtype(q, k, v)
        s, a, b = _stats(q, k, acc, tile)
        p = s / (a.unsqueeze(-1) * b.unsqueeze(-2))
        attn = (p * tau.to(acc)).softmax(dim=-1)
        out = torch.empty(v.shape, dtype=v.dtype, device=v.device)
        for start in range(0, v.shape[-1], tile):
            vt = _values(v, illum, start, tile, acc)
            if out.dtype == acc and not is_tracing():  # straight into the output (strided BLAS, no temporary)
                torch.matmul(attn, vt, out=out[..., start : start + tile])
            else:
                out[..., start : start + tile] = (attn @ vt).to(v.dtype)
        ctx.save_for_backward(q, k, v, illum, tau, attn, p, a, b)
        ctx.tile = tile
        ctx.tau_shape = tau.shape
        return out

    @staticmethod
    def backward(ctx, dout: Tensor):
        q, k, v, illum, tau, attn, p, a, b = ctx.saved_tensors
        tile = ctx.tile
        acc = attn.dtype
        n = q.shape[-1]
        da = torch.zeros_like(attn)
        for start in range(0, n, tile):
            da.add_(dout[..., start : start + tile].to(acc) @ _values(v, illum, start, tile, acc).transpose(-2, -1))
        g, rq, rk, dtau = cxc_backward(attn, p, da, tau.to(acc), a, b, need_tau=ctx.needs_input_grad[4])
        rq, rk = rq.unsqueeze(-1), rk.unsqueeze(-1)
        if dtau is not None:  # (B, h) -> tau's (1, h, 1, 1)
            dtau = dtau.sum(0)
        need_q, need_k, need_v, need_i = ctx.needs_input_grad[:4]
        dq = torch.empty_like(q) if need_q else None
        dk = torch.empty_like(k) if need_k else None
        dv = torch.empty_like(v) if need_v else None
        di = torch.empty_like(illum) if (need_i and illum is not None) else None
        at = attn.transpose(-2, -1)
        gt = g.transpose(-2, -1)
        for start in range(0, n, tile):
            sl = slice(start, start + tile)
            if dq is not None or dk is not None:
                qt, kt = q[..., sl].to(acc), k[..., sl].to(acc)
                if dq is not None:
                    _matmul_add_into(dq[..., sl], g, kt, rq, qt)
                if dk is not None:
                    _matmul_add_into(dk[..., sl], gt, qt, rk, kt)
            if dv is not None or di is not None:
                dvt = at @ dout[..., sl].to(acc)
                if illum is None:
                    dv[..., sl] = dvt.to(v.dtype)  # type: ignore[index]
                else:
                    if dv is not None:
                        dv[..., sl] = (dvt * illum[..., sl].to(acc)).to(v.dtype)
                    if di is not None:
                        di[..., sl] = (dvt * v[..., sl].to(acc)).to(illum.dtype)
        if dtau is not None:
            dtau = dtau.to(tau.dtype).reshape(ctx.tau_shape)
        return dq, dk, dv, di, dtau, None


def _check_tile(tile: int | None, n: int) -> int:
    if tile is None:
        return default_tile(n)
    if not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile must be a positive int (pixels per step), got {tile!r}")
    return tile


def channel_attention_streaming(
    q: Tensor, k: Tensor, v: Tensor, temperature: Tensor | float, *, tile: int | None = None
) -> Tensor:
    """Channel attention ``softmax(τ q̂ k̂ᵀ) v`` computed in spatial tiles (see the module docstring).

    Matches
    [`semprior.kernels.reference.channel_attention_reference`][semprior.kernels.reference.channel_attention_reference]
    (same accumulation dtype) with extra memory of a few tiles instead of several full-size copies.

    Shape:
        - q, k: ``(B, h, c, N)``; v: ``(B, h, c_v, N)`` -> ``(B, h, c_v, N)``

    Examples:
        >>> import torch
        >>> q, k, v = torch.randn(3, 1, 2, 4, 100).unbind(0)
        >>> channel_attention_streaming(q, k, v, torch.ones(2), tile=32).shape
        torch.Size([1, 2, 4, 100])
    """
    temperature = torch.as_tensor(temperature, device=q.device)
    _check_qkv(q, k, v, temperature)
    tau = _temperature(temperature, q.shape[1], q, acc_dtype(q, k, v))
    return _StreamingChannelAttention.apply(q, k, v, None, tau, _check_tile(tile, q.shape[-1]))


def ig_channel_attention_streaming(
    q: Tensor, k: Tensor, v: Tensor, illum: Tensor, temperature: Tensor | float, *, tile: int | None = None
) -> Tensor:
    """Illumination-guided streaming channel attention ``softmax(τ q̂ k̂ᵀ) (v ⊙ illum)``.

    The product ``v ⊙ illum`` is formed one tile at a time, never as a full-size tensor.

    Shape:
        - q, k: ``(B, h, c, N)``; v, illum: ``(B, h, c_v, N)`` -> ``(B, h, c_v, N)``
    """
    temperature = torch.as_tensor(temperature, device=q.device)
    _check_qkv(q, k, v, temperature)
    if not isinstance(illum, Tensor):
        raise TypeError(f"illum must be a torch.Tensor, got {type(illum).__name__}")
    if illum.shape != v.shape:
        raise ValueError(f"illum must have the shape of v {tuple(v.shape)}, got {tuple(illum.shape)}")
    tau = _temperature(temperature, q.shape[1], q, acc_dtype(q, k, v))
    return _StreamingChannelAttention.apply(q, k, v, illum, tau, _check_tile(tile, q.shape[-1]))
