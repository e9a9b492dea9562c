"""Inference precision: fp32 (the exact reference), bfloat16 or float16 autocast, and ``"auto"`` choosing.

One setting for every entry point: ``semprior enhance --dtype``, ``semprior eval --dtype``, the web
app and ``enhance_image(precision=...)`` all resolve it here and run the model under
[`autocast_for`][semprior.engine.precision.autocast_for]; the weights always stay float32.

``"auto"`` picks bfloat16 only where both hold:

- the processor computes bfloat16 natively: a CPU with ``avx512_bf16`` or ``amx_bf16`` (read from
  ``/proc/cpuinfo`` on Linux; elsewhere no CPU qualifies), where bfloat16 matrix products run at
  about twice the fp32 rate or more. On other CPUs bfloat16 is emulated and slower than fp32, and
  on GPUs no timing has been measured yet, so ``"auto"`` stays fp32 there;
- the model states the error of its bfloat16 output against fp32
  (``model.bf16_inference_psnr_db``, measured on real images by ``benchmarks/bench_precision.py``)
  and that error is at least ``MIN_PSNR_DB`` (40 dB). Models that state
  nothing run in fp32.

``"bf16"`` / ``"fp16"`` force bfloat16 / float16 autocast (any model, any device that supports
it; [`slower_note`][semprior.engine.precision.slower_note] says when the device lacks the native
arithmetic and the forced one is likely slower than fp32); ``"fp32"`` forces the reference.
Autocast keeps the weights in float32 and runs convolutions and matrix products in bfloat16
with float32 accumulation; reductions, norms and softmax stay float32.

Examples:
    >>> resolve_precision("fp32", torch.nn.Identity(), torch.device("cpu"))
    'fp32'
    >>> with autocast_for("fp32", torch.device("cpu")):
    ...     torch.ones(2, 2) @ torch.ones(2, 2)
    tensor([[2., 2.],
            [2., 2.]])
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator

import torch
from torch import nn

__all__ = [
    "MIN_PSNR_DB",
    "PRECISIONS",
    "autocast_for",
    "cpu_bf16_flags",
    "cpu_flags",
    "resolve_precision",
    "slower_note",
]

#: the values a ``precision`` setting takes
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: ``"auto"`` uses bfloat16 only for models whose measured bfloat16 output is at least this close
#: to fp32 (PSNR of the output against the fp32 output, worst image)
MIN_PSNR_DB = 40.0
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_FP16_FLAGS = ("avx512_fp16", "amx_fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's flags from ``/proc/cpuinfo`` (empty off Linux or when unreadable)."""
    if not sys.platform.startswith("linux"):
        return frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        return frozenset()
    return frozenset()


def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU flags among ``avx512_bf16`` / ``amx_bf16`` this machine has (``()`` off Linux)."""
    return tuple(fl for fl in _BF16_FLAGS if fl in cpu_flags())


def slower_note(precision: str, device: torch.device) -> str | None:
    """One ``note:`` line when a forced ``"bf16"``/``"fp16"`` is likely slower than fp32 on ``device``, else ``None``.

    On a CPU, bfloat16 needs ``avx512_bf16``/``amx_bf16`` and float16 ``avx512_fp16``/``amx_fp16``
    to be computed natively; without them the work runs through conversions. A GPU without native
    bfloat16 gets the note for ``"bf16"``. ``"auto"`` never picks a slower precision, so it gets none.

    Examples:
        >>> slower_note("fp32", torch.device("cpu")) is None
        True
    """
    if precision not in _DTYPES:
        return None
    if device.type == "cpu":
        fast = _BF16_FLAGS if precision == "bf16" else _FP16_FLAGS
        if precision == "bf16" and cpu_bf16_flags():
            return None
        if precision == "fp16" and cpu_flags() & set(fast):
            return None
        have = "no " + " / ".join(fast) if cpu_flags() else "its instruction set is unknown"
        return (
            f"note: --dtype {precision} on this CPU ({have}) is usually slower than fp32; "
            "use --dtype auto or fp32 for speed"
        )
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        return f"note: {torch.cuda.get_device_name(device)} has no native bf16; --dtype fp16 or fp32 is faster"
    return None


def resolve_precision(precision: str, model: nn.Module, device: torch.device) -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"``: what ``precision`` means for ``model`` on ``device`` (module docstring)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision != "auto":
        return precision
    psnr = getattr(model, "bf16_inference_psnr_db", None)
    if device.type == "cpu" and cpu_bf16_flags() and psnr is not None and psnr >= MIN_PSNR_DB:
        return "bf16"
    return "fp32"


@contextlib.contextmanager
def autocast_for(precision: str, device: torch.device) -> Iterator[None]:
    """bfloat16 / float16 autocast on ``device`` for ``"bf16"`` / ``"fp16"``.

    Nothing for ``"fp32"`` (resolve ``"auto"`` first).
    """
    if precision == "fp32":
        yield
        return
    if precision not in _DTYPES:
        raise ValueError(
            f"autocast_for takes 'fp32', 'bf16' or 'fp16' (resolve 'auto' with resolve_precision), got {precision!r}"
        )
    with torch.autocast(device.type, dtype=_DTYPES[precision]):
        yield
