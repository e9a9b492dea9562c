import pytest
import torch

from semprior import classical_decompose


@pytest.mark.parametrize("method", ["gaussian", "guided"])
@pytest.mark.parametrize("smooth", [0.0, 1.0, 3.0])
def test_exact_reconstruction(method, smooth):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 17, 23, generator=g)
    out = classical_decompose(x, smooth=smooth, method=method)
    assert out.reflectance.shape == (2, 3, 17, 23)
    assert out.illumination.shape == (2, 1, 17, 23)
    torch.testing.assert_close(out.reflectance * out.illumination, x, rtol=0, atol=2e-7)


def test_no_smoothing_is_max_rgb():
    x = torch.rand(1, 3, 8, 8)
    out = classical_decompose(x, smooth=0)
    torch.testing.assert_close(out.illumination, x.amax(dim=1, keepdim=True).clamp_min(1e-4))
    assert out.reflectance.amax(dim=1).max() <= 1 + 1e-6


def test_smoothing_reduces_variation():
    x = torch.rand(1, 3, 32, 32)
    raw = classical_decompose(x, smooth=0).illumination
    sm = classical_decompose(x, smooth=2).illumination
    assert sm.std() < 0.5 * raw.std()


def test_bad_input():
    with pytest.raises(ValueError, match="smooth must be >= 0"):
        classical_decompose(torch.rand(1, 3, 8, 8), smooth=-1)
    with pytest.raises(ValueError, match="'gaussian' or 'guided'"):
        classical_decompose(torch.rand(1, 3, 8, 8), method="box")
    with pytest.raises(ValueError, match="must have 3 channels"):
        classical_decompose(torch.rand(1, 1, 8, 8))


@pytest.mark.parametrize("method", ["gaussian", "guided"])
@pytest.mark.parametrize("hw", [(1, 7), (2, 2), (3, 40)])
def test_tiny_images_truncate_the_window(method, hw):
    x = torch.rand(1, 3, *hw)
    out = classical_decompose(x, smooth=3.0, method=method)
    torch.testing.assert_close(out.reflectance * out.illumination, x, rtol=0, atol=2e-7)
    if method == "gaussian" and hw != (2, 2):
        assert not torch.allclose(out.illumination, x.amax(dim=1, keepdim=True))  # it did smooth
