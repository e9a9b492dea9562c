"""Plain PyTorch channel attention: the specification, the CPU fallback and the gradient oracle.

For one batch element and one head, with ``q, k, v`` of shape ``(c, N)`` (``N = H*W``)::

    q̂ = q / max(‖q‖₂, eps)   (norm over the N spatial positions, per channel)
    k̂ = k / max(‖k‖₂, eps)
    A = softmax(τ · q̂ k̂ᵀ)      (c × c, softmax over the last axis)
    out = A v                  (c, N)

This is the "transposed" attention of Restormer / Retinexformer (a ``c × c`` map per head),
with ``τ`` a learnable per-head temperature. The illumination-guided variant (Retinexformer's
IG-MSA) multiplies the values by illumination features first: ``out = A (v ⊙ illum)``.
Accumulation is in float32 whatever the input dtype; the output has the input dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-12


def _check_qkv(q: Tensor, k: Tensor, v: Tensor, temperature: Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{name} must have shape (B, heads, c, N), got {tuple(t.shape)}")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape (B, heads, c, N), got {tuple(q.shape)} and {tuple(k.shape)}")
    if v.shape[:2] != q.shape[:2] or v.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"v must have shape (B, heads, c_v, N) matching q's batch, heads and N, got q {tuple(q.shape)}, v {tuple(v.shape)}"
        )
    if q.shape[-1] == 0:
        raise ValueError("q, k, v have N = 0 spatial positions; channel attention needs at least one")
    heads = q.shape[1]
    if temperature.numel() not in (1, heads):
        raise ValueError(f"temperature must have 1 or heads={heads} elements, got shape {tuple(temperature.shape)}")


def _temperature(temperature: Tensor | float, heads: int, like: Tensor) -> Tensor:
    t = torch.as_tensor(temperature, device=like.device)
    return t.to(torch.float32).reshape(-1).expand(heads).reshape(1, heads, 1, 1) if t.numel() == 1 else t.to(torch.float32).reshape(1, heads, 1, 1)


def channel_attention_reference(q: Tensor, k: Tensor, v: Tensor, temperature: Tensor | float) -> Tensor:
    """Channel (transposed) attention, plain PyTorch.

    Args:
        q: queries ``(B, heads, c, N)``.
        k: keys ``(B, heads, c, N)``.
        v: values ``(B, heads, c_v, N)``.
        temperature: ``(heads,)``, ``(heads, 1, 1)`` or a scalar.

    Returns:
        ``(B, heads, c_v, N)`` in the dtype of ``v``.

    Shape:
        - q, k: ``(B, h, c, N)``; v: ``(B, h, c_v, N)`` -> ``(B, h, c_v, N)``

    Example:
        >>> import torch
        >>> q, k, v = torch.randn(3, 2, 2, 4, 16).unbind(0)
        >>> channel_attention_reference(q, k, v, torch.ones(2)).shape
        torch.Size([2, 4, 16])
    """
    temperature = torch.as_tensor(temperature, device=q.device)
    _check_qkv(q, k, v, temperature)
    out_dtype = v.dtype
    qf, kf, vf = q.float(), k.float(), v.float()
    qn = F.normalize(qf, dim=-1, eps=EPS)
    kn = F.normalize(kf, dim=-1, eps=EPS)
    attn = (qn @ kn.transpose(-2, -1)) * _temperature(temperature, q.shape[1], q)
    attn = attn.softmax(dim=-1)
    return (attn @ vf).to(out_dtype)


def channel_attention_map_reference(q: Tensor, k: Tensor, temperature: Tensor | float) -> Tensor:
    """The ``(B, heads, c, c)`` softmax attention map alone (rows sum to one)."""
    temperature = torch.as_tensor(temperature, device=q.device)
    _check_qkv(q, k, q, temperature)
    qn = F.normalize(q.float(), dim=-1, eps=EPS)
    kn = F.normalize(k.float(), dim=-1, eps=EPS)
    return ((qn @ kn.transpose(-2, -1)) * _temperature(temperature, q.shape[1], q)).softmax(dim=-1)


def ig_channel_attention_reference(q: Tensor, k: Tensor, v: Tensor, illum: Tensor, temperature: Tensor | float) -> Tensor:
    """Illumination-guided channel attention (Retinexformer IG-MSA): ``A (v ⊙ illum)``.

    Shape:
        - q, k: ``(B, h, c, N)``; v, illum: ``(B, h, c_v, N)`` -> ``(B, h, c_v, N)``
    """
    if illum.shape != v.shape:
        raise ValueError(f"illum must have the shape of v {tuple(v.shape)}, got {tuple(illum.shape)}")
    return channel_attention_reference(q, k, v * illum, temperature)
