"""CUIE: Context Understanding Injection Encoder block (CUGD).

Image features attend to themselves (self-attention over image tokens) and then to the tokens of
a semantic prior (cross-attention to SAM region or feature tokens), each with a pre-norm and a
residual, followed by a pre-norm MLP. Attention is token (spatial) attention through
`torch.nn.MultiheadAttention` (PyTorch's fused scaled-dot-product kernels), so its cost is
quadratic in ``H * W``: place the block at a low-resolution level.

Token helpers turn a prior's output into context tokens:

- [`feature_tokens`][semprior.attention.cuie.feature_tokens]: a feature map average-pooled to a ``grid x grid`` lattice,
  flattened;
- [`region_tokens`][semprior.attention.cuie.region_tokens]: one token per region mask (mask-weighted average of the
  features), the shape of SAM's automatic-mask output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["CUIEBlock", "feature_tokens", "region_tokens", "region_masks_from_map"]


def _check_map(t: object, name: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {t.dtype}; convert with .float()")
    return t


def feature_tokens(features: Tensor, grid: int = 8) -> Tensor:
    """Average-pool a feature map to ``grid x grid`` cells and flatten them into tokens.

    Shape:
        - features: `(B, C, h, w)` -> `(B, grid * grid, C)`

    Examples:
        >>> feature_tokens(torch.rand(2, 16, 30, 20), grid=4).shape
        torch.Size([2, 16, 16])
    """
    _check_map(features, "features")
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    return rearrange(F.adaptive_avg_pool2d(features, grid), "b c h w -> b (h w) c")


def region_tokens(features: Tensor, masks: Tensor, eps: float = 1e-6) -> Tensor:
    """One token per region: the mask-weighted mean of the features over each region.

    Masks (binary or soft, any resolution) are resized to the feature map (area interpolation).
    An empty region gives a zero token.

    Shape:
        - features: `(B, C, h, w)`; masks: `(B, R, H, W)` -> `(B, R, C)`

    Examples:
        >>> f = torch.arange(4.0).reshape(1, 1, 2, 2)
        >>> m = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]]])
        >>> region_tokens(f, m).flatten().tolist()
        [0.5, 3.0]
    """
    _check_map(features, "features")
    _check_map(masks, "masks")
    if masks.shape[0] != features.shape[0]:
        raise ValueError(
            f"features and masks must have the same batch size, got {features.shape[0]} and {masks.shape[0]}"
        )
    if masks.shape[-2:] != features.shape[-2:]:
        masks = F.interpolate(masks, size=features.shape[-2:], mode="area")
    weight = masks.to(features.dtype)
    total = torch.einsum("brhw,bchw->brc", weight, features)
    return total / weight.sum(dim=(-2, -1)).unsqueeze(-1).clamp_min(eps)


def region_masks_from_map(region_map: Tensor, max_regions: int = 16) -> Tensor:
    """One-hot masks of labels ``1..max_regions`` of an integer region map (0 = no region).

    This turns SAM's automatic-mask output as [`SAMPrior`][semprior.priors.sam.SAMPrior] stores it
    (``extras["regions"]``, masks numbered by decreasing area) into masks for
    [`region_tokens`][semprior.attention.cuie.region_tokens].

    Shape:
        - region_map: `(B, 1, H, W)` integer -> `(B, max_regions, H, W)` float

    Examples:
        >>> m = region_masks_from_map(torch.tensor([[[[0, 1], [2, 2]]]]), max_regions=2)
        >>> m.shape, m[0, 1].sum().item()
        (torch.Size([1, 2, 2, 2]), 2.0)
    """
    if not isinstance(region_map, Tensor) or region_map.dim() != 4 or region_map.shape[1] != 1:
        raise ValueError(
            f"region_map must be a (B, 1, H, W) integer tensor, got {getattr(region_map, 'shape', region_map)}"
        )
    if region_map.is_floating_point():
        raise TypeError(f"region_map must hold integer labels, got {region_map.dtype}; use .long()")
    if max_regions < 1:
        raise ValueError(f"max_regions must be >= 1, got {max_regions}")
    labels = torch.arange(1, max_regions + 1, device=region_map.device).view(1, -1, 1, 1)
    return (region_map == labels).float()


class CUIEBlock(nn.Module):
    """Self-attention over image tokens, cross-attention to prior tokens, then an MLP.

    ::

        t = tokens(x)                                    # (B, H*W, dim)
        t = t + SelfAttn(LN(t))
        t = t + CrossAttn(LN(t), proj(LN(context)))      # queries: image; keys/values: prior
        t = t + MLP(LN(t))

    Args:
        dim: channels of the image features.
        context_dim: channels of the context tokens (the prior's feature width).
        heads: attention heads; must divide ``dim``.
        mlp_ratio: hidden width of the MLP as a multiple of ``dim``.

    Shape:
        - x: `(B, dim, H, W)`; context: `(B, T, context_dim)`
        - output: `(B, dim, H, W)`

    Examples:
        >>> block = CUIEBlock(dim=16, context_dim=12, heads=2)
        >>> block(torch.rand(2, 16, 5, 7), torch.rand(2, 9, 12)).shape
        torch.Size([2, 16, 5, 7])
    """

    def __init__(self, dim: int, context_dim: int, heads: int = 4, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        if dim < 1 or context_dim < 1:
            raise ValueError(f"dim and context_dim must be >= 1, got {dim} and {context_dim}")
        if heads < 1 or dim % heads:
            raise ValueError(f"heads={heads} must be >= 1 and divide dim={dim}")
        self.dim, self.context_dim, self.heads = dim, context_dim, heads
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_query = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim)
        self.context_proj = nn.Linear(context_dim, dim)
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = max(1, int(dim * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        _check_map(x, "x (image features)")
        if x.shape[1] != self.dim:
            raise ValueError(f"x must have dim={self.dim} channels, got {x.shape[1]}")
        if not isinstance(context, Tensor) or context.dim() != 3 or context.shape[-1] != self.context_dim:
            raise ValueError(
                f"context must be (B, T, context_dim={self.context_dim}) tokens, got "
                f"{tuple(context.shape) if isinstance(context, Tensor) else type(context).__name__}; "
                "build them with feature_tokens(...) or region_tokens(...)"
            )
        if context.shape[0] != x.shape[0] or context.shape[1] < 1:
            raise ValueError(f"context must have batch {x.shape[0]} and at least one token, got {tuple(context.shape)}")
        h, w = x.shape[-2:]
        t = rearrange(x, "b c h w -> b (h w) c")
        q = self.norm_self(t)
        t = t + self.self_attn(q, q, q, need_weights=False)[0]
        ctx = self.context_proj(self.norm_context(context.to(t.dtype)))
        t = t + self.cross_attn(self.norm_query(t), ctx, ctx, need_weights=False)[0]
        t = t + self.mlp(self.norm_mlp(t))
        return rearrange(t, "b (h w) c -> b c h w", h=h, w=w)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, context_dim={self.context_dim}, heads={self.heads}"
