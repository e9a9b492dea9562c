"""SEM: Semantic-aware Embedding Module (semantic queries, image keys/values, channel attention)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from semprior.attention.layers import ChannelLayerNorm, GatedDConvFeedForward
from semprior.attention.sem_banded import sem_forward_banded
from semprior.kernels.dispatch import channel_attention, ig_channel_attention, select_backend, validate_backend
from semprior.kernels.reference import EPS, _temperature, acc_dtype

#: attention scalings: ours (L2-normalised q, k and a learned per-head temperature) and the paper's Eq. 7
SCALINGS = ("l2-temperature", "inv-sqrt-c")


def banded_applies(backend: str, channels_per_head: int, x: Tensor, *others: Tensor | None) -> bool:
    """Whether SEM's banded no-grad path runs: no gradient needed through ``x`` / ``others`` and
    ``backend`` resolving to ``"streaming"`` for ``x``'s device and dtype (``"auto"`` on a CPU)."""
    if backend not in ("auto", "streaming"):
        return False
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, *others)):
        return False
    probe = torch.empty(1, 1, channels_per_head, 1, dtype=x.dtype, device=x.device)
    return select_backend(backend, probe, probe, probe) == "streaming"


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
    Attention is computed over channels — a ``c × c`` map per head. With ``scaling="l2-temperature"``
    (our default, Restormer's form) ``q`` and ``k`` are L2-normalised over the spatial positions and
    the map is scaled by a learnable per-head temperature τ, through
    [`semprior.kernels.channel_attention`][semprior.kernels.dispatch.channel_attention]. With ``scaling="inv-sqrt-c"``
    (Eq. 7 of the DeepSPG paper, literally) the raw ``q kᵀ`` is scaled by ``1/√c`` (``c`` = channels per head) and there
    is no temperature parameter; its logits grow with the number of pixels (``q kᵀ`` sums over them),
    so the softmax sharpens as the image grows, where the normalised form is size-invariant.
    Then an output projection and a residual, and Restormer's gated-dconv feed-forward with a
    residual::

        s = resize(proj(sem));  q = dw(1x1(LN(s)));  k, v = dw(1x1(LN(x)))
        x = x + out(softmax(τ q̂ k̂ᵀ) v);  x = x + GDFN(LN(x))

    With ``illu_fea`` given (illumination-guided variant, as Retinexformer's IG-MSA) the values are
    multiplied by the illumination features before the attention.

    **Which path runs.** With autograd (anything requires grad and grad mode is on) or a backend
    that resolves to ``"reference"`` or ``"triton"``, the plain path above runs on the whole image.
    When the backend resolves to ``"streaming"`` (``"auto"`` on a CPU) and no gradient is needed, the
    block runs banded over rows
    ([`semprior.attention.sem_banded.sem_forward_banded`][semprior.attention.sem_banded.sem_forward_banded]), built from
    the same parts ([`queries_in`][semprior.attention.sem.SEM.queries_in],
    [`keys_values_in`][semprior.attention.sem.SEM.keys_values_in],
    [`attention_map`][semprior.attention.sem.SEM.attention_map],
    [`GatedDConvFeedForward.rows`][semprior.attention.layers.GatedDConvFeedForward.rows]): same result to float
    rounding, peak extra memory about one output instead of ~15-20 input-sized temporaries. That is the path for 4K
    inference.

    Args:
        dim: channels of the image features.
        sem_channels: channels of the semantic features.
        heads: attention heads; must divide ``dim``.
        ffn_expansion: hidden-width factor of the feed-forward network.
        bias: biases in the convolutions.
        backend: channel-attention backend (``"auto"``, ``"reference"``, ``"streaming"``, ``"triton"``).
        scaling: ``"l2-temperature"`` (default) or ``"inv-sqrt-c"`` (the paper's Eq. 7); see above.

    Shape:
        - x: ``(B, dim, H, W)``; sem: ``(B, sem_channels, Hs, Ws)``; illu_fea: ``(B, dim, H, W)``
        - output: ``(B, dim, H, W)``

    Examples:
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
        scaling: str = "l2-temperature",
    ) -> None:
        super().__init__()
        if dim < 1 or sem_channels < 1:
            raise ValueError(f"dim and sem_channels must be >= 1, got dim={dim}, sem_channels={sem_channels}")
        if heads < 1 or dim % heads != 0:
            raise ValueError(f"heads={heads} must be >= 1 and divide dim={dim}; pick a divisor of {dim}")
        self.dim, self.sem_channels, self.heads = dim, sem_channels, heads
        self.backend = validate_backend(backend)
        if scaling not in SCALINGS:
            raise ValueError(f"unknown SEM attention scaling {scaling!r}; choose one of {SCALINGS}")
        self.scaling = scaling
        self.sem_proj = nn.Conv2d(sem_channels, dim, 1, bias=bias)
        self.norm_x = ChannelLayerNorm(dim)
        self.norm_sem = ChannelLayerNorm(dim)
        self.q = nn.Conv2d(dim, dim, 1, bias=bias)
        self.q_dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=bias)
        self.kv = nn.Conv2d(dim, dim * 2, 1, bias=bias)
        self.kv_dwconv = nn.Conv2d(dim * 2, dim * 2, 3, padding=1, groups=dim * 2, bias=bias)
        if scaling == "l2-temperature":
            self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        else:
            self.register_parameter("temperature", None)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)
        self.norm_ffn = ChannelLayerNorm(dim)
        self.ffn = GatedDConvFeedForward(dim, ffn_expansion, bias)

    # ------------------------------------------------------------------ parts (plain and banded paths)
    def queries_in(self, s: Tensor) -> Tensor:
        """Point-wise part of the query branch on projected semantics: ``1x1(LN(s))`` (before the depthwise conv)."""
        return self.q(self.norm_sem(s))

    def keys_values_in(self, x: Tensor, part: slice | None = None) -> Tensor:
        """Point-wise part of the key/value branch: ``1x1(LN(x))``; ``part`` selects output channels (k: ``0:dim``, v:
        ``dim:2dim``)."""
        if part is None:
            return self.kv(self.norm_x(x))
        weight = self.kv.weight[part]
        return F.conv2d(self.norm_x(x), weight, self.kv.bias[part] if self.kv.bias is not None else None)

    def attention_map(self, gram: Tensor, q_sq: Tensor, k_sq: Tensor) -> Tensor:
        """The ``(B, heads, c, c)`` softmax map from the Gram matrix ``q kᵀ`` and the squared norms of q, k rows.

        ``l2-temperature``: ``softmax(τ · S / (max(‖q‖, ε) max(‖k‖, ε)ᵀ))``, the formula of
        [`semprior.kernels.channel_attention`][semprior.kernels.dispatch.channel_attention];
        ``inv-sqrt-c``: ``softmax(S / √c)``.
        """
        if self.scaling == "inv-sqrt-c":
            return (gram * (gram.shape[-1] ** -0.5)).softmax(-1)
        a, b = q_sq.sqrt().clamp(min=EPS), k_sq.sqrt().clamp(min=EPS)
        tau = _temperature(self.temperature, self.heads, gram, gram.dtype)
        return (gram / (a.unsqueeze(-1) * b.unsqueeze(-2)) * tau).softmax(-1)

    def attention(self, x: Tensor, sem: Tensor, illu_fea: Tensor | None = None) -> Tensor:
        """The attention branch alone (before the residual): ``out(softmax(τ q̂ k̂ᵀ) v)``."""
        h, w = x.shape[-2:]
        s = self.sem_proj(sem)
        if s.shape[-2:] != (h, w):
            s = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
        q = self.q_dwconv(self.queries_in(s))
        k, v = self.kv_dwconv(self.keys_values_in(x)).chunk(2, dim=1)
        q, k, v = (rearrange(t, "b (h c) H W -> b h c (H W)", h=self.heads) for t in (q, k, v))
        illum = None if illu_fea is None else rearrange(illu_fea, "b (h c) H W -> b h c (H W)", h=self.heads)
        if self.scaling == "inv-sqrt-c":
            acc = acc_dtype(q, k, v)
            vv = v if illum is None else v * illum
            attn = self.attention_map(q.to(acc) @ k.to(acc).transpose(-2, -1), None, None)  # type: ignore[arg-type]
            out = (attn @ vv.to(acc)).to(v.dtype)
        elif illum is None:
            out = channel_attention(q, k, v, self.temperature, backend=self.backend)
        else:
            out = ig_channel_attention(q, k, v, illum, self.temperature, backend=self.backend)
        out = rearrange(out, "b h c (H W) -> b (h c) H W", H=h, W=w)
        return self.project_out(out)

    def forward(self, x: Tensor, sem: Tensor, illu_fea: Tensor | None = None) -> Tensor:
        _check_features(x, "x (image features)", self.dim, f"SEM was built with dim={self.dim}")
        _check_features(
            sem, "sem (semantic features)", self.sem_channels, f"SEM was built with sem_channels={self.sem_channels}"
        )
        if sem.shape[0] != x.shape[0]:
            raise ValueError(f"x and sem must have the same batch size, got {x.shape[0]} and {sem.shape[0]}")
        if illu_fea is not None and illu_fea.shape != x.shape:
            raise ValueError(f"illu_fea must have the shape of x {tuple(x.shape)}, got {tuple(illu_fea.shape)}")
        if self._banded(x, sem, illu_fea):
            return sem_forward_banded(self, x, sem, illu_fea)
        x = x + self.attention(x, sem, illu_fea)
        return x + self.ffn(self.norm_ffn(x))

    def _banded(self, x: Tensor, sem: Tensor, illu_fea: Tensor | None) -> bool:
        return banded_applies(self.backend, self.dim // self.heads, x, sem, illu_fea, *self.parameters())

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, sem_channels={self.sem_channels}, heads={self.heads}, backend={self.backend!r}, "
            f"scaling={self.scaling!r}"
        )
