import pytest
import torch

from semprior.data import LowLightConfig, SyntheticPairs, default_clean_images, synthesize_low_light
from semprior.data.synthesis import LowLightSynthesis


def test_deterministic_under_generator():
    x = torch.rand(3, 3, 24, 20)
    a = synthesize_low_light(x, generator=torch.Generator().manual_seed(5))
    b = synthesize_low_light(x, generator=torch.Generator().manual_seed(5))
    c = synthesize_low_light(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_range_quantised_and_darker():
    x = torch.rand(4, 3, 16, 16) * 0.5 + 0.5
    y = synthesize_low_light(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert torch.allclose(y * 255, (y * 255).round(), atol=1e-4)
    assert float(y.mean()) < 0.5 * float(x.mean())


def test_noise_free_exposure_model_is_linear_light_scale():
    cfg = LowLightConfig(
        exposure=(0.25, 0.25), tone_prob=0.0, color_cast=0.0, shot_noise=(0, 0), read_noise=(0, 0), bits=0
    )
    from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb

    x = torch.rand(2, 3, 8, 8)
    y = synthesize_low_light(x, cfg)
    torch.testing.assert_close(y, linear_rgb_to_rgb(rgb_to_linear_rgb(x) * 0.25), rtol=1e-5, atol=1e-5)


def test_tone_curve_model_is_monotone_per_image():
    cfg = LowLightConfig(tone_prob=1.0, color_cast=0.0, shot_noise=(0, 0), read_noise=(0, 0), bits=0)
    ramp = torch.linspace(0, 1, 256).view(1, 1, 1, -1).expand(2, 3, 4, -1).contiguous()
    y = synthesize_low_light(ramp, cfg, torch.Generator().manual_seed(3))
    assert bool((y.diff(dim=-1) >= -1e-6).all())
    assert float(y[..., -1].max()) <= 0.36  # scale <= exposure max


def test_noise_increases_with_shot_gain():
    x = torch.full((1, 3, 64, 64), 0.6)
    base = dict(exposure=(0.2, 0.2), tone_prob=0.0, color_cast=0.0, read_noise=(0, 0), bits=0)
    lo = synthesize_low_light(x, LowLightConfig(shot_noise=(1e-4, 1e-4), **base), torch.Generator().manual_seed(0))
    hi = synthesize_low_light(x, LowLightConfig(shot_noise=(1e-2, 1e-2), **base), torch.Generator().manual_seed(0))
    assert float(hi.std()) > 3 * float(lo.std())


@pytest.mark.parametrize(
    "bad", [dict(exposure=(0.5, 0.1)), dict(tone_prob=2.0), dict(bits=32), dict(exposure=(0.0, 0.1))]
)
def test_config_validation(bad):
    with pytest.raises(ValueError, match="LowLightConfig"):
        LowLightConfig(**bad)


def test_input_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        synthesize_low_light(torch.full((1, 3, 4, 4), 2.0))
    with pytest.raises(ValueError, match="batch"):
        synthesize_low_light(torch.rand(3, 4, 4))


def test_module_matches_function():
    x = torch.rand(1, 3, 8, 8)
    cfg = LowLightConfig(tone_prob=0.3)
    torch.testing.assert_close(
        LowLightSynthesis(cfg)(x, torch.Generator().manual_seed(1)),
        synthesize_low_light(x, cfg, torch.Generator().manual_seed(1)),
    )


def test_synthetic_pairs_deterministic_and_epochs_differ():
    imgs = [torch.rand(3, 40, 40), torch.rand(3, 33, 50)]
    ds = SyntheticPairs(imgs, patch_size=16, length=5, seed=1)
    a, b = ds[3], ds[3]
    assert torch.equal(a["low"], b["low"]) and torch.equal(a["high"], b["high"])
    assert a["low"].shape == (3, 16, 16)
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["low"], a["low"])
    with pytest.raises(IndexError):
        ds[5]


def test_synthetic_pairs_errors():
    with pytest.raises(ValueError, match="smaller than patch_size"):
        SyntheticPairs([torch.rand(3, 8, 8)], patch_size=16)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        SyntheticPairs([torch.rand(1, 8, 8)], patch_size=4)


def test_default_clean_images_are_bundled_colour_photos():
    imgs = default_clean_images()
    assert len(imgs) >= 4
    for name, im in imgs.items():
        assert im.shape[0] == 3 and min(im.shape[1:]) >= 256, name
        assert float(im.min()) >= 0 and float(im.max()) <= 1
    with pytest.raises(ValueError, match="no image called"):
        default_clean_images(("not_a_photo",))
