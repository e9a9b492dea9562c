"""Inference precision: fp32 (the exact reference) or bfloat16 autocast, and ``"auto"`` choosing between them.

``"auto"`` picks bfloat16 only where both hold:

- the processor computes bfloat16 natively: a CPU with ``avx512_bf16`` or ``amx_bf16`` (read from
  ``/proc/cpuinfo`` on Linux; elsewhere no CPU qualifies), where bfloat16 matrix products run at
  about twice the fp32 rate or more. On other CPUs bfloat16 is emulated and slower than fp32, and
  on GPUs no timing has been measured yet, so ``"auto"`` stays fp32 there;
- the model states the error of its bfloat16 output against fp32
  (``model.bf16_inference_psnr_db``, measured on real images by ``benchmarks/bench_precision.py``)
  and that error is at least ``MIN_PSNR_DB`` (40 dB). Models that state
  nothing run in fp32.

``"bf16"`` forces bfloat16 autocast (any model, any device that supports it); ``"fp32"`` forces
the reference. Autocast keeps the weights in float32 and runs convolutions and matrix products in
bfloat16 with float32 accumulation; reductions, norms and softmax stay float32.

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

__all__ = ["MIN_PSNR_DB", "PRECISIONS", "autocast_for", "cpu_bf16_flags", "resolve_precision"]

#: the values a ``precision`` setting takes
PRECISIONS = ("auto", "fp32", "bf16")
#: ``"auto"`` uses bfloat16 only for models whose measured bfloat16 output is at least this close
#: to fp32 (PSNR of the output against the fp32 output, worst image)
MIN_PSNR_DB = 40.0
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU flags among ``avx512_bf16`` / ``amx_bf16`` this machine has (``()`` off Linux)."""
    if not sys.platform.startswith("linux"):
        return ()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return tuple(fl for fl in _BF16_FLAGS if fl in flags)
    except OSError:
        return ()
    return ()


def resolve_precision(precision: str, model: nn.Module, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"``: what ``precision`` means for ``model`` on ``device`` (see the module docstring)."""
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
    """bfloat16 autocast on ``device`` for ``"bf16"``; nothing for ``"fp32"`` (resolve ``"auto"`` first)."""
    if precision == "fp32":
        yield
        return
    if precision != "bf16":
        raise ValueError(f"autocast_for takes 'fp32' or 'bf16' (resolve 'auto' with resolve_precision), got {precision!r}")
    with torch.autocast(device.type, dtype=torch.bfloat16):
        yield
