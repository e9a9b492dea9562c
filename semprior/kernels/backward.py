"""The ``c x c`` part of the channel-attention backward, shared by the streaming and Triton kernels.

Both kernels stream the large ``N``-sized passes themselves and meet in the middle on the small
``c x c`` maps. With ``A = softmax(τ P)``, ``P = S / (a bᵀ)`` and ``dA`` the gradient of ``A``
(accumulated from ``dout`` and ``v``)::

    dL = A ⊙ (dA - rowsum(dA ⊙ A))          (softmax backward)
    dP = τ dL,   dτ = Σ dL ⊙ P              (per head, summed over the map)
    G  = dP / (a bᵀ)                        (dq += G k,  dk += Gᵀ q)
    r_q = -rowsum(dP ⊙ P) / a²,  r_k = -colsum(dP ⊙ P) / b²   (dq += r_q q,  dk += r_k k)

``r`` is zero where a norm is below ``ε`` (``F.normalize``'s clamp has no gradient there).
The reference (`semprior.kernels.reference`, plain autograd) is the oracle both are tested
against.
"""

from __future__ import annotations

import torch
from torch import Tensor

from semprior.kernels.reference import EPS

__all__ = ["cxc_backward"]


def cxc_backward(
    attn: Tensor, p: Tensor, da: Tensor, tau: Tensor, a: Tensor, b: Tensor, need_tau: bool = True
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Small-map backward of channel attention: ``(G, r_q, r_k, dτ per map)``.

    Args:
        attn: ``A``, ``(..., c, c)``.
        p: the normalised scores ``P``, ``(..., c, c)``.
        da: ``dA``, ``(..., c, c)``.
        tau: temperature broadcastable to ``(..., c, c)`` (e.g. ``(1, h, 1, 1)`` or ``(B·h, 1, 1)``).
        a, b: clamped query and key norms, ``(..., c)``.
        need_tau: compute the temperature gradient.

    Returns:
        ``G (..., c, c)``, ``r_q (..., c)``, ``r_k (..., c)``, and ``Σ dL ⊙ P`` per map ``(...)``
        (``None`` unless ``need_tau``); the caller reduces the last over the batch to ``τ``'s shape.

    Examples:
        >>> c = 3
        >>> s = torch.randn(2, c, c); a = b = torch.ones(2, c)
        >>> attn = s.softmax(-1)
        >>> g, rq, rk, dt = cxc_backward(attn, s, torch.randn(2, c, c), torch.ones(2, 1, 1), a, b)
        >>> g.shape, rq.shape, dt.shape
        (torch.Size([2, 3, 3]), torch.Size([2, 3]), torch.Size([2]))
    """
    dl = attn * (da - (da * attn).sum(-1, keepdim=True))
    dtau = (dl * p).sum((-2, -1)) if need_tau else None
    dp = dl * tau
    g = dp / (a.unsqueeze(-1) * b.unsqueeze(-2))
    dpp = dp * p
    rq = torch.where(a > EPS, -dpp.sum(-1) / a.square(), torch.zeros_like(a))
    rk = torch.where(b > EPS, -dpp.sum(-2) / b.square(), torch.zeros_like(b))
    return g, rq, rk, dtau
