"""SEM: shapes, semantics as queries (checked against a hand computation), backends, gradcheck, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semprior.attention import SEM


def _sem(dim=8, sem_channels=5, heads=2, backend="auto", seed=0):
    torch.manual_seed(seed)
    block = SEM(dim, sem_channels, heads=heads, backend=backend)
    with torch.no_grad():
        block.temperature.copy_(torch.rand(heads, 1, 1) + 0.5)
    return block


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_shapes_any_semantic_size(heads):
    block = _sem(dim=8, sem_channels=3, heads=heads)
    x = torch.randn(2, 8, 13, 9)
    for hs, ws in [(13, 9), (4, 3), (20, 30), (1, 1)]:
        out = block(x, torch.randn(2, 3, hs, ws))
        assert out.shape == x.shape and torch.isfinite(out).all()


def test_attention_branch_matches_hand_computation():
    block = _sem(dim=6, sem_channels=4, heads=2).double()
    x, sem = torch.randn(1, 6, 7, 5, dtype=torch.float64), torch.randn(1, 4, 3, 2, dtype=torch.float64)
    s = F.interpolate(block.sem_proj(sem), size=(7, 5), mode="bilinear", align_corners=False)
    q = block.q_dwconv(block.q(block.norm_sem(s))).reshape(1, 2, 3, 35)
    k, v = (t.reshape(1, 2, 3, 35) for t in block.kv_dwconv(block.kv(block.norm_x(x))).chunk(2, dim=1))
    attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1) * block.temperature).softmax(-1)
    expected = block.project_out((attn @ v).reshape(1, 6, 7, 5))
    torch.testing.assert_close(block.attention(x, sem), expected)
    y = x + expected
    torch.testing.assert_close(block(x, sem), y + block.ffn(block.norm_ffn(y)))


def test_output_depends_on_semantics():
    block = _sem()
    x = torch.randn(1, 8, 6, 6)
    a, b = block(x, torch.randn(1, 5, 3, 3)), block(x, torch.randn(1, 5, 3, 3))
    assert (a - b).abs().max() > 1e-4


def test_illumination_variant_modulates_values():
    block = _sem()
    x, sem = torch.randn(1, 8, 6, 5), torch.randn(1, 5, 6, 5)
    torch.testing.assert_close(block(x, sem, torch.ones_like(x)), block(x, sem))
    assert (block(x, sem, 2 * torch.rand_like(x)) - block(x, sem)).abs().max() > 1e-4


def test_backends_agree_forward_and_backward():
    ref, stream = _sem(backend="reference"), _sem(backend="streaming")
    stream.load_state_dict(ref.state_dict(), strict=True)
    x, sem = torch.randn(2, 8, 11, 9), torch.randn(2, 5, 4, 4)
    out_r, out_s = ref(x, sem), stream(x, sem)
    torch.testing.assert_close(out_s, out_r, atol=1e-5, rtol=1e-4)
    out_r.square().sum().backward()
    out_s.square().sum().backward()
    for (name, pr), ps in zip(ref.named_parameters(), stream.parameters()):
        torch.testing.assert_close(ps.grad, pr.grad, atol=1e-4, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("backend", ["reference", "streaming"])
def test_gradcheck_float64(backend):
    block = _sem(dim=4, sem_channels=3, heads=2, backend=backend).double()
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    sem = torch.randn(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x, sem), fast_mode=True)


def test_bad_inputs_name_problem_and_fix():
    block = _sem()
    x, sem = torch.randn(1, 8, 6, 6), torch.randn(1, 5, 3, 3)
    with pytest.raises(ValueError, match="x .* 8 channels.*dim=8"):
        block(torch.randn(1, 7, 6, 6), sem)
    with pytest.raises(ValueError, match="sem .* 5 channels.*sem_channels=5"):
        block(x, torch.randn(1, 4, 3, 3))
    with pytest.raises(ValueError, match="same batch size"):
        block(x, torch.randn(2, 5, 3, 3))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        block(x[0], sem)
    with pytest.raises(TypeError, match="floating point"):
        block(x.long(), sem)
    with pytest.raises(ValueError, match="illu_fea"):
        block(x, sem, torch.ones(1, 8, 5, 5))
    with pytest.raises(ValueError, match="heads=3 .* divide dim=8"):
        SEM(8, 5, heads=3)
    with pytest.raises(ValueError, match="unknown channel-attention backend"):
        SEM(8, 5, backend="fast")


def test_forced_triton_on_cpu_raises(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    block = _sem(backend="triton")
    with pytest.raises(RuntimeError, match="'triton' cannot run"):
        block(torch.randn(1, 8, 4, 4), torch.randn(1, 5, 2, 2))


@pytest.mark.parametrize("bias, band", [(False, 1), (True, 4), (True, 64)])
def test_banded_inference_equals_plain(bias, band):
    from semprior.attention.sem_banded import sem_forward_banded

    torch.manual_seed(1)
    block = SEM(8, 5, heads=2, bias=bias, backend="reference").double()
    x, il = torch.randn(1, 8, 11, 9, dtype=torch.float64), torch.rand(1, 8, 11, 9, dtype=torch.float64)
    for sem in (torch.randn(1, 5, 4, 3, dtype=torch.float64), torch.randn(1, 5, 11, 9, dtype=torch.float64)):
        with torch.no_grad():
            torch.testing.assert_close(sem_forward_banded(block, x, sem, None, band), block(x, sem))
            torch.testing.assert_close(sem_forward_banded(block, x, sem, il, band), block(x, sem, il))


def test_bilinear_rows_matches_interpolate():
    from semprior.attention.sem_banded import bilinear_rows

    src = torch.randn(2, 3, 5, 7)
    full = F.interpolate(src, size=(37, 29), mode="bilinear", align_corners=False)
    for r0, r1 in [(0, 37), (3, 20), (36, 37)]:
        torch.testing.assert_close(bilinear_rows(src, (37, 29), r0, r1), full[:, :, r0:r1])


def test_streaming_block_uses_banded_path_only_without_grad(monkeypatch):
    import semprior.attention.sem as sem_module

    calls = []
    real = sem_module.sem_forward_banded
    monkeypatch.setattr(sem_module, "sem_forward_banded", lambda *a, **k: calls.append(1) or real(*a, **k))
    block = _sem(backend="streaming")
    x, sem = torch.randn(1, 8, 9, 9), torch.randn(1, 5, 3, 3)
    with torch.no_grad():
        lean = block(x, sem)
    assert calls == [1]
    plain = block(x, sem)  # parameters require grad: autograd path
    assert calls == [1]
    torch.testing.assert_close(lean, plain.detach(), atol=1e-5, rtol=1e-5)


def test_paper_scaling_matches_hand_computation_and_banded_path():
    from semprior.attention.sem_banded import sem_forward_banded

    torch.manual_seed(2)
    block = SEM(6, 4, heads=2, scaling="inv-sqrt-c", bias=True).double()
    assert block.temperature is None and "temperature" not in block.state_dict()
    x, sem = torch.randn(1, 6, 7, 5, dtype=torch.float64), torch.randn(1, 4, 3, 2, dtype=torch.float64)
    s = F.interpolate(block.sem_proj(sem), size=(7, 5), mode="bilinear", align_corners=False)
    q = block.q_dwconv(block.q(block.norm_sem(s))).reshape(1, 2, 3, 35)
    k, v = (t.reshape(1, 2, 3, 35) for t in block.kv_dwconv(block.kv(block.norm_x(x))).chunk(2, dim=1))
    attn = (q @ k.transpose(-2, -1) / 3**0.5).softmax(-1)  # Eq. 7: QK^T / sqrt(C), C = channels per head
    expected = block.project_out((attn @ v).reshape(1, 6, 7, 5))
    torch.testing.assert_close(block.attention(x, sem), expected)
    il = torch.rand(1, 6, 7, 5, dtype=torch.float64)
    with torch.no_grad():
        for band in (1, 3, 64):
            torch.testing.assert_close(sem_forward_banded(block, x, sem, None, band), block(x, sem))
            torch.testing.assert_close(sem_forward_banded(block, x, sem, il, band), block(x, sem, il))
    with pytest.raises(ValueError, match="unknown SEM attention scaling"):
        SEM(6, 4, scaling="sqrt")


@pytest.mark.parametrize("band", [2, 3, 5])
def test_banded_in_place_equals_plain(band):
    from semprior.attention.sem_banded import sem_forward_banded

    torch.manual_seed(4)
    block = SEM(8, 8, heads=2, bias=True, backend="reference").double()
    x = torch.randn(1, 8, 13, 6, dtype=torch.float64)
    with torch.no_grad():
        expected = block(x, x)  # the baseline's self-attention: semantics are the features themselves
        buf = x.clone()
        out = sem_forward_banded(block, buf, buf, band_rows=band, out=buf)
    assert out.data_ptr() == buf.data_ptr()
    torch.testing.assert_close(out, expected)


def test_banded_path_refuses_autograd():
    from semprior.attention.sem_banded import sem_forward_banded

    block = _sem()
    with pytest.raises(RuntimeError, match="no_grad"):
        sem_forward_banded(block, torch.randn(1, 8, 4, 4), torch.randn(1, 5, 2, 2))


def test_gdfn_rows_equal_forward():
    from semprior.attention.layers import GatedDConvFeedForward

    torch.manual_seed(5)
    ffn = GatedDConvFeedForward(6, bias=True).double()
    x = torch.randn(2, 6, 11, 7, dtype=torch.float64)
    full = ffn(x)
    for r0, r1 in [(0, 11), (0, 1), (4, 9), (10, 11)]:
        a0, a1 = max(r0 - 1, 0), min(r1 + 1, 11)
        torch.testing.assert_close(ffn.rows(x[:, :, a0:a1], r0, r1, 11, a0), full[:, :, r0:r1])


@pytest.mark.parametrize("band", [2, 5])
def test_banded_in_place_channels_last_equals_plain(band):
    from semprior.attention.sem_banded import sem_forward_banded

    torch.manual_seed(6)
    block = SEM(8, 8, heads=2, bias=True, backend="reference").double()
    x = torch.randn(1, 8, 13, 6, dtype=torch.float64)
    with torch.no_grad():
        expected = block(x, x)
        buf = x.contiguous(memory_format=torch.channels_last)
        out = sem_forward_banded(block, buf, buf, band_rows=band, out=buf)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected)
