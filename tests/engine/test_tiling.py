"""Tiled inference: padding to the model's multiple, crop back, tiled == untiled, memory cap."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semprior.engine.tiling import (
    DEFAULT_BYTES_PER_PIXEL,
    TiledEnhancer,
    enhance_image,
    pad_to_multiple,
    required_multiple,
    tile_size_for_memory,
)


class Pointwise(nn.Module):
    """Per-pixel colour mixing: its output at a pixel depends only on that pixel."""

    def __init__(self, multiple: int = 1):
        super().__init__()
        self.required_multiple = multiple
        self.mix = nn.Conv2d(3, 3, 1)
        self.seen: list[tuple[int, int]] = []

    def forward(self, x):
        self.seen.append(tuple(x.shape[-2:]))
        if x.shape[-2] % self.required_multiple or x.shape[-1] % self.required_multiple:
            raise AssertionError(f"got {tuple(x.shape)}, not a multiple of {self.required_multiple}")
        return torch.sigmoid(self.mix(x))


class Local(nn.Module):
    """Two 3x3 convs (receptive field 5x5) with reflect padding."""

    required_multiple = 4

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
        self.b = nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        return torch.sigmoid(self.b(torch.relu(self.a(x))))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("hw", [(1, 1), (1, 7), (2, 3), (5, 5), (37, 50), (97, 131)])
def test_any_size_pads_to_multiple_and_crops_back(hw):
    net = Pointwise(multiple=8)
    x = torch.rand(1, 3, *hw)
    y = enhance_image(net, x)
    assert y.shape == x.shape
    assert all(h % 8 == 0 and w % 8 == 0 for h, w in net.seen)
    torch.testing.assert_close(y, torch.sigmoid(net.mix(x)), atol=1e-6, rtol=0)


@pytest.mark.parametrize("hw", [(37, 50), (64, 64), (101, 203)])
def test_tiled_equals_untiled_for_pointwise_model(hw):
    net = Pointwise(multiple=8)
    x = torch.rand(1, 3, *hw)
    full = enhance_image(net, x)
    net.seen.clear()
    tiled = enhance_image(net, x, tile=32, overlap=8)
    assert len(net.seen) > 1 and max(max(s) for s in net.seen) <= 32
    torch.testing.assert_close(tiled, full, atol=1e-6, rtol=0)


def test_tiled_close_to_untiled_for_conv_model():
    net = Local()
    x = torch.rand(2, 3, 67, 93)
    full = enhance_image(net, x, multiple=1)
    tiled = enhance_image(net, x, tile=32, overlap=12, multiple=1)
    err = (tiled - full).abs()
    # differences only come from tile borders, weighted down by the ramps
    assert err.mean() < 2e-3 and err.max() < 0.05
    # no seams: the blended result is much closer than hard-cut tiles would be
    hard = torch.cat(
        [torch.cat([net(x[..., i : i + 32, j : j + 32]) for j in range(0, 93, 32)], -1) for i in range(0, 67, 32)], -2
    )
    assert err.mean() < (hard - full).abs().mean()


def test_overlap_regions_blend_smoothly():
    """Two tiles returning constant 0 and 1: the overlap ramps monotonically between them."""

    class TileId(nn.Module):
        def forward(self, x):
            self.n = getattr(self, "n", -1) + 1
            return torch.full_like(x, float(self.n))

    x = torch.rand(1, 3, 8, 48)
    y = enhance_image(TileId(), x, tile=32, overlap=16)[0, 0, 0]
    assert torch.all(y[:16] == 0) and torch.all(y[32:] == 1)
    assert torch.all(y[16:32].diff() > 0)


def test_memory_cap_picks_tile_size():
    assert tile_size_for_memory(64, 4096, multiple=8) == 128
    assert tile_size_for_memory(1, 1024, multiple=4) == 32
    with pytest.raises(ValueError, match="too small"):
        tile_size_for_memory(0.001, 4096, multiple=32)
    net = Pointwise(multiple=8)
    net.inference_bytes_per_pixel = 1024
    x = torch.rand(1, 3, 100, 150)
    y = enhance_image(net, x, max_memory_mb=1, overlap=8)  # 32x32 tiles
    assert max(max(s) for s in net.seen) <= 32 and y.shape == x.shape
    net.seen.clear()
    enhance_image(net, torch.rand(1, 3, 20, 20), max_memory_mb=1)  # fits: one piece
    assert len(net.seen) == 1
    assert DEFAULT_BYTES_PER_PIXEL > 0


@pytest.mark.slow
def test_large_image_tiled_pointwise():
    net = Pointwise(multiple=8)
    x = torch.rand(1, 3, 2160, 3840)
    y = enhance_image(net, x, tile=1024, overlap=32)
    assert y.shape == x.shape
    torch.testing.assert_close(y[..., ::97, ::89], torch.sigmoid(net.mix(x[..., ::97, ::89])), atol=1e-5, rtol=0)


def test_pad_to_multiple_reflects_and_replicates():
    x = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 3, 5)
    y, hw = pad_to_multiple(x, 4)
    assert y.shape[-2:] == (4, 8) and hw == (3, 5)
    assert y[0, 0, 0, 5:].tolist() == [3.0, 2.0, 1.0]  # reflected
    one, _ = pad_to_multiple(torch.ones(1, 1, 1, 1), 8)
    assert one.shape[-2:] == (8, 8) and torch.all(one == 1)


def test_mode_restored_and_no_grad():
    net = Local()
    net.train()
    y = enhance_image(net, torch.rand(1, 3, 9, 9))
    assert net.training and not y.requires_grad


def test_module_matches_function():
    net = Local()
    x = torch.rand(1, 3, 45, 70)
    torch.testing.assert_close(TiledEnhancer(net, tile=32, overlap=8)(x), enhance_image(net, x, tile=32, overlap=8))


def test_errors_are_clear():
    net = Pointwise()
    with pytest.raises(ValueError, match="overlap"):
        enhance_image(net, torch.rand(1, 3, 64, 64), tile=16, overlap=16)
    with pytest.raises(ValueError, match="batch dimension"):
        enhance_image(net, torch.rand(3, 8, 8))
    bad = Pointwise()
    bad.required_multiple = 0
    with pytest.raises(ValueError, match="required_multiple"):
        required_multiple(bad)

    class Shrinks(nn.Module):
        def forward(self, x):
            return x[..., :-1, :]

    with pytest.raises(ValueError, match="changed the image size"):
        enhance_image(Shrinks(), torch.rand(1, 3, 8, 8))

    class Dicty(nn.Module):
        def forward(self, x):
            return {"something": x}

    with pytest.raises(TypeError, match="enhanced"):
        enhance_image(Dicty(), torch.rand(1, 3, 8, 8))


def test_tiling_plan_checks_options_before_any_image():
    from semprior.engine.tiling import tiling_plan
    from semprior.models.classical import CLAHE, Gamma, HistogramEqualization

    net = torch.nn.Identity()
    assert tiling_plan(net, multiple=8, tile=100, overlap=16) == (8, 96)
    assert tiling_plan(net, multiple=8, max_memory_mb=64, bytes_per_pixel=4096) == (8, 128)
    assert tiling_plan(net) == (1, None)
    with pytest.raises(ValueError, match="overlap \\(32\\) must be smaller than tile \\(32\\)"):
        tiling_plan(net, tile=32)  # explicit tile: refused even though no image is known yet
    with pytest.raises(ValueError, match="at least the model's multiple"):
        tiling_plan(net, multiple=8, tile=5, overlap=0)
    with pytest.raises(ValueError, match="finite"):
        tiling_plan(net, max_memory_mb=float("inf"))
    # global methods: options are still checked, but the plan is always the whole image
    assert tiling_plan(Gamma(), tile=64) == (1, 64)
    for m in (HistogramEqualization(), CLAHE()):
        assert tiling_plan(m, tile=64) == (1, None) and tiling_plan(m, max_memory_mb=1) == (1, None)
        with pytest.raises(ValueError, match="finite"):
            tiling_plan(m, max_memory_mb=float("nan"))


def test_global_methods_differ_when_tiled_by_hand():
    """Why HE/CLAHE are never tiled: per-tile histograms give a visibly different image."""
    from semprior.engine.tiling import _run_padded
    from semprior.models.classical import HistogramEqualization

    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.rand(1, 3, 64, 32, generator=g) * 0.1, torch.rand(1, 3, 64, 32, generator=g) * 0.5], dim=-1)
    he = HistogramEqualization()
    whole = _run_padded(he, x, 1, x.device, x.dtype)
    halves = torch.cat(
        [_run_padded(he, x[..., :32], 1, x.device, x.dtype), _run_padded(he, x[..., 32:], 1, x.device, x.dtype)], -1
    )
    assert (whole - halves).abs().mean() > 0.05
    assert torch.equal(enhance_image(he, x, tile=32, overlap=0), whole)
