"""Property-based tests (hypothesis; bounded examples, no deadline) for metrics, losses and kernels."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semprior.kernels import channel_attention, ig_channel_attention
from semprior.kernels.reference import channel_attention_map_reference, channel_attention_reference
from semprior.kernels.streaming import channel_attention_streaming, ig_channel_attention_streaming
from semprior.losses import edge_loss, pixel_loss, semantic_kl_loss, ssim_loss
from semprior.metrics import MetricProtocol, psnr, ssim

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
PROTOCOLS = st.builds(
    MetricProtocol,
    space=st.sampled_from(["rgb", "y"]),
    gt_mean=st.booleans(),
    crop_border=st.integers(0, 2),
    quantize=st.booleans(),
)


@st.composite
def images(draw, min_size=1, max_size=20, channels=3, batch=(1, 3)):
    b = draw(st.integers(*batch))
    h = draw(st.integers(min_size, max_size))
    w = draw(st.integers(min_size, max_size))
    seed = draw(st.integers(0, 2**31 - 1))
    kind = draw(st.sampled_from(["uniform", "dark", "constant", "binary"]))
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, channels, h, w, generator=g, dtype=torch.float64)
    if kind == "dark":
        x = x * 0.05
    elif kind == "constant":
        x = torch.full_like(x, float(torch.rand(1, generator=g)))
    elif kind == "binary":
        x = (x > 0.5).double()
    return x


def _pair(draw, **kw):
    x = draw(images(**kw))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    noise = draw(st.sampled_from([0.0, 1e-3, 0.05, 0.5]))
    y = (x + noise * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)
    return x, y


pairs = st.composite(_pair)


# ---------------------------------------------------------------- metrics


@SETTINGS
@given(pairs(min_size=5), PROTOCOLS)
def test_psnr_symmetric_and_infinite_only_at_equality(xy, protocol):
    x, y = xy
    if protocol.gt_mean:  # GT-mean rescales the prediction only: by design not symmetric
        protocol = MetricProtocol(space=protocol.space, crop_border=protocol.crop_border, quantize=protocol.quantize)
    a, b = psnr(x, y, protocol), psnr(y, x, protocol)
    assert torch.equal(a, b)
    assert torch.isinf(psnr(x, x, protocol)).all() and (psnr(x, x, protocol) > 0).all()
    from semprior.metrics import prepare_pair

    pa, pb = prepare_pair(x, y, protocol)
    same = (pa == pb).flatten(1).all(dim=1)
    assert torch.equal(torch.isinf(a), same), "PSNR is infinite exactly when the prepared images are equal"
    assert not torch.isnan(a).any()


@SETTINGS
@given(images(min_size=11, max_size=24), PROTOCOLS)
def test_ssim_of_an_image_with_itself_is_one(x, protocol):
    if protocol.crop_border and min(x.shape[-2:]) - 2 * protocol.crop_border < 11:
        protocol = MetricProtocol(space=protocol.space, gt_mean=protocol.gt_mean, quantize=protocol.quantize)
    s = ssim(x, x, protocol)
    assert torch.allclose(s, torch.ones_like(s), atol=1e-12)


@SETTINGS
@given(pairs(min_size=11, max_size=24))
def test_ssim_symmetric_and_at_most_one(xy):
    x, y = xy
    protocol = MetricProtocol(quantize=False)
    a, b = ssim(x, y, protocol), ssim(y, x, protocol)
    assert torch.allclose(a, b, atol=1e-12) and (a <= 1 + 1e-12).all() and (a >= -1 - 1e-12).all()


# ---------------------------------------------------------------- losses

LOSSES = {
    "pixel-mse": lambda a, b: pixel_loss(a, b, reduction="none"),
    "pixel-l1": lambda a, b: pixel_loss(a, b, kind="l1", reduction="none"),
    "edge": lambda a, b: edge_loss(a, b, reduction="none"),
    "ssim": lambda a, b: ssim_loss(a, b, window_size=3, reduction="none"),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
@SETTINGS
@given(xy=pairs(min_size=3, max_size=16))
def test_losses_zero_at_equality_and_non_negative(name, xy):
    x, y = xy
    fn = LOSSES[name]
    assert torch.allclose(fn(x, x), torch.zeros(x.shape[0], dtype=x.dtype), atol=1e-10)
    v = fn(x, y)
    assert v.shape == (x.shape[0],) and (v >= -1e-10).all() and torch.isfinite(v).all()
    if (x != y).any() and name.startswith("pixel"):
        assert (v > 0).any()


@SETTINGS
@given(st.integers(1, 2), st.integers(2, 6), st.integers(1, 9), st.integers(0, 2**31 - 1), st.floats(0.1, 4.0))
def test_semantic_kl_zero_at_equality_and_non_negative(b, k, hw, seed, temperature):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(b, k, hw, hw, generator=g, dtype=torch.float64) * 5
    c = torch.randn(b, k, hw, hw, generator=g, dtype=torch.float64) * 5
    assert torch.allclose(semantic_kl_loss(a, a, temperature), torch.zeros((), dtype=a.dtype), atol=1e-12)
    assert float(semantic_kl_loss(a, c, temperature)) >= 0
    assert float(semantic_kl_loss(a, c, temperature, reverse=True)) >= 0


# ---------------------------------------------------------------- kernels


@st.composite
def qkv(draw):
    b, h = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    c = cv = draw(st.integers(1, 8))  # the c x c map multiplies v: c_v = c
    n = draw(st.integers(1, 300))
    scale = draw(st.sampled_from([1e-3, 1.0, 50.0]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    q = torch.randn(b, h, c, n, generator=g, dtype=torch.float64) * scale
    k = torch.randn(b, h, c, n, generator=g, dtype=torch.float64) * scale
    v = torch.randn(b, h, cv, n, generator=g, dtype=torch.float64)
    if draw(st.booleans()):  # an all-zero channel (norm below eps)
        q[:, :, 0] = 0
    tau = torch.rand(h, generator=g, dtype=torch.float64) * draw(st.sampled_from([0.1, 1.0, 30.0]))
    return q, k, v, tau, draw(st.integers(1, 128))


@SETTINGS
@given(qkv())
def test_attention_rows_sum_to_one(args):
    q, k, _, tau, _ = args
    a = channel_attention_map_reference(q, k, tau)
    assert a.shape == (*q.shape[:2], q.shape[2], q.shape[2])
    assert torch.allclose(a.sum(-1), torch.ones_like(a[..., 0]), atol=1e-12) and (a >= 0).all()


@SETTINGS
@given(qkv())
def test_streaming_equals_reference_forward_and_backward(args):
    q, k, v, tau, tile = args
    qs, ks, vs, ts = (t.clone().requires_grad_() for t in (q, k, v, tau))
    qr, kr, vr, tr = (t.clone().requires_grad_() for t in (q, k, v, tau))
    out_s = channel_attention_streaming(qs, ks, vs, ts, tile=tile)
    out_r = channel_attention_reference(qr, kr, vr, tr)
    assert torch.allclose(out_s, out_r, rtol=1e-9, atol=1e-10)
    grad = torch.randn(out_r.shape, dtype=out_r.dtype, generator=torch.Generator().manual_seed(1))
    gs = torch.autograd.grad(out_s, (qs, ks, vs, ts), grad)
    gr = torch.autograd.grad(out_r, (qr, kr, vr, tr), grad)
    for name, a, b in zip("qkvt", gs, gr):
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-9), name
    # through the public dispatch too
    assert torch.allclose(channel_attention(q, k, v, tau, backend="streaming"), out_r, rtol=1e-9, atol=1e-10)


@SETTINGS
@given(qkv())
def test_ig_streaming_equals_reference(args):
    q, k, v, tau, tile = args
    illum = torch.rand(v.shape, dtype=v.dtype, generator=torch.Generator().manual_seed(2))
    ref = channel_attention_reference(q, k, v * illum, tau)
    assert torch.allclose(ig_channel_attention_streaming(q, k, v, illum, tau, tile=tile), ref, rtol=1e-9, atol=1e-10)
    assert torch.allclose(ig_channel_attention(q, k, v, illum, tau, backend="reference"), ref, rtol=1e-9, atol=1e-10)


@SETTINGS
@given(qkv())
def test_float32_streaming_close_to_float64_reference(args):
    q, k, v, tau, tile = args
    out = channel_attention_streaming(q.float(), k.float(), v.float(), tau.float(), tile=tile)
    ref = channel_attention_reference(q, k, v, tau)
    assert out.dtype == torch.float32
    assert torch.allclose(out.double(), ref, rtol=1e-4, atol=1e-4 * max(1.0, float(v.abs().max())))
    assert math.isfinite(float(out.abs().max()))
