import pytest
import torch

from semprior import SSIMLoss, ssim_loss
from semprior.metrics import structural_similarity


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function(reduction):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 12, 12, generator=g), torch.rand(2, 3, 12, 12, generator=g)
    torch.testing.assert_close(SSIMLoss(reduction=reduction)(x, y), ssim_loss(x, y, reduction=reduction))


def test_value_is_one_minus_ssim():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    torch.testing.assert_close(ssim_loss(x, y, reduction="none"), 1 - structural_similarity(x, y))
    assert ssim_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert 0 < ssim_loss(x, y).item() <= 2


def test_gradcheck():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 2, 6, 6, generator=g, dtype=torch.float64).requires_grad_()
    y = torch.rand(1, 2, 6, 6, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: ssim_loss(a, b, window_size=5), (x, y))


def test_training_step_increases_ssim():
    g = torch.Generator().manual_seed(3)
    y = torch.rand(1, 3, 16, 16, generator=g)
    x = torch.rand(1, 3, 16, 16, generator=g).requires_grad_()
    before = ssim_loss(x, y)
    before.backward()
    with torch.no_grad():
        x -= 5.0 * x.grad
    assert ssim_loss(x, y) < before


def test_bad_input():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim_loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="positive odd integer"):
        SSIMLoss(window_size=4)
