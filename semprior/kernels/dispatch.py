"""Backend dispatch for channel attention.

Only the ``reference`` backend exists at this stage; the kernels issue adds ``streaming`` and
``triton`` behind the same signature, each declaring the reasons it cannot run an input.
"""

from __future__ import annotations

from torch import Tensor

from semprior.kernels.reference import channel_attention_reference, ig_channel_attention_reference

BACKENDS = ("auto", "reference")


def validate_backend(backend: str) -> str:
    """Return ``backend`` if it names a known backend, else raise ``ValueError`` listing them."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown channel-attention backend {backend!r}; choose one of {BACKENDS}")
    return backend


def channel_attention(q: Tensor, k: Tensor, v: Tensor, temperature: Tensor | float, *, backend: str = "auto") -> Tensor:
    """Channel attention ``softmax(τ q̂ k̂ᵀ) v`` over ``(B, heads, c, N)`` inputs.

    See :func:`semprior.kernels.reference.channel_attention_reference` for the math.

    Shape:
        - q, k: ``(B, h, c, N)``; v: ``(B, h, c_v, N)`` -> ``(B, h, c_v, N)``

    Example:
        >>> import torch
        >>> q, k, v = torch.randn(3, 1, 2, 8, 64).unbind(0)
        >>> channel_attention(q, k, v, torch.ones(2)).shape
        torch.Size([1, 2, 8, 64])
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown channel-attention backend {backend!r}; choose one of {BACKENDS}")
    return channel_attention_reference(q, k, v, temperature)


def ig_channel_attention(
    q: Tensor, k: Tensor, v: Tensor, illum: Tensor, temperature: Tensor | float, *, backend: str = "auto"
) -> Tensor:
    """Illumination-guided channel attention ``softmax(τ q̂ k̂ᵀ) (v ⊙ illum)``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown channel-attention backend {backend!r}; choose one of {BACKENDS}")
    return ig_channel_attention_reference(q, k, v, illum, temperature)
