"""Cheap input validation with messages that name the problem and the fix."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.fx import _symbolic_trace

# torch >= 2.9 names torch.fx.symbolic_trace apart (its is_fx_tracing also answers True under torch.export and logs a
# warning); before 2.9 is_fx_tracing is the only flag and only torch.fx.symbolic_trace sets it. Under is_compiling()
# (checked first) the two agree.
_is_fx_tracing = getattr(_symbolic_trace, "is_fx_symbolic_tracing", None) or _symbolic_trace.is_fx_tracing


def is_tracing() -> bool:
    """True while ``torch.compile``, ``torch.export``, ``torch.jit.trace`` or ``torch.fx`` traces the code.

    Data-dependent checks (``bool(tensor)``) are skipped then: they would break the graph (compile),
    fail (export: ``GuardOnDataDependentSymNode``) or be baked in as constants (trace). Shapes,
    dtypes and types are still checked. Validate the data at the entry point instead (eager).

    Examples:
        >>> is_tracing()
        False
    """
    return bool(torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting() or _is_fx_tracing())


def check_tensor(x: object, name: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; convert with torch.as_tensor(...)")
    return x


def check_image(
    x: object,
    name: str = "image",
    *,
    channels: int | None = 3,
    finite: bool = True,
    min_size: int = 1,
    unit_range: bool = False,
) -> Tensor:
    """Validate a ``(B, C, H, W)`` floating-point image batch.

    Raises ``TypeError``/``ValueError`` with a message that says what is wrong and how to fix it.

    ``finite`` rejects NaN/Inf; ``unit_range`` rejects values outside ``[0, 1]`` (the rule for the
    *input* of every enhancer: images are float RGB in ``[0, 1]``; nothing is clamped silently).
    Both are data-dependent, so they run in eager mode only and are skipped while compiling,
    exporting or tracing (`is_tracing`): an exported graph carries no check and no
    host-device synchronisation.

    Examples:
        >>> import torch
        >>> check_image(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 8, 8])
    """
    x = check_tensor(x, name)
    if x.dim() != 4:
        hint = " (add a batch dimension with x.unsqueeze(0))" if x.dim() == 3 else ""
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}{hint}")
    if channels is not None and x.shape[1] != channels:
        hint = ""
        if channels == 3 and x.shape[1] == 1:
            hint = " (grayscale: repeat it with x.expand(-1, 3, -1, -1))"
        elif channels == 3 and x.shape[1] == 4:
            hint = " (RGBA: drop alpha with x[:, :3])"
        raise ValueError(f"{name} must have {channels} channels, got {x.shape[1]} (shape {tuple(x.shape)}){hint}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}; "
            "for 8-bit images use x.float() / 255"
        )
    if x.numel() == 0 or x.shape[-1] < min_size or x.shape[-2] < min_size:
        raise ValueError(
            f"{name} is empty or smaller than {min_size}x{min_size}: shape {tuple(x.shape)}; "
            f"pass at least one image of at least {min_size}x{min_size} pixels"
        )
    if (finite or unit_range) and not is_tracing():
        if finite and not bool(torch.isfinite(x).all()):
            raise ValueError(
                f"{name} contains NaN or Inf values; clean it first (e.g. torch.nan_to_num(x).clamp(0, 1))"
            )
        if unit_range:
            check_unit_range(x, name)
    return x


def check_unit_range(x: Tensor, name: str = "image") -> Tensor:
    """Reject values outside ``[0, 1]`` (eager mode only; a no-op while tracing, see `is_tracing`).

    Examples:
        >>> import torch
        >>> check_unit_range(torch.full((1, 3, 2, 2), 1.5))
        Traceback (most recent call last):
        ...
        ValueError: image has values outside [0, 1] (min 1.5, max 1.5); images are float RGB in [0, 1]: divide 8-bit
            data by 255, or clamp with x.clamp(0, 1) if the excess is intended
    """
    if is_tracing() or x.numel() == 0:
        return x
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))
    if lo < 0.0 or hi > 1.0:
        hint = "divide 8-bit data by 255" if hi > 1.0 and hi <= 255.0 and lo >= 0.0 else "rescale it"
        raise ValueError(
            f"{name} has values outside [0, 1] (min {lo:.4g}, max {hi:.4g}); images are float RGB in [0, 1]: "
            f"{hint}, or clamp with x.clamp(0, 1) if the excess is intended"
        )
    return x


def check_module_dtype(x: Tensor, module: torch.nn.Module, name: str = "input") -> Tensor:
    """Raise a ``TypeError`` naming the fix when ``x``'s dtype differs from ``module``'s floating parameters.

    Skipped under autocast (which casts inside the layers). Without this check PyTorch reports
    "Input type (double) and bias type (float) should be the same" from deep inside the model.

    Examples:
        >>> import torch
        >>> check_module_dtype(torch.rand(1, 3, 4, 4), torch.nn.Conv2d(3, 3, 1)).dtype
        torch.float32
    """
    if torch.is_autocast_enabled(x.device.type):
        return x
    p = next((p for p in module.parameters() if p.is_floating_point()), None)
    if p is not None and x.dtype != p.dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the parameters of {type(module).__name__} are {p.dtype}; "
            f"convert the input with x.to({p.dtype}) or the model with model.to({x.dtype})"
        )
    return x


def check_same_shape(a: Tensor, b: Tensor, names: tuple[str, str] = ("input", "target")) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_reduction(reduction: str) -> Literal["mean", "sum", "none"]:
    if reduction == "mean":
        return "mean"
    if reduction == "sum":
        return "sum"
    if reduction == "none":
        return "none"
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def reduce(x: Tensor, reduction: str) -> Tensor:
    """Apply a loss reduction to a per-sample tensor."""
    check_reduction(reduction)
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x
