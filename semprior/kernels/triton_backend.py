"""Triton channel attention: fused split-K statistics, fused softmax·v, and backward kernels.

Imported only when the ``triton`` backend is selected (it imports triton). Kernels are compiled
lazily by Triton on first launch; nothing here queries a device at import. Under
``TRITON_INTERPRET=1`` (set before Python starts) the same kernels run on CPU tensors.

Forward::

    pass 1  _gram_kernel      grid (B·h, splits): each program reads its N-chunk of q and k once and
                              writes partial q kᵀ (c×c) and both squared norms; the partials are
                              summed in a fixed order (deterministic, no atomics)
    pass 2  _softmax_av_kernel grid (B·h, ⌈N/BN⌉): each program rebuilds A = softmax(τ S/(a bᵀ))
                              from the c×c statistics in registers, reads one tile of v (⊙ illum)
                              and writes A v

Backward::

    pass 1  _gram_kernel      dA = Σ dout (v ⊙ illum)ᵀ (split-K, as above)
    small   (PyTorch, c×c)    dL, dτ, G = dS, r_q, r_k   (see semprior.kernels.streaming)
    pass 2  _bwd_kernel       dq = G k + r_q q,  dk = Gᵀ q + r_k k,  dV = Aᵀ dout,
                              dv = dV ⊙ illum,  dillum = dV ⊙ v  — one read of each input tile

Loads are masked (N need not be a multiple of the block; rows beyond c are zero) and every
operand is upcast to float32 before ``tl.dot`` (IEEE precision; the interpreter's bf16 dot is wrong).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from semprior._optional import require
from semprior.kernels.backward import cxc_backward
from semprior.kernels.reference import EPS, _check_qkv, _temperature

triton = require("triton", purpose="the triton channel-attention backend")
if TYPE_CHECKING:  # the kernels' parameter annotations (tl.constexpr) name triton.language
    import triton.language as tl
else:
    tl = triton.language


@triton.jit
def _gram_kernel(
    X,
    Y,
    ILL,
    G_part,
    NX_part,
    NY_part,
    H,
    C,
    N,
    chunk,
    sxb,
    sxh,
    sxc,
    sxn,
    syb,
    syh,
    syc,
    syn,
    sib,
    sih,
    sic,
    sin,
    HAS_I: tl.constexpr,
    NORMS: tl.constexpr,
    BC: tl.constexpr,
    BN: tl.constexpr,
):
    bh = tl.program_id(0)
    split = tl.program_id(1)
    nbh = tl.num_programs(0)
    b = bh // H
    h = bh % H
    rc = tl.arange(0, BC)
    rn = tl.arange(0, BN)
    cmask = rc < C
    acc = tl.zeros((BC, BC), dtype=tl.float32)
    nx = tl.zeros((BC,), dtype=tl.float32)
    ny = tl.zeros((BC,), dtype=tl.float32)
    start = split * chunk
    for off in range(0, chunk, BN):
        n = start + off + rn
        m = cmask[:, None] & (n[None, :] < N)
        x = tl.load(X + b * sxb + h * sxh + rc[:, None] * sxc + n[None, :] * sxn, mask=m, other=0.0).to(tl.float32)
        y = tl.load(Y + b * syb + h * syh + rc[:, None] * syc + n[None, :] * syn, mask=m, other=0.0).to(tl.float32)
        if HAS_I:
            il_ptrs = ILL + b * sib + h * sih + rc[:, None] * sic + n[None, :] * sin
            il = tl.load(il_ptrs, mask=m, other=0.0).to(tl.float32)
            y = y * il
        acc += tl.dot(x, tl.trans(y), input_precision="ieee")
        if NORMS:
            nx += tl.sum(x * x, axis=1)
            ny += tl.sum(y * y, axis=1)
    base = split * nbh + bh
    tl.store(G_part + base * BC * BC + rc[:, None] * BC + rc[None, :], acc)
    if NORMS:
        tl.store(NX_part + base * BC + rc, nx)
        tl.store(NY_part + base * BC + rc, ny)


@triton.jit
def _tile(H, C, BC: tl.constexpr, BN: tl.constexpr):
    """This program's place in a (B·h, ⌈N/BN⌉) grid: (bh, batch, head, channel rows, token columns, row mask)."""
    bh = tl.program_id(0)
    pn = tl.program_id(1)
    b = bh // H
    h = bh % H
    rc = tl.arange(0, BC)
    n = pn * BN + tl.arange(0, BN)
    cmask = rc < C
    return bh, b, h, rc, n, cmask


@triton.jit
def _softmax_av_kernel(
    S,
    An,
    Bn,
    T,
    V,
    ILL,
    Out,
    H,
    C,
    N,
    svb,
    svh,
    svc,
    svn,
    sib,
    sih,
    sic,
    sin,
    sob,
    soh,
    soc,
    HAS_I: tl.constexpr,
    BC: tl.constexpr,
    BN: tl.constexpr,
):
    bh, b, h, rc, n, cmask = _tile(H, C, BC, BN)
    s = tl.load(S + bh * BC * BC + rc[:, None] * BC + rc[None, :])
    a = tl.load(An + bh * BC + rc)
    bn = tl.load(Bn + bh * BC + rc)
    tau = tl.load(T + h)
    logits = s / (a[:, None] * bn[None, :]) * tau
    logits = tl.where(cmask[None, :], logits, float("-inf"))
    mx = tl.max(logits, axis=1)
    e = tl.exp(logits - mx[:, None])
    attn = e / tl.sum(e, axis=1)[:, None]
    m = cmask[:, None] & (n[None, :] < N)
    v = tl.load(V + b * svb + h * svh + rc[:, None] * svc + n[None, :] * svn, mask=m, other=0.0).to(tl.float32)
    if HAS_I:
        il = tl.load(ILL + b * sib + h * sih + rc[:, None] * sic + n[None, :] * sin, mask=m, other=0.0).to(tl.float32)
        v = v * il
    out = tl.dot(attn, v, input_precision="ieee")
    tl.store(Out + b * sob + h * soh + rc[:, None] * soc + n[None, :], out.to(Out.dtype.element_ty), mask=m)


@triton.jit
def _bwd_kernel(
    Q,
    K,
    V,
    ILL,
    DO,
    G,
    A,
    RQ,
    RK,
    DQ,
    DK,
    DV,
    DI,
    H,
    C,
    N,
    sqb,
    sqh,
    sqc,
    sqn,
    skb,
    skh,
    skc,
    skn,
    svb,
    svh,
    svc,
    svn,
    sib,
    sih,
    sic,
    sin,
    sdb,
    sdh,
    sdc,
    sdn,
    sob,
    soh,
    soc,
    HAS_I: tl.constexpr,
    BC: tl.constexpr,
    BN: tl.constexpr,
):
    bh, b, h, rc, n, cmask = _tile(H, C, BC, BN)
    m = cmask[:, None] & (n[None, :] < N)
    mat = bh * BC * BC
    g = tl.load(G + mat + rc[:, None] * BC + rc[None, :])
    gt = tl.load(G + mat + rc[None, :] * BC + rc[:, None])
    at = tl.load(A + mat + rc[None, :] * BC + rc[:, None])
    rq = tl.load(RQ + bh * BC + rc)
    rk = tl.load(RK + bh * BC + rc)
    q = tl.load(Q + b * sqb + h * sqh + rc[:, None] * sqc + n[None, :] * sqn, mask=m, other=0.0).to(tl.float32)
    k = tl.load(K + b * skb + h * skh + rc[:, None] * skc + n[None, :] * skn, mask=m, other=0.0).to(tl.float32)
    do = tl.load(DO + b * sdb + h * sdh + rc[:, None] * sdc + n[None, :] * sdn, mask=m, other=0.0).to(tl.float32)
    dq = tl.dot(g, k, input_precision="ieee") + rq[:, None] * q
    dk = tl.dot(gt, q, input_precision="ieee") + rk[:, None] * k
    dvv = tl.dot(at, do, input_precision="ieee")
    o = b * sob + h * soh + rc[:, None] * soc + n[None, :]
    tl.store(DQ + o, dq.to(DQ.dtype.element_ty), mask=m)
    tl.store(DK + o, dk.to(DK.dtype.element_ty), mask=m)
    if HAS_I:
        v = tl.load(V + b * svb + h * svh + rc[:, None] * svc + n[None, :] * svn, mask=m, other=0.0).to(tl.float32)
        il = tl.load(ILL + b * sib + h * sih + rc[:, None] * sic + n[None, :] * sin, mask=m, other=0.0).to(tl.float32)
        tl.store(DV + o, (dvv * il).to(DV.dtype.element_ty), mask=m)
        tl.store(DI + o, (dvv * v).to(DI.dtype.element_ty), mask=m)
    else:
        tl.store(DV + o, dvv.to(DV.dtype.element_ty), mask=m)


def interpreted() -> bool:
    """True when these kernels were built for the Triton interpreter (``TRITON_INTERPRET=1``)."""
    return type(_gram_kernel).__name__ == "InterpretedFunction"


def _blocks(c: int) -> tuple[int, int]:
    bc = max(16, triton.next_power_of_2(c))
    bn = 128 if bc <= 32 else 64 if bc <= 64 else 32
    return bc, bn


def _split(n: int, bh: int, bn: int) -> tuple[int, int]:
    """Split-K plan: (splits, chunk) with chunk a multiple of bn; enough programs to fill a GPU."""
    tiles = triton.cdiv(n, bn)
    splits = max(1, min(tiles, 1024 // max(bh, 1)))
    chunk = triton.cdiv(tiles, splits) * bn
    return triton.cdiv(n, chunk), chunk


def _strides(t: Tensor | None, like: Tensor) -> tuple[int, ...]:
    return tuple((t if t is not None else like).stride())


def _gram(x: Tensor, y: Tensor, il: Tensor | None, norms: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Σ_n x (y ⊙ il)ᵀ as (B·h, BC, BC) float32 padded, and the squared norms (B·h, BC)."""
    bsz, heads, c, n = x.shape
    bc, bn = _blocks(c)
    bh = bsz * heads
    splits, chunk = _split(n, bh, bn)
    gp = torch.empty(splits, bh, bc, bc, device=x.device, dtype=torch.float32)
    nxp = torch.empty(splits, bh, bc, device=x.device, dtype=torch.float32)
    nyp = torch.empty_like(nxp)
    _gram_kernel[(bh, splits)](
        x,
        y,
        il if il is not None else y,
        gp,
        nxp,
        nyp,
        heads,
        c,
        n,
        chunk,
        *x.stride(),
        *y.stride(),
        *_strides(il, y),
        HAS_I=il is not None,
        NORMS=norms,
        BC=bc,
        BN=bn,
    )
    return gp.sum(0), nxp.sum(0), nyp.sum(0)


def _small_forward(
    s: Tensor, nq: Tensor, nk: Tensor, tau: Tensor, c: int, heads: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """From padded statistics: norms a, b (clamped), P and A (unpadded, (B·h, c, c))."""
    a = nq.sqrt().clamp(min=EPS)
    b = nk.sqrt().clamp(min=EPS)
    p = s[:, :c, :c] / (a[:, :c, None] * b[:, None, :c])
    t = tau.reshape(1, heads).expand(s.shape[0] // heads, heads).reshape(-1, 1, 1)
    return a, b, p, (p * t).softmax(-1), t


class _TritonChannelAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, illum: Tensor | None, tau: Tensor) -> Tensor:
        bsz, heads, c, n = q.shape
        bc, bn = _blocks(c)
        s, nq, nk = _gram(q, k, None, norms=True)
        a = nq.sqrt().clamp(min=EPS)
        b = nk.sqrt().clamp(min=EPS)
        t = tau.reshape(heads).contiguous()
        out = torch.empty(v.shape, dtype=v.dtype, device=v.device)
        _softmax_av_kernel[(bsz * heads, triton.cdiv(n, bn))](
            s,
            a,
            b,
            t,
            v,
            illum if illum is not None else v,
            out,
            heads,
            c,
            n,
            *v.stride(),
            *_strides(illum, v),
            *out.stride()[:3],
            HAS_I=illum is not None,
            BC=bc,
            BN=bn,
        )
        ctx.save_for_backward(q, k, v, illum, tau, s, nq, nk)
        return out

    @staticmethod
    def backward(ctx, dout: Tensor):
        q, k, v, illum, tau, s, nq, nk = ctx.saved_tensors
        bsz, heads, c, n = q.shape
        bc, bn = _blocks(c)
        a, b, p, attn, t = _small_forward(s, nq, nk, tau, c, heads)
        da, _, _ = _gram(dout, v, illum, norms=False)
        da = da[:, :c, :c]
        a, b = a[:, :c], b[:, :c]
        g, rq, rk, dtau = cxc_backward(attn, p, da, t, a, b, need_tau=ctx.needs_input_grad[4])
        if dtau is not None:  # (B·h,) -> tau's shape
            dtau = dtau.reshape(bsz, heads).sum(0).reshape(tau.shape)

        def pad2(m: Tensor) -> Tensor:
            return torch.nn.functional.pad(m, (0, bc - c, 0, bc - c)).contiguous()

        def pad1(r: Tensor) -> Tensor:
            return torch.nn.functional.pad(r, (0, bc - c)).contiguous()

        dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        dk = torch.empty(k.shape, dtype=k.dtype, device=k.device)
        dv = torch.empty(v.shape, dtype=v.dtype, device=v.device)
        di = torch.empty(v.shape, dtype=illum.dtype, device=v.device) if illum is not None else None
        _bwd_kernel[(bsz * heads, triton.cdiv(n, bn))](
            q,
            k,
            v,
            illum if illum is not None else v,
            dout,
            pad2(g),
            pad2(attn),
            pad1(rq),
            pad1(rk),
            dq,
            dk,
            dv,
            di if di is not None else dv,
            heads,
            c,
            n,
            *q.stride(),
            *k.stride(),
            *v.stride(),
            *_strides(illum, v),
            *dout.stride(),
            *dq.stride()[:3],
            HAS_I=illum is not None,
            BC=bc,
            BN=bn,
        )
        return dq, dk, dv, di, dtau


def _prepare(q: Tensor, k: Tensor, v: Tensor, temperature: Tensor | float) -> Tensor:
    temperature = torch.as_tensor(temperature, device=q.device)
    _check_qkv(q, k, v, temperature)
    return _temperature(temperature, q.shape[1], q, torch.float32)


def channel_attention_triton(q: Tensor, k: Tensor, v: Tensor, temperature: Tensor | float) -> Tensor:
    """Channel attention with the fused Triton kernels (CUDA, or CPU under ``TRITON_INTERPRET=1``).

    Use through [`semprior.kernels.channel_attention`][semprior.kernels.dispatch.channel_attention]
    (``backend="triton"``), which checks that the kernels can run the input first.

    Shape:
        - q, k, v: ``(B, h, c, N)`` with ``c <= 128`` -> ``(B, h, c, N)``
    """
    tau = _prepare(q, k, v, temperature)
    return _TritonChannelAttention.apply(q, k, v, None, tau)


def ig_channel_attention_triton(q: Tensor, k: Tensor, v: Tensor, illum: Tensor, temperature: Tensor | float) -> Tensor:
    """Illumination-guided variant: ``softmax(τ q̂ k̂ᵀ) (v ⊙ illum)``, the product fused into the loads.

    Shape:
        - q, k, v, illum: ``(B, h, c, N)`` with ``c <= 128`` -> ``(B, h, c, N)``
    """
    tau = _prepare(q, k, v, temperature)
    if not isinstance(illum, Tensor) or illum.shape != v.shape:
        raise ValueError(f"illum must be a tensor with the shape of v {tuple(v.shape)}")
    return _TritonChannelAttention.apply(q, k, v, illum, tau)
