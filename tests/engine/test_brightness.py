"""The never-darker guard of the enhance path."""

from pathlib import Path

import pytest
import torch

from semprior.engine.brightness import keep_brightness


def test_dark_inputs_never_come_out_darker():
    g = torch.Generator().manual_seed(0)
    low = torch.rand(4, 3, 16, 16, generator=g) * 0.3
    out = torch.stack([low[0] * 0.5, low[1] * 2, torch.zeros_like(low[2]), low[3] * 0.9 + 0.5 * (low[3] > 0.25)]).clamp(
        0, 1
    )
    got = keep_brightness(low, out)
    for i in range(4):
        assert got[i].mean() >= low[i].mean() - 1e-6
    assert torch.equal(got[1], out[1])  # brighter already: untouched
    ratio = got[0] / out[0].clamp_min(1e-6)
    assert ratio[out[0] > 1e-3].std() < 1e-4  # one global gain: contrast kept
    assert torch.equal(got[2], low[2])  # an all-black output falls back to the input (pixelwise maximum)


def test_bright_inputs_and_shapes():
    low = torch.full((1, 3, 4, 4), 0.6)
    out = torch.full((1, 3, 4, 4), 0.5)
    assert torch.equal(keep_brightness(low, out), out)  # not a dark input: its exposure is the model's choice
    with pytest.raises(ValueError, match="same shape"):
        keep_brightness(low, out[..., :2])


@pytest.mark.data
@pytest.mark.slow
def test_default_enhance_never_darkens_a_dark_photo(shared_data: Path, tmp_path: Path):
    """`semprior enhance` with no model flag on LIME and ExDark: every photo with mean grey below 0.4 comes out
    at least as bright (up to the 8-bit rounding of the written PNG)."""
    from semprior.cli.main import main
    from semprior.data.io import list_images, read_image

    checked = 0
    for folder in ("lime", "exdark_samples"):
        out = tmp_path / folder
        assert main(["enhance", str(shared_data / folder), "-o", str(out), "--no-progress"]) == 0
        for f in list_images(shared_data / folder):
            low = read_image(f)
            if low.mean() >= 0.4:
                continue
            got = read_image(out / (f.stem + ".png"))
            assert got.mean() >= low.mean() - 0.5 / 255, (f.name, float(low.mean()), float(got.mean()))
            checked += 1
    assert checked >= 10
