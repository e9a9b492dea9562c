"""Attention blocks built on :mod:`semprior.kernels`: SEM and the illumination-guided block."""

from semprior.attention.ig import IGAttentionBlock
from semprior.attention.sem import SEM

__all__ = ["IGAttentionBlock", "SEM"]
