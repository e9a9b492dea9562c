"""``semprior.enhance(img)``: PIL, numpy and tensors in, the same kind out.

It runs the enhance path with its never-darker guard.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import semprior
from semprior.engine.brightness import keep_brightness
from semprior.engine.tiling import enhance_image


class Darken(torch.nn.Module):
    required_multiple = 1

    def forward(self, x):
        return x * 0.5


def test_kinds_round_trip_and_match_the_enhance_path():
    rng = np.random.default_rng(0)
    arr = (rng.random((9, 11, 3)) * 60).astype(np.uint8)
    out = semprior.enhance(arr, "gamma")
    assert out.dtype == np.uint8 and out.shape == arr.shape
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
    gamma = semprior.create_model("gamma").eval()
    want = keep_brightness(x, enhance_image(gamma, x).clamp(0, 1))
    np.testing.assert_array_equal(out, (want[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy())
    pil = semprior.enhance(Image.fromarray(arr), gamma)
    assert isinstance(pil, Image.Image) and pil.size == (11, 9)
    np.testing.assert_array_equal(np.asarray(pil), out)
    t = semprior.enhance(x[0].double(), gamma)
    assert t.shape == (3, 9, 11) and t.dtype == torch.float64
    flt = semprior.enhance(arr.astype(np.float32) / 255, gamma)
    assert flt.dtype == np.float32 and flt.shape == arr.shape


def test_never_darker_guard_and_its_switch():
    x = torch.full((1, 3, 6, 6), 0.2)
    assert semprior.enhance(x, Darken()).mean() >= 0.2 - 1e-6
    torch.testing.assert_close(semprior.enhance(x, Darken(), keep_brightness=False), x * 0.5)


def test_bad_inputs_name_the_fix():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        semprior.enhance(np.zeros((4, 4), np.uint8), "gamma")
    with pytest.raises(TypeError, match="PIL image, a numpy"):
        semprior.enhance([[0]], "gamma")
