"""Illumination-guided attention block (Retinexformer's IGAB / IG-MSA), on the shared kernels.

Module names and parameter shapes follow the official code
(``caiyuanhao1998/Retinexformer``, ``basicsr/models/archs/RetinexFormer_arch.py``), so an official
``IGAB`` state dict loads with ``strict=True`` (keys ``blocks.{i}.0.to_q.weight``,
``blocks.{i}.0.pos_emb.0.weight``, ``blocks.{i}.1.norm.weight``, ``blocks.{i}.1.fn.net.0.weight`` …).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from semprior.kernels.dispatch import ig_channel_attention, validate_backend


class GELU(nn.Module):
    """``F.gelu`` as a module (the official code's own class; kept so Sequential indices match)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x)


class IGMSA(nn.Module):
    """Illumination-guided multi-head self-attention over channels (Retinexformer's ``IG_MSA``).

    ``A = softmax(τ k̂ q̂ᵀ)`` per head (note the official order: keys times queries), applied to the
    values modulated by the illumination features, then a linear projection, plus a positional
    branch (depthwise 3x3, GELU, depthwise 3x3) on the unmodulated values.

    Shape:
        - x, illu_fea: ``(B, H, W, C)`` channels-last, as the official code -> ``(B, H, W, C)``

    Examples:
        >>> import torch
        >>> IGMSA(dim=8, dim_head=4, heads=2)(torch.randn(1, 5, 6, 8), torch.randn(1, 5, 6, 8)).shape
        torch.Size([1, 5, 6, 8])
    """

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8, backend: str = "auto") -> None:
        super().__init__()
        if dim_head * heads != dim:
            raise ValueError(
                f"IG-MSA needs heads * dim_head == dim (the illumination features are split per head), "
                f"got heads={heads}, dim_head={dim_head}, dim={dim}; use heads = dim // dim_head"
            )
        self.num_heads, self.dim_head, self.dim = heads, dim_head, dim
        self.backend = validate_backend(backend)
        self.to_q = nn.Linear(dim, dim_head * heads, bias=False)
        self.to_k = nn.Linear(dim, dim_head * heads, bias=False)
        self.to_v = nn.Linear(dim, dim_head * heads, bias=False)
        self.rescale = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(dim_head * heads, dim, bias=True)
        self.pos_emb = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False, groups=dim),
            GELU(),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False, groups=dim),
        )

    def forward(self, x_in: Tensor, illu_fea_trans: Tensor) -> Tensor:
        b, h, w, c = x_in.shape
        x = rearrange(x_in, "b h w c -> b (h w) c")
        q_inp, k_inp, v_inp = self.to_q(x), self.to_k(x), self.to_v(x)
        q, k, v, illu = (
            rearrange(t, "b n (h d) -> b h d n", h=self.num_heads)
            for t in (q_inp, k_inp, v_inp, rearrange(illu_fea_trans, "b h w c -> b (h w) c"))
        )
        # official: attn = k̂ @ q̂ᵀ * rescale; softmax; attn @ (v * illu)
        out = ig_channel_attention(k, q, v, illu, self.rescale, backend=self.backend)
        out_c = self.proj(rearrange(out, "b h d n -> b n (h d)"))
        out_c = rearrange(out_c, "b (h w) c -> b h w c", h=h, w=w)
        out_p = self.pos_emb(rearrange(v_inp, "b (h w) c -> b c h w", h=h, w=w))
        return out_c + rearrange(out_p, "b c h w -> b h w c")


class FeedForward(nn.Module):
    """Retinexformer's feed-forward: 1x1 (dim→4dim), GELU, depthwise 3x3, GELU, 1x1 (4dim→dim), no biases.

    Shape:
        - x: ``(B, H, W, C)`` -> ``(B, H, W, C)``
    """

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(dim, dim * mult, 1, 1, bias=False),
            GELU(),
            nn.Conv2d(dim * mult, dim * mult, 3, 1, 1, bias=False, groups=dim * mult),
            GELU(),
            nn.Conv2d(dim * mult, dim, 1, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PreNorm(nn.Module):
    """``fn(LayerNorm(x))`` on channels-last input."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(self.norm(x))


class IGAttentionBlock(nn.Module):
    """Illumination-Guided Attention Block (Retinexformer's ``IGAB``), ``num_blocks`` repeats of
    ``x = IG-MSA(x, illu) + x; x = FFN(LN(x)) + x``.

    Args:
        dim: feature channels.
        dim_head: channels per head (``heads * dim_head`` must equal ``dim``).
        heads: attention heads.
        num_blocks: repeats.
        backend: channel-attention backend for
            [`semprior.kernels.ig_channel_attention`][semprior.kernels.dispatch.ig_channel_attention].

    Shape:
        - x: ``(B, dim, H, W)``; illu_fea: ``(B, dim, H, W)`` -> ``(B, dim, H, W)``

    Examples:
        >>> import torch
        >>> blk = IGAttentionBlock(dim=8, dim_head=8, heads=1, num_blocks=2)
        >>> blk(torch.randn(1, 8, 6, 7), torch.randn(1, 8, 6, 7)).shape
        torch.Size([1, 8, 6, 7])
    """

    def __init__(
        self, dim: int, dim_head: int = 64, heads: int = 8, num_blocks: int = 2, backend: str = "auto"
    ) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        self.dim = dim
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [IGMSA(dim=dim, dim_head=dim_head, heads=heads, backend=backend), PreNorm(dim, FeedForward(dim=dim))]
            )
            for _ in range(num_blocks)
        )

    def forward(self, x: Tensor, illu_fea: Tensor) -> Tensor:
        for name, t in (("x", x), ("illu_fea", illu_fea)):
            if not isinstance(t, Tensor) or t.dim() != 4 or t.shape[1] != self.dim:
                shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"{name} must be a (B, {self.dim}, H, W) tensor, got {shape}")
        if illu_fea.shape != x.shape:
            raise ValueError(
                f"x and illu_fea must have the same shape, got {tuple(x.shape)} and {tuple(illu_fea.shape)}"
            )
        x = x.permute(0, 2, 3, 1)
        illu = illu_fea.permute(0, 2, 3, 1)
        for pair in self.blocks:
            attn, ff = pair.children()  # (IGMSA, PreNorm(FeedForward)), in order
            x = attn(x, illu_fea_trans=illu) + x
            x = ff(x) + x
        return x.permute(0, 3, 1, 2)
