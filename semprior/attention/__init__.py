"""Attention blocks built on `semprior.kernels`: SEM, the illumination-guided block and CUGD's CUIE block."""

from semprior.attention.cuie import CUIEBlock
from semprior.attention.ig import IGAttentionBlock
from semprior.attention.sem import SEM

__all__ = ["CUIEBlock", "IGAttentionBlock", "SEM"]
