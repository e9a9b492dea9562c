"""Memory-lean SEM inference: the whole block streamed over bands of rows (used with ``backend="streaming"``).

Channel attention needs a global reduction over all positions before any output can be written,
so the block runs in two passes over horizontal bands (each band with the one-row halo its 3x3
depthwise convolutions need):

1. for each band: ``q`` (semantic branch) and ``k`` (image branch) → accumulate ``S = q kᵀ`` and
   the squared norms; then ``A = softmax(τ S / (‖q‖ ‖k‖ᵀ))`` (``c×c`` per head);
2. for each band: recompute ``v`` (two-row halo), ``y = x + out(A v)`` for the band plus one halo
   row, then ``y + GDFN(LN(y))`` for the band, written straight into the output.

Nothing full-size is allocated except the output, so the peak extra memory is about the output
plus a few bands, instead of ~15-20 copies of the input on the plain path. It runs only without
autograd (``torch.no_grad()`` or no input/parameter needing a gradient); results equal the plain
path up to float rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from semprior.kernels.reference import EPS, _temperature, acc_dtype

if TYPE_CHECKING:
    from semprior.attention.sem import SEM

#: target pixels per band
BAND_PIXELS = 65536


def bilinear_rows(src: Tensor, size: tuple[int, int], r0: int, r1: int) -> Tensor:
    """Rows ``r0:r1`` of ``F.interpolate(src, size, mode="bilinear", align_corners=False)``, without the rest.

    Shape:
        - src: ``(B, C, Hs, Ws)`` -> ``(B, C, r1 - r0, W)``
    """
    hs, ws = src.shape[-2:]
    h, w = size
    if hs == h:
        rows = src[:, :, r0:r1]
    else:
        y = (torch.arange(r0, r1, device=src.device, dtype=torch.float64) + 0.5) * (hs / h) - 0.5
        y = y.clamp(min=0)
        y0 = y.floor().long().clamp(max=hs - 1)
        y1 = (y0 + 1).clamp(max=hs - 1)
        wy = (y - y0).to(src.dtype).view(1, 1, -1, 1)
        rows = src[:, :, y0] * (1 - wy) + src[:, :, y1] * wy
    if ws == w:
        return rows
    return F.interpolate(rows, size=(r1 - r0, w), mode="bilinear", align_corners=False)


def _dw_rows(f: Tensor, conv: torch.nn.Conv2d, lo: slice, a0: int, a1: int, r0: int, r1: int, h: int) -> Tensor:
    """3x3 depthwise conv (channel slice ``lo``) of rows ``a0:a1`` -> output rows ``r0:r1`` (zero padding at the image edge)."""
    top = 1 if r0 == 0 else 0
    bottom = 1 if r1 == h else 0
    f = F.pad(f, (0, 0, top, bottom))
    weight = conv.weight[lo]
    bias = conv.bias[lo] if conv.bias is not None else None
    return F.conv2d(f, weight, bias, padding=(0, 1), groups=weight.shape[0])


def _pw(x: Tensor, conv: torch.nn.Conv2d, lo: slice) -> Tensor:
    return F.conv2d(x, conv.weight[lo], conv.bias[lo] if conv.bias is not None else None)


def _halo(r0: int, r1: int, h: int, k: int = 1) -> tuple[int, int]:
    return max(r0 - k, 0), min(r1 + k, h)


def sem_forward_banded(block: SEM, x: Tensor, sem: Tensor, illu_fea: Tensor | None = None, band_rows: int | None = None) -> Tensor:
    """SEM forward in two passes over row bands (see the module docstring); inputs already validated.

    Shape:
        - x: ``(B, dim, H, W)``; sem: ``(B, sem_channels, Hs, Ws)`` -> ``(B, dim, H, W)``
    """
    b, c, h, w = x.shape
    heads = block.heads
    qs, ks, vs = slice(0, c), slice(0, c), slice(c, 2 * c)
    band = band_rows or max(1, BAND_PIXELS // w)
    acc = acc_dtype(x)
    s_small = block.sem_proj(sem)

    def q_rows(r0: int, r1: int) -> Tensor:
        a0, a1 = _halo(r0, r1, h)
        f = _pw(block.norm_sem(bilinear_rows(s_small, (h, w), a0, a1)), block.q, slice(None))
        return _dw_rows(f, block.q_dwconv, slice(None), a0, a1, r0, r1, h)

    def kv_rows(r0: int, r1: int, part: slice) -> Tensor:
        a0, a1 = _halo(r0, r1, h)
        f = _pw(block.norm_x(x[:, :, a0:a1]), block.kv, part)
        return _dw_rows(f, block.kv_dwconv, part, a0, a1, r0, r1, h)

    def heads_view(t: Tensor) -> Tensor:
        return rearrange(t, "b (h c) H W -> b h c (H W)", h=heads).to(acc)

    s = torch.zeros(b, heads, c // heads, c // heads, dtype=acc, device=x.device)
    nq = torch.zeros(b, heads, c // heads, dtype=acc, device=x.device)
    nk = torch.zeros_like(nq)
    for r0 in range(0, h, band):
        r1 = min(r0 + band, h)
        qb, kb = heads_view(q_rows(r0, r1)), heads_view(kv_rows(r0, r1, ks))
        s.add_(qb @ kb.transpose(-2, -1))
        nq.add_(torch.linalg.vector_norm(qb, dim=-1).square_())
        nk.add_(torch.linalg.vector_norm(kb, dim=-1).square_())
    a, bn = nq.sqrt().clamp(min=EPS), nk.sqrt().clamp(min=EPS)
    tau = _temperature(block.temperature, heads, x, acc)
    attn = (s / (a.unsqueeze(-1) * bn.unsqueeze(-2)) * tau).softmax(-1)

    out = torch.empty_like(x)
    ffn = block.ffn
    hidden = ffn.project_out.in_channels
    for r0 in range(0, h, band):
        r1 = min(r0 + band, h)
        e0, e1 = _halo(r0, r1, h)  # rows of y needed by the FFN's depthwise conv
        vb = kv_rows(e0, e1, vs)
        if illu_fea is not None:
            vb = vb * illu_fea[:, :, e0:e1]
        ob = rearrange(attn @ heads_view(vb), "b h c (H W) -> b (h c) H W", W=w).to(x.dtype)
        y = x[:, :, e0:e1] + block.project_out(ob)
        g = _dw_rows(ffn.project_in(block.norm_ffn(y)), ffn.dwconv, slice(None), e0, e1, r0, r1, h)
        g = F.gelu(g[:, :hidden]) * g[:, hidden:]
        out[:, :, r0:r1] = y[:, :, r0 - e0 : r0 - e0 + (r1 - r0)] + ffn.project_out(g)
    return out
