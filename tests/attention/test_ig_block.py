"""IGAttentionBlock: parity with a line-by-line transcription of Retinexformer's IGAB, layout, counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from semprior.attention import IGAttentionBlock


def official_igab_forward(block: IGAttentionBlock, x: torch.Tensor, illu_fea: torch.Tensor) -> torch.Tensor:
    """The official IGAB/IG_MSA forward (RetinexFormer_arch.py), transcribed with plain torch ops."""
    x = x.permute(0, 2, 3, 1)
    illu_fea_trans = illu_fea.permute(0, 2, 3, 1)
    for msa, ff in block.blocks:
        b, h, w, c = x.shape
        xr = x.reshape(b, h * w, c)
        q_inp, k_inp, v_inp = msa.to_q(xr), msa.to_k(xr), msa.to_v(xr)
        q, k, v, illu_attn = (
            rearrange(t, "b n (h d) -> b h n d", h=msa.num_heads)
            for t in (q_inp, k_inp, v_inp, illu_fea_trans.flatten(1, 2))
        )
        v = v * illu_attn
        q, k, v = q.transpose(-2, -1), k.transpose(-2, -1), v.transpose(-2, -1)
        q, k = F.normalize(q, dim=-1, p=2), F.normalize(k, dim=-1, p=2)
        attn = (k @ q.transpose(-2, -1)) * msa.rescale
        attn = attn.softmax(dim=-1)
        xa = (attn @ v).permute(0, 3, 1, 2).reshape(b, h * w, msa.num_heads * msa.dim_head)
        out_c = msa.proj(xa).view(b, h, w, c)
        out_p = msa.pos_emb(v_inp.reshape(b, h, w, c).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x = out_c + out_p + x
        x = ff.fn.net(ff.norm(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1) + x
    return x.permute(0, 3, 1, 2)


def _block(dim, dim_head, heads, num_blocks, backend="auto"):
    torch.manual_seed(0)
    blk = IGAttentionBlock(dim, dim_head, heads, num_blocks, backend=backend)
    with torch.no_grad():
        for m in blk.blocks:
            m[0].rescale.copy_(torch.rand(heads, 1, 1) + 0.5)
    return blk


@pytest.mark.parametrize("backend", ["reference", "streaming"])
@pytest.mark.parametrize("dim, dim_head, heads, num_blocks", [(8, 8, 1, 1), (16, 8, 2, 2), (16, 4, 4, 1)])
def test_matches_official_forward(backend, dim, dim_head, heads, num_blocks):
    blk = _block(dim, dim_head, heads, num_blocks, backend)
    x, illu = torch.randn(2, dim, 9, 7), torch.randn(2, dim, 9, 7)
    torch.testing.assert_close(blk(x, illu), official_igab_forward(blk, x, illu), atol=1e-5, rtol=1e-5)


def test_backward_matches_official():
    blk = _block(16, 8, 2, 2, backend="streaming")
    x = torch.randn(1, 16, 6, 5, requires_grad=True)
    illu = torch.randn(1, 16, 6, 5, requires_grad=True)
    g1 = torch.autograd.grad(blk(x, illu).square().sum(), [x, illu, *blk.parameters()])
    g2 = torch.autograd.grad(official_igab_forward(blk, x, illu).square().sum(), [x, illu, *blk.parameters()])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def _expected_params(dim: int, heads: int, num_blocks: int) -> int:
    msa = 3 * dim * dim + heads + dim * dim + dim + 2 * 9 * dim
    ffn = dim * 4 * dim + 4 * dim * 9 + 4 * dim * dim + 2 * dim  # + LayerNorm
    return num_blocks * (msa + ffn)


@pytest.mark.parametrize("dim, heads, num_blocks", [(40, 1, 1), (80, 2, 2), (160, 4, 2)])
def test_parameter_counts_of_retinexformer_lol_v1_stages(dim, heads, num_blocks):
    blk = IGAttentionBlock(dim, 40, heads, num_blocks)
    assert sum(p.numel() for p in blk.parameters()) == _expected_params(dim, heads, num_blocks)
    if (dim, num_blocks) == (40, 1):
        assert sum(p.numel() for p in blk.parameters()) == 21481


def test_official_state_dict_layout_loads_strictly():
    blk = IGAttentionBlock(16, 8, 2, 1)
    official_keys = [
        "blocks.0.0.rescale",
        "blocks.0.0.to_q.weight",
        "blocks.0.0.to_k.weight",
        "blocks.0.0.to_v.weight",
        "blocks.0.0.proj.weight",
        "blocks.0.0.proj.bias",
        "blocks.0.0.pos_emb.0.weight",
        "blocks.0.0.pos_emb.2.weight",
        "blocks.0.1.fn.net.0.weight",
        "blocks.0.1.fn.net.2.weight",
        "blocks.0.1.fn.net.4.weight",
        "blocks.0.1.norm.weight",
        "blocks.0.1.norm.bias",
    ]
    assert sorted(blk.state_dict()) == sorted(official_keys)
    synthetic = {k: torch.randn_like(v) for k, v in blk.state_dict().items()}
    blk.load_state_dict(synthetic, strict=True)
    assert torch.equal(blk.blocks[0][0].to_q.weight, synthetic["blocks.0.0.to_q.weight"])


def test_errors():
    with pytest.raises(ValueError, match="heads \\* dim_head == dim"):
        IGAttentionBlock(16, 8, 1, 1)
    with pytest.raises(ValueError, match="num_blocks"):
        IGAttentionBlock(8, 8, 1, 0)
    blk = IGAttentionBlock(8, 8, 1, 1)
    with pytest.raises(ValueError, match=r"\(B, 8, H, W\)"):
        blk(torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match="same shape"):
        blk(torch.randn(1, 8, 5, 5), torch.randn(1, 8, 4, 5))
