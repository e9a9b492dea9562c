"""CUGD: CUIE block, semantic context loss, diffusion toolkit, the conditional diffusion enhancer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semprior.attention.cuie import CUIEBlock, feature_tokens, region_masks_from_map, region_tokens
from semprior.losses.context import SemanticContextLoss, semantic_context_loss
from semprior.models.cugd import CUGD, CUGDConfig, cugd_training_loss
from semprior.models.diffusion import NoiseSchedule, ddim_sample, ddim_timesteps, epsilon_loss, make_betas, v_loss
from semprior.priors.base import PriorOutput, PriorSpec, SegPrior


class ConvPrior(SegPrior):
    """A tiny frozen segmentation-feature network with the SegPrior contract (stride 4, 6 channels)."""

    def __init__(self):
        super().__init__(PriorSpec("toy-conv", channels=(6,), strides=(4,)))
        torch.manual_seed(123)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 4, stride=4), torch.nn.Dropout(0.5), torch.nn.Tanh())
        self.freeze()

    def _forward(self, img):
        return PriorOutput([self.net(F.pad(img, (0, (-img.shape[-1]) % 4, 0, (-img.shape[-2]) % 4)))])


def tiny(**kw):
    base = dict(width=8, depth=1, heads=2, timesteps=50, sampling_steps=4, token_grid=2)
    base.update(kw)
    return CUGDConfig(**base)


# ------------------------------------------------------------------ CUIE


def test_cuie_shapes_and_context_dependence():
    torch.manual_seed(0)
    block = CUIEBlock(dim=8, context_dim=6, heads=2).eval()
    x = torch.rand(2, 8, 5, 3)
    a = block(x, torch.rand(2, 4, 6))
    b = block(x, torch.rand(2, 4, 6))
    assert a.shape == x.shape and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="context_dim=6"):
        block(x, torch.rand(2, 4, 5))
    with pytest.raises(ValueError, match="divide"):
        CUIEBlock(dim=8, context_dim=6, heads=3)


def test_tokens():
    f = torch.rand(2, 6, 8, 8)
    assert feature_tokens(f, grid=2).shape == (2, 4, 6)
    torch.testing.assert_close(feature_tokens(f, grid=1)[:, 0], f.mean(dim=(-2, -1)))
    masks = torch.zeros(2, 3, 16, 16)
    masks[:, 0] = 1  # whole image
    masks[:, 1, :8, :8] = 1  # top-left quarter
    tok = region_tokens(f, masks)
    assert tok.shape == (2, 3, 6)
    torch.testing.assert_close(tok[:, 0], f.mean(dim=(-2, -1)))
    torch.testing.assert_close(tok[:, 1], f[..., :4, :4].mean(dim=(-2, -1)))
    assert torch.all(tok[:, 2] == 0)  # empty region


# ------------------------------------------------------------------ context loss


def test_context_loss_zero_for_identical_and_gradient_flows():
    prior = ConvPrior()
    ref = torch.rand(2, 3, 8, 8)
    assert float(semantic_context_loss(ref, ref, prior)) == pytest.approx(0.0, abs=1e-6)
    out = torch.rand(2, 3, 8, 8, requires_grad=True)
    loss = SemanticContextLoss(prior, distance="cosine")(out, ref)
    loss.backward()
    assert loss > 0 and out.grad is not None and out.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in prior.parameters())


def test_context_loss_refuses_gradient_free_extractor():
    net = torch.nn.Conv2d(3, 4, 3, padding=1)

    def no_grad_extractor(img):
        with torch.no_grad():
            return net(img)

    out = torch.rand(1, 3, 8, 8, requires_grad=True)
    with pytest.raises(RuntimeError, match="no gradient"):
        semantic_context_loss(out, torch.rand(1, 3, 8, 8), no_grad_extractor)
    with pytest.raises(ValueError, match="distance"):
        semantic_context_loss(out, out, net, distance="l2")


# ------------------------------------------------------------------ diffusion


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedules(kind):
    b = make_betas(100, kind)
    assert b.shape == (100,) and bool((b > 0).all()) and bool((b < 1).all())
    s = NoiseSchedule(100, kind)
    assert bool((s.alphas_cumprod[1:] < s.alphas_cumprod[:-1]).all())
    x0, noise = torch.rand(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    t = torch.tensor([0, 50, 99])
    torch.testing.assert_close(s.predict_x0(s.q_sample(x0, t, noise), t, noise), x0, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        make_betas(10, "quadratic")


def test_ddim_timesteps():
    assert ddim_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))
    with pytest.raises(ValueError):
        ddim_timesteps(10, 11)


@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_recovers_x0_with_oracle_noise(eta):
    s = NoiseSchedule(200, "cosine")
    x0 = torch.rand(2, 3, 5, 5) * 1.6 - 0.8

    def oracle(x_t, t):
        ab = s.alphas_cumprod[t].view(-1, 1, 1, 1)
        return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()

    out = ddim_sample(oracle, x0.shape, s, steps=6, eta=eta, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0, rtol=1e-4, atol=1e-4)


def test_sampler_deterministic_under_seed():
    torch.manual_seed(0)
    model = CUGD(ConvPrior(), tiny(eta=0.5)).eval()
    low = torch.rand(1, 3, 9, 13)
    a = model.enhance(low, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(999)  # the global RNG must not matter
    b = model.enhance(low, generator=torch.Generator().manual_seed(7))
    c = model.enhance(low, generator=torch.Generator().manual_seed(8))
    assert a.shape == low.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1


def test_epsilon_loss_uses_generator():
    s = NoiseSchedule(20)
    f = lambda x, t: torch.zeros_like(x)  # noqa: E731
    x0 = torch.rand(2, 3, 4, 4)
    a = epsilon_loss(f, x0, s, torch.Generator().manual_seed(3))
    b = epsilon_loss(f, x0, s, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2])


# ------------------------------------------------------------------ CUGD model


@pytest.mark.parametrize("hw", [(9, 13), (4, 4), (7, 5)])
def test_cugd_shapes_odd_sizes(hw):
    model = CUGD(ConvPrior(), tiny())
    low = torch.rand(2, 3, *hw)
    assert model(low, generator=torch.Generator().manual_seed(0)).shape == low.shape
    total, terms = model.loss(low, torch.rand_like(low), generator=torch.Generator().manual_seed(0))
    assert total.dim() == 0 and "eps_mse" in terms
    masks = torch.zeros(2, 2, *hw)
    masks[:, 0] = 1
    assert model.context(low, masks).shape == (2, 4 + 2, 6)


@pytest.mark.slow
def test_training_lowers_loss_on_fixed_batch_and_prior_stays_frozen():
    torch.manual_seed(0)
    prior = ConvPrior()
    model = CUGD(prior, tiny(context_weight=0.1))
    before = [p.clone() for p in prior.parameters()]
    g = torch.Generator().manual_seed(2)
    low = torch.rand(2, 3, 8, 8, generator=g) * 0.3
    high = (low * 3).clamp(0, 1)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert not any(p is q for p in trainable for q in prior.parameters())
    opt = torch.optim.Adam(trainable, lr=3e-3)
    losses = []
    model.train()
    for _ in range(6):
        total, terms = model.loss(low, high, generator=torch.Generator().manual_seed(5))  # same t and noise
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(total.item())
        assert "context" in terms
    assert losses[-1] < 0.9 * losses[0], losses
    assert not prior.training and model.training
    # the frozen prior is kept out of the state dict and the parameters (recorded by name instead)
    assert all(k.startswith("denoiser.") for k in model.state_dict())
    assert not any(p is q for p in model.parameters() for q in prior.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, prior.parameters()))
    assert all(p.grad is None for p in prior.parameters())


def test_context_dim_from_spec_and_errors():
    assert CUGD(ConvPrior(), tiny()).context_dim == 6
    with pytest.raises(ValueError, match="context_dim"):
        CUGD(torch.nn.Conv2d(3, 6, 4, stride=4), tiny())
    wrong = CUGD(torch.nn.Conv2d(3, 6, 4, stride=4), tiny(context_dim=5))
    with pytest.raises(ValueError, match="context_dim=6"):
        wrong.context(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="sampling_steps"):
        tiny(sampling_steps=100)


@pytest.mark.slow
def test_trains_with_the_engine_trainer():
    from semprior.engine.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    prior = ConvPrior()
    model = CUGD(prior, tiny())
    data = [{"low": torch.rand(3, 8, 8) * 0.3, "high": torch.rand(3, 8, 8)} for _ in range(4)]
    result = Trainer(
        model, cugd_training_loss, data, TrainConfig(steps=2, batch_size=2, progress=False, log_every=1)
    ).fit()
    assert result.step == 2 and len(result.curves["eps_mse"]) == 2
    assert not prior.training


def test_region_map_from_prior_extras_becomes_tokens():
    class RegionMapPrior(ConvPrior):
        def _forward(self, img):
            out = super()._forward(img)
            regions = torch.zeros(img.shape[0], 1, *img.shape[-2:], dtype=torch.int64)
            regions[..., : img.shape[-2] // 2, :] = 1
            regions[..., img.shape[-2] // 2 :, :] = 2
            return PriorOutput(out.features, extras={"regions": regions})

    model = CUGD(RegionMapPrior(), tiny(max_regions=3))
    low = torch.rand(2, 3, 8, 8)
    ctx = model.context(low)
    assert ctx.shape == (2, 4 + 3, 6)
    feats = model.prior(low).features[0]
    torch.testing.assert_close(ctx[:, 4], feats[..., :1, :].mean(dim=(-2, -1)))
    assert torch.all(ctx[:, 6] == 0)  # label 3 absent
    with pytest.raises(TypeError, match="integer"):
        region_masks_from_map(torch.zeros(1, 1, 4, 4))


def test_eps_skip_preconditioning():
    x_t, low = torch.randn(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    t = torch.tensor([3, 40])
    for skip in (True, False):
        model = CUGD(ConvPrior(), tiny(eps_skip=skip))
        ctx = model.context(low)
        eps = model.predict_eps(x_t, low, t, ctx)  # the output conv starts at zero
        ab = model.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        torch.testing.assert_close(eps, (1 - ab).sqrt() * x_t if skip else torch.zeros_like(x_t))


def test_v_loss_targets_the_velocity_and_shares_the_draws():
    s = NoiseSchedule(20)
    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    _, _, t, x_t = epsilon_loss(lambda x, t: torch.zeros_like(x), x0, s, torch.Generator().manual_seed(3))
    ab = s.alphas_cumprod[t].view(-1, 1, 1, 1)
    noise = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()
    v = ab.sqrt() * noise - (1 - ab).sqrt() * x0
    loss, x0_hat, t2, x_t2 = v_loss(lambda x, tt: v, x0, s, torch.Generator().manual_seed(3))
    assert torch.equal(t, t2) and torch.equal(x_t, x_t2)  # the same t and noise as epsilon_loss
    assert float(loss) < 1e-10
    torch.testing.assert_close(x0_hat, x0)  # the exact velocity gives back x0
    bad, *_ = v_loss(lambda x, tt: v + 1, x0, s, torch.Generator().manual_seed(3))
    torch.testing.assert_close(bad, torch.tensor(1.0))


def test_v_prediction_noise_estimate_and_its_x0_at_the_last_step():
    """``prediction="v"``: eps_hat = sqrt(1 - a) x_t + sqrt(a) v_hat, so the implied
    x0 = sqrt(a) x_t - sqrt(1 - a) v_hat
    stays bounded at the last timestep, where the noise prediction's error is multiplied by 1 / sqrt(a)."""
    x_t, low = torch.randn(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    model = CUGD(ConvPrior(), tiny(prediction="v"))
    t = torch.tensor([3, 49])
    ctx = model.context(low)
    with torch.no_grad():
        model.denoiser.out.bias.fill_(0.1)  # a small constant error of the network
        eps = model.predict_eps(x_t, low, t, ctx)
    ab = model.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(eps, (1 - ab).sqrt() * x_t + ab.sqrt() * 0.1)
    x0 = model.schedule.predict_x0(x_t, t, eps)
    assert float((x0 - ab.sqrt() * x_t).abs().max()) < 0.11  # with prediction="eps": 0.1 / sqrt(a) = 100
    total, terms = model.loss(low, torch.rand_like(low), generator=torch.Generator().manual_seed(0))
    assert "v_mse" in terms and "eps_mse" not in terms and total.dim() == 0
    with pytest.raises(ValueError, match="prediction"):
        tiny(prediction="x0")


def test_forward_enhances_and_the_training_loss_goes_through_a_wrapper():
    """``forward(low) -> image`` only; the trainer's loss calls ``CUGD.loss`` through a wrapper's forward (DDP-safe)."""
    model = CUGD(ConvPrior(), tiny())
    low, high = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    with pytest.raises(TypeError):
        model(low, high)  # no loss through forward
    calls = []
    model.register_forward_pre_hook(lambda m, args: calls.append(len(args)))
    wrapped = torch.nn.DataParallel(model)  # on a CPU it calls model(*args): the path DDP's forward takes
    total, terms = cugd_training_loss(wrapped, {"low": low, "high": high})
    assert calls == [2] and total.dim() == 0 and "eps_mse" in terms
    assert "forward" not in vars(model)  # the method is restored
    assert model(low, generator=torch.Generator().manual_seed(0)).shape == low.shape
