"""Channel-attention kernels: reference (spec), streaming (tiled PyTorch), triton (fused), one dispatch.

``channel_attention`` / ``ig_channel_attention`` pick a backend (``backend="auto"``) or run a
forced one, raising with the reasons when it cannot run the input.
"""

from semprior.kernels.dispatch import (
    BACKENDS,
    SPECS,
    BackendSpec,
    channel_attention,
    ig_channel_attention,
    not_supported_reasons,
    select_backend,
)

__all__ = [
    "BACKENDS",
    "SPECS",
    "BackendSpec",
    "channel_attention",
    "ig_channel_attention",
    "not_supported_reasons",
    "select_backend",
]
