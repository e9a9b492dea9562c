"""Channel-attention kernels: reference (spec), and fused backends behind one dispatch."""

from semprior.kernels.dispatch import channel_attention, ig_channel_attention

__all__ = ["channel_attention", "ig_channel_attention"]
