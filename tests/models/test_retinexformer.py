"""Retinexformer assembled from IlluminationEstimator + IGAttentionBlock."""

from __future__ import annotations

import pytest
import torch

from semprior.models.retinexformer import Retinexformer, RetinexformerConfig, light_up

TINY = RetinexformerConfig(width=8, blocks=(1, 1, 1))


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_lol_v1_parameter_count_matches_paper():
    model = Retinexformer(RetinexformerConfig.lol_v1())
    assert n_params(model) == 1_605_701


def test_official_key_layout():
    keys = set(Retinexformer(TINY).state_dict())
    for k in (
        "body.0.estimator.conv1.weight",
        "body.0.estimator.depth_conv.weight",
        "body.0.denoiser.embedding.weight",
        "body.0.denoiser.encoder_layers.0.0.blocks.0.0.to_q.weight",
        "body.0.denoiser.encoder_layers.0.0.blocks.0.0.rescale",
        "body.0.denoiser.encoder_layers.1.2.weight",  # illumination-feature downsample
        "body.0.denoiser.bottleneck.blocks.0.1.norm.weight",
        "body.0.denoiser.decoder_layers.0.0.bias",  # ConvTranspose2d keeps its bias
        "body.0.denoiser.decoder_layers.1.1.weight",
        "body.0.denoiser.mapping.weight",
    ):
        assert k in keys, k
    assert "body.0.denoiser.mapping.bias" not in keys
    assert "body.0.denoiser.decoder_layers.0.1.bias" not in keys


def test_stages_multiply_parameters():
    one = n_params(Retinexformer(TINY))
    three = n_params(Retinexformer(RetinexformerConfig(width=8, blocks=(1, 1, 1), stages=3)))
    assert three == 3 * one


@pytest.mark.parametrize("hw", [(13, 18), (5, 7), (16, 16), (2, 3)])
def test_any_size(hw):
    torch.manual_seed(0)
    model = Retinexformer(TINY).eval()
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_padding_does_not_change_multiple_of_four_inputs():
    torch.manual_seed(0)
    model = Retinexformer(TINY).eval()
    x = torch.rand(1, 3, 12, 16)
    stage = model.body[0]
    with torch.no_grad():
        fea, illu = stage.estimator(x)
        expected = stage.denoiser(light_up(x, illu), fea)
        torch.testing.assert_close(model(x), expected)


def test_light_up():
    img = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(light_up(img, torch.zeros_like(img)), img)
    torch.testing.assert_close(light_up(img, torch.ones_like(img)), 2 * img)
    with pytest.raises(ValueError, match="same shape"):
        light_up(img, torch.zeros(1, 3, 2, 2))


@pytest.mark.slow
def test_training_step_lowers_loss_on_fixed_batch():
    torch.manual_seed(0)
    model = Retinexformer(TINY)
    low = torch.rand(1, 3, 8, 12) * 0.2
    high = (low * 4).clamp(0, 1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(4):
        loss = torch.nn.functional.l1_loss(model(low), high)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_bad_configs_and_inputs():
    with pytest.raises(ValueError, match="multiple of in_channels"):
        RetinexformerConfig(width=10)
    with pytest.raises(ValueError, match="depth \\+ 1"):
        RetinexformerConfig(blocks=(1, 2))
    with pytest.raises(ValueError, match="3 channels"):
        Retinexformer(TINY)(torch.rand(1, 1, 8, 8))
