"""Memory-lean SEM inference: the whole block streamed over bands of rows, from SEM's own parts.

Channel attention needs a global reduction over all positions before any output can be written,
so the block runs in two passes over horizontal bands (each band with the one-row halo its 3x3
depthwise convolutions need):

1. for each band: ``q`` (semantic branch) and ``k`` (image branch) → accumulate the Gram matrix
   ``S = q kᵀ`` and the squared norms; then ``A = block.attention_map(S, ‖q‖², ‖k‖²)`` (``c×c``
   per head, the same function the plain path's map comes from);
2. for each band: recompute ``v`` (two-row halo), ``y = x + out(A v)`` for the band plus one halo
   row, then ``y + GDFN(LN(y))`` for the band
   ([`GatedDConvFeedForward.rows`][semprior.attention.layers.GatedDConvFeedForward.rows]), written straight into the
   output.

Every layer call is one of the block's own modules or methods (``queries_in``,
``keys_values_in``, ``attention_map``, ``ffn.rows``): the banded path has no math of its own
besides the row bookkeeping of `semprior._bands`. This module never imports
`semprior.attention.sem` (the block is passed in).

Nothing full-size is allocated except the output (none at all with ``out=x``: the block then
overwrites its input, one band behind the band being read), so the peak extra memory is about
one output plus a few bands, instead of ~15-20 copies of the input on the plain path. It runs
only without autograd; results equal the plain path up to float rounding.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from semprior._bands import BAND_PIXELS, conv_rows, halo, row_bands
from semprior.kernels.reference import acc_dtype

__all__ = ["bilinear_rows", "sem_forward_banded"]


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


def sem_forward_banded(
    block: Any,
    x: Tensor,
    sem: Tensor,
    illu_fea: Tensor | None = None,
    band_rows: int | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """SEM forward in two passes over row bands (see the module docstring); inputs already validated.

    Args:
        block: the [`SEM`][semprior.attention.sem.SEM] whose parts run.
        x: as `SEM.forward`.
        sem: as `SEM.forward`.
        illu_fea: as `SEM.forward`.
        band_rows: rows per band (at least 2 with ``out=x``); about 65,536 pixels when ``None``.
        out: where to write the result; may be ``x`` itself (the same tensor object: in place, no
            full-size allocation; ``x`` must not be needed afterwards).

    Shape:
        - x: ``(B, dim, H, W)``; sem: ``(B, sem_channels, Hs, Ws)`` -> ``(B, dim, H, W)``
    """
    if torch.is_grad_enabled() and (
        x.requires_grad or sem.requires_grad or any(p.requires_grad for p in block.parameters())
    ):
        raise RuntimeError("sem_forward_banded runs without autograd only; call it under torch.no_grad()")
    b, c, h, w = x.shape
    heads = block.heads
    band = band_rows or max(2, BAND_PIXELS // w)
    in_place = out is x
    if in_place and band < 2 and h > band:
        raise ValueError(f"in-place banded SEM needs band_rows >= 2, got {band}")
    acc = acc_dtype(x)
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    kv = block.kv_dwconv
    # a full-size semantic map (the baseline's self-attention) is projected band by band
    lazy = sem.shape[-2:] == (h, w)
    s_small = sem if lazy else block.sem_proj(sem)  # lazy: projected per band, below

    def q_rows(r0: int, r1: int) -> Tensor:
        a0, a1 = halo(r0, r1, h)
        s = block.sem_proj(sem[:, :, a0:a1]) if lazy else bilinear_rows(s_small, (h, w), a0, a1)
        return conv_rows(block.queries_in(s), block.q_dwconv, r0, r1, h, a0)

    def kv_rows(r0: int, r1: int, part: slice) -> Tensor:
        a0, a1 = halo(r0, r1, h)
        return conv_rows(block.keys_values_in(x[:, :, a0:a1], part), kv, r0, r1, h, a0, channels=part)

    def heads_view(t: Tensor) -> Tensor:
        return rearrange(t, "b (h c) H W -> b h c (H W)", h=heads).to(acc)

    gram = torch.zeros(b, heads, c // heads, c // heads, dtype=acc, device=x.device)
    nq = torch.zeros(b, heads, c // heads, dtype=acc, device=x.device)
    nk = torch.zeros_like(nq)
    for r0, r1 in row_bands(h, band):
        qb, kb = heads_view(q_rows(r0, r1)), heads_view(kv_rows(r0, r1, slice(0, c)))
        gram.add_(qb @ kb.transpose(-2, -1))
        nq.add_(qb.square().sum(-1))
        nk.add_(kb.square().sum(-1))
    attn = block.attention_map(gram, nq, nk)

    if out is None:
        out = torch.empty_like(x)
    pending: tuple[int, int, Tensor] | None = None
    for r0, r1 in row_bands(h, band):
        e0, e1 = halo(r0, r1, h)  # rows of y needed by the FFN's depthwise conv
        vb = kv_rows(e0, e1, slice(c, 2 * c))
        if illu_fea is not None:
            vb = vb * illu_fea[:, :, e0:e1]
        ob = rearrange(attn @ heads_view(vb), "b h c (H W) -> b (h c) H W", W=w).to(x.dtype)
        ob = ob.contiguous(memory_format=layout)  # x's layout: the residual add below is then not strided
        y = x[:, :, e0:e1] + block.project_out(ob)
        res = y[:, :, r0 - e0 : r1 - e0] + block.ffn.rows(block.norm_ffn(y), r0, r1, h, e0)
        if in_place:  # x rows of this band are still read by the next one: write one band behind
            if pending is not None:
                out[:, :, pending[0] : pending[1]] = pending[2]
            pending = (r0, r1, res)
        else:
            out[:, :, r0:r1] = res
    if pending is not None:
        out[:, :, pending[0] : pending[1]] = pending[2]
    return out
