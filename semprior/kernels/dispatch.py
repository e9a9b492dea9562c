"""Backend dispatch for channel attention.

Every backend declares the devices and dtypes it runs and its limits, and says *why* it cannot
run a given input ([`not_supported_reasons`][semprior.kernels.dispatch.not_supported_reasons]). ``backend="auto"`` picks
the first runnable backend in the order ``triton`` > ``streaming`` > ``reference``; a forced backend that cannot
run raises ``RuntimeError`` listing the reasons — there is no silent fallback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor

from semprior.kernels.reference import _check_qkv, channel_attention_reference, ig_channel_attention_reference

BACKENDS = ("auto", "reference", "streaming", "triton")
#: preference order of ``auto``
AUTO_ORDER = ("triton", "streaming", "reference")


@dataclass(frozen=True)
class BackendSpec:
    """What a backend declares: where it runs and its limits."""

    name: str
    devices: tuple[str, ...]
    dtypes: tuple[torch.dtype, ...]
    max_channels: int | None = None
    deterministic: bool = True
    note: str = ""


_HALF = (torch.float16, torch.bfloat16)
SPECS: dict[str, BackendSpec] = {
    "reference": BackendSpec(
        "reference", ("cpu", "cuda"), (torch.float32, torch.float64, *_HALF), note="plain PyTorch; the specification"
    ),
    "streaming": BackendSpec(
        "streaming",
        ("cpu", "cuda"),
        (torch.float32, torch.float64, *_HALF),
        note="tiled one-pass PyTorch, own backward",
    ),
    "triton": BackendSpec(
        "triton",
        ("cuda", "cpu (only under TRITON_INTERPRET=1)"),
        (torch.float32, *_HALF),
        max_channels=128,
        note="fused split-K + softmax·v kernels and backward kernels",
    ),
}


def validate_backend(backend: str) -> str:
    """Return ``backend`` if it names a known backend, else raise ``ValueError`` listing them."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown channel-attention backend {backend!r}; choose one of {BACKENDS}")
    return backend


def _triton_reasons(tensors: tuple[Tensor, ...]) -> list[str]:
    reasons: list[str] = []
    spec = SPECS["triton"]
    import importlib.util

    if importlib.util.find_spec("triton") is None:
        return ["triton is not installed (pip install 'semprior[triton]')"]
    q = tensors[0]
    if q.device.type == "cpu":
        if os.environ.get("TRITON_INTERPRET") != "1":
            reasons.append(
                "tensors are on the CPU and no CUDA device is used; "
                "Triton runs on CPU tensors only under TRITON_INTERPRET=1"
            )
        else:
            from semprior.kernels import triton_backend

            if not triton_backend.interpreted():
                reasons.append(
                    "TRITON_INTERPRET=1 was set after semprior's Triton kernels were compiled for the GPU; "
                    "set it before starting Python"
                )
    elif q.device.type != "cuda":
        reasons.append(f"device {q.device.type!r} is not supported (cuda, or cpu under TRITON_INTERPRET=1)")
    for t in tensors:
        if t.dtype not in spec.dtypes:
            reasons.append(f"dtype {t.dtype} is not supported (float32, float16, bfloat16)")
            break
    c, cv = tensors[0].shape[-2], tensors[2].shape[-2]
    if max(c, cv) > (spec.max_channels or 0):
        reasons.append(
            f"channels per head c={c}, c_v={cv} exceed the kernel limit {spec.max_channels} "
            "(the c×c map lives in registers)"
        )
    return reasons


def not_supported_reasons(backend: str, q: Tensor, k: Tensor, v: Tensor, illum: Tensor | None = None) -> list[str]:
    """Why ``backend`` cannot run these inputs (an empty list when it can).

    Examples:
        >>> import torch
        >>> q = torch.randn(1, 1, 8, 16)
        >>> not_supported_reasons("streaming", q, q, q)
        []
    """
    validate_backend(backend)
    if backend == "auto":
        return (
            []
            if any(not not_supported_reasons(b, q, k, v, illum) for b in AUTO_ORDER)
            else ["no backend can run this input"]
        )
    tensors = (q, k, v) if illum is None else (q, k, v, illum)
    if backend == "triton":
        return _triton_reasons(tensors)
    spec = SPECS[backend]
    reasons = []
    if q.device.type not in spec.devices:
        reasons.append(f"device {q.device.type!r} is not supported ({', '.join(spec.devices)})")
    if any(t.dtype not in spec.dtypes for t in tensors):
        reasons.append(
            f"dtypes {sorted({str(t.dtype) for t in tensors})} not all supported ({', '.join(map(str, spec.dtypes))})"
        )
    return reasons


def select_backend(backend: str, q: Tensor, k: Tensor, v: Tensor, illum: Tensor | None = None) -> str:
    """Resolve ``backend`` for these inputs: ``auto`` -> the best runnable one; a forced one is checked.

    Raises:
        RuntimeError: the forced backend cannot run the input (the message lists why).
    """
    validate_backend(backend)
    if backend == "auto":
        why = {}
        for name in AUTO_ORDER:
            reasons = not_supported_reasons(name, q, k, v, illum)
            if not reasons:
                return name
            why[name] = reasons
        raise RuntimeError(f"no channel-attention backend can run this input: {why}")
    reasons = not_supported_reasons(backend, q, k, v, illum)
    if reasons:
        raise RuntimeError(
            f"channel-attention backend {backend!r} cannot run this input: {'; '.join(reasons)}. "
            "Pick another backend (or backend='auto')."
        )
    return backend


def _shape_check(q: object, k: object, v: object, temperature: object) -> None:
    """Input errors first (they are the caller's to fix, whatever the backend)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    _check_qkv(q, k, v, torch.as_tensor(temperature))  # type: ignore[arg-type]


def channel_attention(q: Tensor, k: Tensor, v: Tensor, temperature: Tensor | float, *, backend: str = "auto") -> Tensor:
    """Channel attention ``softmax(τ q̂ k̂ᵀ) v`` over ``(B, heads, c, N)`` inputs.

    ``q̂, k̂`` are q and k L2-normalised over the N positions; ``τ`` a per-head temperature. See
    `semprior.kernels.reference` for the math and
    [`not_supported_reasons`][semprior.kernels.dispatch.not_supported_reasons] for what each backend runs.

    Args:
        q: queries ``(B, heads, c, N)``.
        k: keys ``(B, heads, c, N)``.
        v: values ``(B, heads, c, N)``.
        temperature: scalar, ``(heads,)`` or ``(heads, 1, 1)`` (differentiable).
        backend: ``"auto"``, ``"reference"``, ``"streaming"`` or ``"triton"``.

    Shape:
        - q, k, v: ``(B, h, c, N)`` -> ``(B, h, c, N)``

    Examples:
        >>> import torch
        >>> q, k, v = torch.randn(3, 1, 2, 8, 64).unbind(0)
        >>> channel_attention(q, k, v, torch.ones(2)).shape
        torch.Size([1, 2, 8, 64])
    """
    validate_backend(backend)
    _shape_check(q, k, v, temperature)
    name = select_backend(backend, q, k, v)
    if name == "reference":
        return channel_attention_reference(q, k, v, temperature)
    if name == "streaming":
        from semprior.kernels.streaming import channel_attention_streaming

        return channel_attention_streaming(q, k, v, temperature)
    from semprior.kernels.triton_backend import channel_attention_triton

    return channel_attention_triton(q, k, v, temperature)


def ig_channel_attention(
    q: Tensor, k: Tensor, v: Tensor, illum: Tensor, temperature: Tensor | float, *, backend: str = "auto"
) -> Tensor:
    """Illumination-guided channel attention ``softmax(τ q̂ k̂ᵀ) (v ⊙ illum)`` (Retinexformer IG-MSA).

    Shape:
        - q, k: ``(B, h, c, N)``; v, illum: ``(B, h, c_v, N)`` -> ``(B, h, c_v, N)``

    Examples:
        >>> import torch
        >>> q, k, v, illum = torch.randn(4, 1, 1, 4, 20).unbind(0)
        >>> ig_channel_attention(q, k, v, illum, 1.0).shape
        torch.Size([1, 1, 4, 20])
    """
    validate_backend(backend)
    _shape_check(q, k, v, temperature)
    if not isinstance(illum, Tensor):
        raise TypeError(f"illum must be a torch.Tensor, got {type(illum).__name__}")
    if illum.shape != v.shape:
        raise ValueError(f"illum must have the shape of v {tuple(v.shape)}, got {tuple(illum.shape)}")
    name = select_backend(backend, q, k, v, illum)
    if name == "reference":
        return ig_channel_attention_reference(q, k, v, illum, temperature)
    if name == "streaming":
        from semprior.kernels.streaming import ig_channel_attention_streaming

        return ig_channel_attention_streaming(q, k, v, illum, temperature)
    from semprior.kernels.triton_backend import ig_channel_attention_triton

    return ig_channel_attention_triton(q, k, v, illum, temperature)
