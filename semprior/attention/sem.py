"""SEM: Semantic-aware Embedding Module (semantic queries, image keys/values, channel attention)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from semprior.attention.layers import ChannelLayerNorm, GatedDConvFeedForward
from semprior.attention.sem_banded import sem_forward_banded
from semprior.kernels.dispatch import channel_attention, ig_channel_attention, select_backend, validate_backend


def _check_features(t: object, name: str, channels: int, fix: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(t.shape)}")
    if t.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got {t.shape[1]} (shape {tuple(t.shape)}); {fix}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {t.dtype}; convert with .float()")
    if t.shape[-1] < 1 or t.shape[-2] < 1 or t.shape[0] < 1:
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
    return t


class SEM(nn.Module):
    """Semantic-aware Embedding Module: cross channel-attention from semantic priors into image features.

    Semantic features of any size and channel count are projected (1x1 conv) to ``dim`` channels and
    resized (bilinear) to the image features. After a channel LayerNorm of both streams, queries come
    from the semantics and keys/values from the image (1x1 conv + 3x3 depthwise conv, as Restormer).
    Attention is computed over channels — a ``c × c`` map per head with ``q`` and ``k``
    L2-normalised over the spatial positions and a learnable per-head temperature — through
    :func:`semprior.kernels.channel_attention`. Then an output projection and a residual, and
    Restormer's gated-dconv feed-forward with a residual::

        s = resize(proj(sem));  q = dw(1x1(LN(s)));  k, v = dw(1x1(LN(x)))
        x = x + out(softmax(τ q̂ k̂ᵀ) v);  x = x + GDFN(LN(x))

    With ``illu_fea`` given (illumination-guided variant, as Retinexformer's IG-MSA) the values are
    multiplied by the illumination features before the attention.

    When the resolved backend is ``"streaming"`` and no gradient is needed (``torch.no_grad()``, or
    nothing requires grad), the whole block runs banded over rows
    (:func:`semprior.attention.sem_banded.sem_forward_banded`): same result, peak extra memory about
    one output instead of ~15-20 input-sized temporaries. That is the path for 4K inference.

    Args:
        dim: channels of the image features.
        sem_channels: channels of the semantic features.
        heads: attention heads; must divide ``dim``.
        ffn_expansion: hidden-width factor of the feed-forward network.
        bias: biases in the convolutions.
        backend: channel-attention backend (``"auto"``, ``"reference"``, ``"streaming"``, ``"triton"``).

    Shape:
        - x: ``(B, dim, H, W)``; sem: ``(B, sem_channels, Hs, Ws)``; illu_fea: ``(B, dim, H, W)``
        - output: ``(B, dim, H, W)``

    Example:
        >>> import torch
        >>> block = SEM(dim=16, sem_channels=5, heads=2)
        >>> block(torch.randn(1, 16, 12, 10), torch.randn(1, 5, 3, 3)).shape
        torch.Size([1, 16, 12, 10])
    """

    def __init__(
        self,
        dim: int,
        sem_channels: int,
        heads: int = 1,
        ffn_expansion: float = 2.66,
        bias: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if dim < 1 or sem_channels < 1:
            raise ValueError(f"dim and sem_channels must be >= 1, got dim={dim}, sem_channels={sem_channels}")
        if heads < 1 or dim % heads != 0:
            raise ValueError(f"heads={heads} must be >= 1 and divide dim={dim}; pick a divisor of {dim}")
        self.dim, self.sem_channels, self.heads = dim, sem_channels, heads
        self.backend = validate_backend(backend)
        self.sem_proj = nn.Conv2d(sem_channels, dim, 1, bias=bias)
        self.norm_x = ChannelLayerNorm(dim)
        self.norm_sem = ChannelLayerNorm(dim)
        self.q = nn.Conv2d(dim, dim, 1, bias=bias)
        self.q_dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=bias)
        self.kv = nn.Conv2d(dim, dim * 2, 1, bias=bias)
        self.kv_dwconv = nn.Conv2d(dim * 2, dim * 2, 3, padding=1, groups=dim * 2, bias=bias)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)
        self.norm_ffn = ChannelLayerNorm(dim)
        self.ffn = GatedDConvFeedForward(dim, ffn_expansion, bias)

    def attention(self, x: Tensor, sem: Tensor, illu_fea: Tensor | None = None) -> Tensor:
        """The attention branch alone (before the residual): ``out(softmax(τ q̂ k̂ᵀ) v)``."""
        h, w = x.shape[-2:]
        s = self.sem_proj(sem)
        if s.shape[-2:] != (h, w):
            s = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
        q = self.q_dwconv(self.q(self.norm_sem(s)))
        k, v = self.kv_dwconv(self.kv(self.norm_x(x))).chunk(2, dim=1)
        q, k, v = (rearrange(t, "b (h c) H W -> b h c (H W)", h=self.heads) for t in (q, k, v))
        if illu_fea is None:
            out = channel_attention(q, k, v, self.temperature, backend=self.backend)
        else:
            illum = rearrange(illu_fea, "b (h c) H W -> b h c (H W)", h=self.heads)
            out = ig_channel_attention(q, k, v, illum, self.temperature, backend=self.backend)
        out = rearrange(out, "b h c (H W) -> b (h c) H W", H=h, W=w)
        return self.project_out(out)

    def forward(self, x: Tensor, sem: Tensor, illu_fea: Tensor | None = None) -> Tensor:
        _check_features(x, "x (image features)", self.dim, f"SEM was built with dim={self.dim}")
        _check_features(sem, "sem (semantic features)", self.sem_channels, f"SEM was built with sem_channels={self.sem_channels}")
        if sem.shape[0] != x.shape[0]:
            raise ValueError(f"x and sem must have the same batch size, got {x.shape[0]} and {sem.shape[0]}")
        if illu_fea is not None and illu_fea.shape != x.shape:
            raise ValueError(f"illu_fea must have the shape of x {tuple(x.shape)}, got {tuple(illu_fea.shape)}")
        if self._banded(x, sem, illu_fea):
            return sem_forward_banded(self, x, sem, illu_fea)
        x = x + self.attention(x, sem, illu_fea)
        return x + self.ffn(self.norm_ffn(x))

    def _banded(self, x: Tensor, sem: Tensor, illu_fea: Tensor | None) -> bool:
        if self.backend not in ("auto", "streaming"):
            return False
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or sem.requires_grad or (illu_fea is not None and illu_fea.requires_grad)
            or any(p.requires_grad for p in self.parameters())
        )
        if needs_grad:
            return False
        view = rearrange(x, "b (h c) H W -> b h c (H W)", h=self.heads)
        return select_backend(self.backend, view, view, view) == "streaming"

    def extra_repr(self) -> str:
        return f"dim={self.dim}, sem_channels={self.sem_channels}, heads={self.heads}, backend={self.backend!r}"
