"""Plain PyTorch channel attention: the specification, the CPU fallback and the gradient oracle.

For one batch element and one head, with ``q, k, v`` of shape ``(c, N)`` (``N = H*W``)::

    q̂ = q / max(‖q‖₂, eps)   (norm over the N spatial positions, per channel)
    k̂ = k / max(‖k‖₂, eps)
    A = softmax(τ · q̂ k̂ᵀ)      (c × c, softmax over the last axis)
    out = A v                  (c, N)

This is the "transposed" attention of Restormer / Retinexformer (a ``c × c`` map per head),
with ``τ`` a learnable per-head temperature. The illumination-guided variant (Retinexformer's
IG-MSA) multiplies the values by illumination features first: ``out = A (v ⊙ illum)``.
Accumulation is in float32 for half-precision inputs (float64 stays float64, so gradcheck works);
the output has the dtype of ``v``.
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
        if not t.is_floating_point():
            raise TypeError(f"{name} must be floating point, got {t.dtype}; convert with .float()")
        if t.device != q.device:
            raise ValueError(f"q, k, v must be on one device, got q on {q.device} and {name} on {t.device}")
    if q.shape != k.shape:
        raise ValueError(
            f"q and k must have the same shape (B, heads, c, N), got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    if v.shape[:2] != q.shape[:2] or v.shape[-1] != q.shape[-1]:
        raise ValueError(
            "v must have shape (B, heads, c_v, N) matching q's batch, heads and N, "
            f"got q {tuple(q.shape)}, v {tuple(v.shape)}"
        )
    if v.shape[-2] != q.shape[-2]:
        raise ValueError(
            "v must have as many channels per head as k (the c×c map multiplies v), "
            f"got k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if q.shape[-1] == 0:
        raise ValueError("q, k, v have N = 0 spatial positions; channel attention needs at least one")
    heads = q.shape[1]
    if temperature.numel() not in (1, heads):
        raise ValueError(f"temperature must have 1 or heads={heads} elements, got shape {tuple(temperature.shape)}")


def acc_dtype(*tensors: Tensor) -> torch.dtype:
    """Accumulation dtype: float64 if any input is float64, else float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _temperature(temperature: Tensor | float, heads: int, like: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Temperature as a differentiable ``(1, heads, 1, 1)`` tensor in ``dtype``."""
    t = torch.as_tensor(temperature, device=like.device).to(dtype)
    return t.reshape(1, 1, 1, 1).expand(1, heads, 1, 1) if t.numel() == 1 else t.reshape(1, heads, 1, 1)


def channel_attention_reference(q: Tensor, k: Tensor, v: Tensor, temperature: Tensor | float) -> Tensor:
    """Channel (transposed) attention, plain PyTorch.

    Args:
        q: queries ``(B, heads, c, N)``.
        k: keys ``(B, heads, c, N)``.
        v: values ``(B, heads, c, N)`` (as many channels per head as ``k``).
        temperature: ``(heads,)``, ``(heads, 1, 1)`` or a scalar.

    Returns:
        ``(B, heads, c_v, N)`` in the dtype of ``v``.

    Shape:
        - q, k: ``(B, h, c, N)``; v: ``(B, h, c_v, N)`` -> ``(B, h, c_v, N)``

    Examples:
        >>> import torch
        >>> q, k, v = torch.randn(3, 2, 2, 4, 16).unbind(0)
        >>> channel_attention_reference(q, k, v, torch.ones(2)).shape
        torch.Size([2, 2, 4, 16])
    """
    temperature = torch.as_tensor(temperature, device=q.device)
    _check_qkv(q, k, v, temperature)
    out_dtype = v.dtype
    acc = acc_dtype(q, k, v)
    qf, kf, vf = q.to(acc), k.to(acc), v.to(acc)
    qn = F.normalize(qf, dim=-1, eps=EPS)
    kn = F.normalize(kf, dim=-1, eps=EPS)
    attn = (qn @ kn.transpose(-2, -1)) * _temperature(temperature, q.shape[1], q, acc)
    attn = attn.softmax(dim=-1)
    return (attn @ vf).to(out_dtype)


def channel_attention_map_reference(q: Tensor, k: Tensor, temperature: Tensor | float) -> Tensor:
    """The ``(B, heads, c, c)`` softmax attention map alone (rows sum to one)."""
    temperature = torch.as_tensor(temperature, device=q.device)
    _check_qkv(q, k, q, temperature)
    acc = acc_dtype(q, k)
    qn = F.normalize(q.to(acc), dim=-1, eps=EPS)
    kn = F.normalize(k.to(acc), dim=-1, eps=EPS)
    return ((qn @ kn.transpose(-2, -1)) * _temperature(temperature, q.shape[1], q, acc)).softmax(dim=-1)


def ig_channel_attention_reference(
    q: Tensor, k: Tensor, v: Tensor, illum: Tensor, temperature: Tensor | float
) -> Tensor:
    """Illumination-guided channel attention (Retinexformer IG-MSA): ``A (v ⊙ illum)``.

    Shape:
        - q, k: ``(B, h, c, N)``; v, illum: ``(B, h, c_v, N)`` -> ``(B, h, c_v, N)``
    """
    if not isinstance(illum, Tensor):
        raise TypeError(f"illum must be a torch.Tensor, got {type(illum).__name__}")
    if illum.shape != v.shape:
        raise ValueError(f"illum must have the shape of v {tuple(v.shape)}, got {tuple(illum.shape)}")
    return channel_attention_reference(q, k, v * illum, temperature)
