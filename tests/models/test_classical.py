from pathlib import Path

import numpy as np
import pytest
import torch

from semprior.models.classical import CLAHE, CLASSICAL, Gamma, HistogramEqualization, Identity, LIMERetinex


@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_shapes_range_no_parameters(name):
    m = CLASSICAL[name]()
    assert sum(p.numel() for p in m.parameters()) == 0
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 20, generator=g) * 0.3
    y = m(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    if name != "identity":
        assert y.mean() > x.mean()  # every enhancer brightens a dark image


def test_identity_gamma_values():
    x = torch.rand(1, 3, 4, 4)
    assert torch.equal(Identity()(x), x)
    torch.testing.assert_close(Gamma(0.4)(x), x**0.4)


def test_lime_is_retinex_division():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 16, 16, generator=g) * 0.2
    m = LIMERetinex(gamma=1.0, smooth=0.0)
    # with no smoothing and gamma 1, I / max_c(I) puts the brightest channel at 1 everywhere
    torch.testing.assert_close(m(x).amax(dim=1), torch.ones(1, 16, 16))
    m = LIMERetinex(gamma=0.8, smooth=2.0)
    torch.testing.assert_close(m(x), (x / m.illumination(x)).clamp(0, 1))


def test_he_and_clahe_keep_hue_roughly():
    x = torch.zeros(1, 3, 32, 32)
    x[:, 0] = torch.linspace(0.05, 0.3, 32)  # pure red ramp
    for m in (HistogramEqualization(), CLAHE(space="hsv")):
        y = m(x)
        assert y[:, 1:].abs().max() < 1e-3 and y[:, 0].mean() > x[:, 0].mean()
    assert HistogramEqualization()(x)[:, 0].max() > 0.99  # global HE stretches to the full range


@pytest.mark.parametrize("hw", [(6, 9), (8, 8), (1, 5), (1, 1), (2, 40)])
def test_clahe_below_its_grid_uses_a_coarser_grid(hw):
    """An 8x8 grid needs 9x9 pixels in kornia; smaller axes get ``n - 1`` cells (one pixel: duplicated)."""
    m = CLAHE()
    assert m.grid_for(*hw) == tuple(max(1, min(8, n - 1)) for n in hw)
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(5)) * 0.3
    y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    if min(hw) > 1:  # the same as asking for the coarser grid outright
        torch.testing.assert_close(y, CLAHE(grid_size=m.grid_for(*hw))(x))
    if hw == (1, 1):  # duplicating the pixel leaves CLAHE's result unchanged: compare with a 2x2 copy of it
        x2 = x.expand(-1, -1, 2, 2)
        torch.testing.assert_close(y, CLAHE()(x2)[..., :1, :1])


def test_clahe_large_image_keeps_the_asked_grid():
    m = CLAHE(grid_size=(4, 6))
    assert m.grid_for(64, 64) == (4, 6)
    with pytest.raises(ValueError, match="grid_size must be two ints >= 1"):
        CLAHE(grid_size=(0, 8))


@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_values_outside_unit_range_are_rejected_with_the_fix(name):
    m = CLASSICAL[name]()
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*divide 8-bit data by 255"):
        m(torch.full((1, 3, 8, 8), 200.0))
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*clamp"):
        m(torch.full((1, 3, 8, 8), -0.5))


@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_config_protocol(name):
    m = CLASSICAL[name]()
    assert m.required_multiple == 1
    cfg = m.config
    assert type(cfg).from_dict(cfg.to_dict()) == cfg and type(m)(**cfg.to_dict()).config == cfg
    with pytest.raises(ValueError, match="unknown key"):
        type(cfg).from_dict({"nope": 1})


def test_bad_arguments():
    with pytest.raises(ValueError, match="gamma must be > 0"):
        Gamma(0)
    with pytest.raises(ValueError, match="'lab' or 'hsv'"):
        CLAHE(space="yuv")
    with pytest.raises(ValueError, match="must have 3 channels"):
        LIMERetinex()(torch.rand(1, 1, 8, 8))


@pytest.mark.slow
@pytest.mark.data
def test_gamma_eval15_matches_facts(shared_data):
    """FACTS.md: gamma 0.4 on LOL-v1 eval15 scores 14.59 dB / 0.621 (default protocol)."""
    from semprior.data.io import list_images, read_image
    from semprior.metrics import psnr, ssim

    root = shared_data / "lol_v1_eval15"
    m = Gamma(0.4)
    p, s = [], []
    for f in list_images(root / "low"):
        x, y = read_image(f)[None], read_image(root / "high" / f.name)[None]
        out = m(x)
        p.append(psnr(out, y).item())
        s.append(ssim(out, y).item())
    assert np.mean(p) == pytest.approx(14.59, abs=0.1)
    assert np.mean(s) == pytest.approx(0.621, abs=0.01)


def test_classical_retinex_example_runs(tmp_path, capsys):
    import importlib.util

    from semprior.data.io import read_image

    spec = importlib.util.spec_from_file_location(
        "classical_retinex", Path(__file__).resolve().parents[2] / "examples" / "classical_retinex.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--out", str(tmp_path), "--crop", "48", "--smooth", "1"]) == 0
    panel = read_image(tmp_path / "before_after.png")
    assert panel.shape == (3, 48, 3 * 48)
    low, enhanced = panel[..., :48], panel[..., 48:96]
    assert enhanced.mean() > low.mean() + 0.1
    assert "protocol: PSNR/SSIM on RGB" in capsys.readouterr().out
