import dataclasses

import pytest
import torch

from semprior import RetinexDecomposer, RetinexOutput


@pytest.mark.parametrize("mode,lc", [("gray", 1), ("rgb", 3)])
def test_shapes_and_ranges(mode, lc):
    torch.manual_seed(0)
    dec = RetinexDecomposer(channels=8, illumination=mode)
    out = dec(torch.rand(2, 3, 10, 12))
    assert isinstance(out, RetinexOutput)
    assert out.reflectance.shape == (2, 3, 10, 12)
    assert out.illumination.shape == (2, lc, 10, 12)
    assert out.features.shape == (2, 8, 10, 12)
    assert out.illumination.min() >= dec.eps and out.illumination.max() <= 1
    assert out.reflectance.min() >= 0 and out.reflectance.max() <= 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.reflectance = out.illumination


def test_reflectance_times_illumination_reconstructs_where_unclipped():
    torch.manual_seed(1)
    dec = RetinexDecomposer(channels=4)
    x = torch.rand(1, 3, 8, 8) * 0.05  # dark, so I <= L almost everywhere
    out = dec(x)
    mask = (x / out.illumination) < 1
    assert mask.float().mean() > 0.5
    torch.testing.assert_close((out.reflectance * out.illumination)[mask], x[mask])


def test_gradcheck_float64():
    torch.manual_seed(0)
    dec = RetinexDecomposer(channels=4, illumination="rgb").double()
    x = (torch.rand(1, 3, 4, 4, dtype=torch.float64) * 0.3).requires_grad_()

    def f(img):
        o = dec(img)
        return o.reflectance, o.illumination, o.features

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


def test_bad_input_messages():
    with pytest.raises(ValueError, match="'gray' or 'rgb'"):
        RetinexDecomposer(illumination="hsv")
    dec = RetinexDecomposer(channels=4)
    with pytest.raises(ValueError, match="add a batch dimension"):
        dec(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="NaN or Inf"):
        dec(torch.full((1, 3, 4, 4), float("nan")))
