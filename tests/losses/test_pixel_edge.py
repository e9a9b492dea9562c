import pytest
import torch

from semprior import EdgeLoss, PixelLoss, edge_loss, pixel_loss


@pytest.mark.parametrize("kind", ["mse", "l1", "charbonnier"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_pixel_module_equals_function(kind, reduction):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 3, 6, 5, generator=g), torch.rand(3, 3, 6, 5, generator=g)
    out = PixelLoss(kind, reduction)(x, y)
    torch.testing.assert_close(out, pixel_loss(x, y, kind, reduction))
    assert out.shape == ((3,) if reduction == "none" else ())


def test_pixel_values():
    x, y = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert pixel_loss(x, y).item() == pytest.approx(0.25)
    assert pixel_loss(x, y, "l1").item() == pytest.approx(0.5)
    assert pixel_loss(x, y, "charbonnier", eps=1e-3).item() == pytest.approx((0.25 + 1e-6) ** 0.5)
    assert pixel_loss(x, y, reduction="sum").item() == pytest.approx(0.5)
    torch.testing.assert_close(pixel_loss(x, y, "mse"), torch.nn.functional.mse_loss(x, y))


@pytest.mark.parametrize("kind", ["mse", "l1", "charbonnier"])
def test_pixel_gradcheck(kind):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 2, 3, 3, generator=g, dtype=torch.float64).requires_grad_()
    y = torch.rand(1, 2, 3, 3, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: pixel_loss(a, b, kind), (x, y))


def test_pixel_bad_input():
    with pytest.raises(ValueError, match="kind must be one of"):
        pixel_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), kind="huber")
    with pytest.raises(ValueError, match="kind must be one of"):
        PixelLoss("huber")
    with pytest.raises(ValueError, match="same shape"):
        pixel_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))
    with pytest.raises(ValueError, match="reduction must be"):
        pixel_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), reduction="avg")
    with pytest.raises(TypeError, match="floating-point"):
        pixel_loss(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 3, 4, 4, dtype=torch.uint8))


@pytest.mark.parametrize("mode", ["sobel", "diff"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_edge_module_equals_function(mode, reduction):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 7, 6, generator=g), torch.rand(2, 3, 7, 6, generator=g)
    torch.testing.assert_close(EdgeLoss(mode, reduction)(x, y), edge_loss(x, y, mode, reduction))


def test_edge_ignores_constant_shift_but_sees_edges():
    x = torch.rand(1, 3, 8, 8)
    assert edge_loss(x, x + 0.25).item() == pytest.approx(0.0, abs=1e-12)
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0
    assert edge_loss(step, torch.zeros_like(step)).item() > 0.01
    # squared difference of the kornia gradients, averaged
    import kornia

    d = kornia.filters.spatial_gradient(step) - kornia.filters.spatial_gradient(torch.zeros_like(step))
    assert edge_loss(step, torch.zeros_like(step)).item() == pytest.approx(d.square().mean().item())


def test_edge_gradcheck():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 2, 4, 4, generator=g, dtype=torch.float64).requires_grad_()
    y = torch.rand(1, 2, 4, 4, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(edge_loss, (x, y))


def test_edge_bad_input():
    with pytest.raises(ValueError, match="'sobel' or 'diff'"):
        EdgeLoss(mode="laplace")
    with pytest.raises(ValueError, match="same shape"):
        edge_loss(torch.rand(1, 3, 4, 4), torch.rand(2, 3, 4, 4))


@pytest.mark.parametrize("mode, factor", [("sobel", 64.0), ("diff", 4.0)])
def test_edge_unnormalized_operator(mode, factor):
    from semprior.losses.edge import image_gradients

    x, y = torch.rand(2, 3, 9, 8), torch.rand(2, 3, 9, 8)
    raw = edge_loss(x, y, mode, normalized=False)
    torch.testing.assert_close(raw, factor * edge_loss(x, y, mode))
    torch.testing.assert_close(EdgeLoss(mode, normalized=False)(x, y), raw)
    ramp = torch.arange(6.0).expand(1, 1, 5, 6)  # d/dx = 1 with normalised kernels, 8 with the raw Sobel
    g = image_gradients(ramp, "sobel", normalized=False)[0, 0, 0, 2, 2]
    assert g.item() == pytest.approx(8.0)
