import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from semprior.losses.composite import DeepSPGLoss, LossWeights, deepspg_loss
from semprior.models.deepspg import ABLATIONS, DeepSPG, DeepSPGConfig, deepspg_training_loss
from semprior.priors.region import RegionPrior



def tiny(**kw):
    kw.setdefault("text_prior", False)
    return DeepSPGConfig(channels=8, heads=(1, 1, 2), retinex_channels=8, illum_channels=8, **kw)


def _count(cfg):
    prior = RegionPrior()
    net = DeepSPG(cfg, prior=prior).eval()
    params = sum(p.numel() for p in net.parameters())
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        po = prior(x)  # the frozen prior is excluded from the count
        counter = FlopCounterMode(display=False)
        with counter:
            net(x, prior_out=po)
    return params, counter.get_total_flops() / 2  # flop_counter counts 2 per multiply-add


@pytest.mark.slow
@pytest.mark.parametrize("preset,params,macs", [("deepspg", 0.55e6, 6.91e9), ("deepspg-large", 2.13e6, 26.03e9)])
def test_size_matches_paper(preset, params, macs):
    p, m = _count(DeepSPGConfig.preset(preset, text_prior=False))
    assert abs(p / params - 1) <= 0.10, p
    assert abs(m / macs - 1) <= 0.15, m


@pytest.mark.parametrize("hw", [(17, 23), (32, 32), (9, 40)])
def test_forward_odd_sizes_range_and_grad(hw):
    net = DeepSPG(tiny(), prior=RegionPrior())
    x = torch.rand(2, 3, *hw)
    y = net(x)
    assert y.shape == x.shape
    assert float(y.detach().min()) >= 0 and float(y.detach().max()) <= 1
    y.mean().backward()
    assert net.embed.weight.grad is not None and net.log_gamma.grad is not None


def test_prior_is_frozen_and_not_in_state_dict():
    prior = RegionPrior()
    net = DeepSPG(tiny(), prior=prior)
    assert all("prior" not in k for k in net.state_dict())
    net.train()
    assert not prior.training
    base = DeepSPG(tiny(image_prior=False)).state_dict()
    assert base["enc1.0.sem_proj.weight"].shape != net.state_dict()["enc1.0.sem_proj.weight"].shape


def test_ablation_switches_change_the_graph(monkeypatch):
    calls = []
    prior = RegionPrior()
    real = prior._forward
    monkeypatch.setattr(prior, "_forward", lambda img: (calls.append(1), real(img))[1])
    x = torch.rand(1, 3, 16, 16)
    torch.manual_seed(0)
    guided = DeepSPG(tiny(), prior=prior)
    guided(x)
    assert calls, "the image prior must run in forward"
    torch.manual_seed(0)
    base = DeepSPG(tiny().ablation("baseline"))
    assert base.enc1[0].sem_channels == 8 and guided.enc1[0].sem_channels == prior.spec.channels[0]
    assert base.effective_loss_weights.semantic_kl == 0 and base.effective_loss_weights.text == 0
    assert not torch.allclose(base(x), guided(x))
    assert set(ABLATIONS) >= {"baseline", "image-prior", "text-prior", "full"}
    assert DeepSPGConfig().ablation("full").coarse_to_fine


def test_switch_consistency_errors():
    with pytest.raises(ValueError, match="no prior was given"):
        DeepSPG(tiny())
    with pytest.raises(ValueError, match="image_prior is False"):
        DeepSPG(tiny(image_prior=False), prior=RegionPrior())
    with pytest.raises(ValueError, match="no text_loss"):
        DeepSPG(tiny(text_prior=True), prior=RegionPrior())
    with pytest.raises(ValueError, match="preset"):
        DeepSPGConfig.preset("huge")
    with pytest.raises(ValueError, match="heads"):
        DeepSPGConfig(channels=8, heads=(3, 1, 1))


def test_loss_terms_and_weights():
    prior = RegionPrior()
    text = lambda img: img.mean()  # stands in for CLIPPromptLoss (a scalar per batch)
    w = LossWeights(pixel=1.0, edge=0.5, semantic_kl=0.1, text=0.2)
    net = DeepSPG(tiny(text_prior=True, loss=w), prior=prior, text_loss=text)
    low, high = torch.rand(2, 3, 16, 16) * 0.2, torch.rand(2, 3, 16, 16)
    out = net(low)
    total, terms = net.loss(out, high)
    assert set(terms) == {"pixel", "edge", "semantic_kl", "text"}
    expect = terms["pixel"] + 0.5 * terms["edge"] + 0.1 * terms["semantic_kl"] + 0.2 * terms["text"]
    torch.testing.assert_close(total.detach(), expect)
    torch.testing.assert_close(terms["pixel"], ((out - high) ** 2).mean().detach())
    assert float(terms["semantic_kl"]) > 0
    total.backward()
    assert net.head.weight.grad is not None
    # the semantic KL alone pushes gradients through the frozen prior into the output
    o = out.detach().requires_grad_(True)
    deepspg_loss(o, high, LossWeights(pixel=0, edge=0, semantic_kl=1, text=0), prior)[0].backward()
    assert o.grad is not None and float(o.grad.abs().sum()) > 0
    assert all(p.grad is None for p in prior.parameters())


def test_loss_config_errors():
    with pytest.raises(ValueError, match="needs a prior"):
        DeepSPGLoss(LossWeights(semantic_kl=1.0, text=0))
    with pytest.raises(ValueError, match="text_loss"):
        DeepSPGLoss(LossWeights(semantic_kl=0, text=1.0))
    with pytest.raises(ValueError, match=">= 0"):
        LossWeights(edge=-1)


@pytest.mark.slow
def test_training_step_lowers_loss_on_fixed_batch():
    torch.manual_seed(0)
    net = DeepSPG(tiny(), prior=RegionPrior())
    high = torch.rand(2, 3, 16, 16) * 0.6 + 0.2
    batch = {"low": high * 0.15, "high": high}
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        total, _ = deepspg_training_loss(net, batch)
        first = float(total.detach()) if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert float(deepspg_training_loss(net, batch)[0]) < 0.5 * first


@pytest.mark.slow
def test_with_hrnet_prior_and_clip_text_loss():
    """The paper's components (random init here: no weights exist offline) plug in by their specs."""
    open_clip = pytest.importorskip("open_clip")
    pytest.importorskip("timm")
    from semprior.losses.clip_prompt import CLIPPromptLoss
    from semprior.priors.hrnet import HRNetPrior

    prior = HRNetPrior("w18_small", dataset="pascal_context")
    clip = open_clip.CLIP(embed_dim=32, vision_cfg=dict(layers=1, width=64, patch_size=16, image_size=32, head_width=32),
                          text_cfg=dict(context_length=16, vocab_size=49408, width=64, heads=2, layers=1))
    net = DeepSPG(tiny(text_prior=True), prior=prior, text_loss=CLIPPromptLoss(model_obj=clip))
    assert [b[0].sem_channels for b in (net.enc1, net.enc2, net.mid)] == list(prior.spec.channels[:3])
    assert not any("clip" in k or "backbone" in k for k in net.state_dict())
    low, high = torch.rand(1, 3, 37, 45) * 0.2, torch.rand(1, 3, 37, 45)
    out = net(low)
    total, terms = net.loss(out, high)
    assert set(terms) == {"pixel", "edge", "semantic_kl", "text"} and torch.isfinite(total)
    total.backward()
    assert net.embed.weight.grad is not None
    assert all(p.grad is None for p in prior.parameters()) and all(p.grad is None for p in clip.parameters())
