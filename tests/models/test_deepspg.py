import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from semprior.losses.composite import DeepSPGLoss, LossWeights, deepspg_loss
from semprior.models.deepspg import ABLATIONS, DeepSPG, DeepSPGConfig, deepspg_training_loss
from semprior.priors.region import RegionPrior


def tiny(**kw):
    kw.setdefault("text_prior", False)
    return DeepSPGConfig(width=8, heads=(1, 1, 2), retinex_width=8, illum_width=8, **kw)


def _count(cfg):
    from dataclasses import replace

    prior = RegionPrior()
    net = DeepSPG(replace(cfg, backend="reference"), prior=prior).eval()  # the plain graph (no banded recomputation)
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
        DeepSPGConfig(width=8, heads=(3, 1, 1))


def test_loss_terms_and_weights():
    prior = RegionPrior()

    def text(img):  # stands in for CLIPPromptLoss (a scalar per batch)
        return img.mean()

    w = LossWeights(pixel=1.0, edge=0.5, semantic_kl=0.1, text=0.2)
    net = DeepSPG(tiny(text_prior=True, loss=w), prior=prior, text_loss=text)
    low, high = torch.rand(2, 3, 16, 16) * 0.2, torch.rand(2, 3, 16, 16)
    out = net(low)
    total, terms = net.criterion(out, high)
    torch.testing.assert_close(net.loss(low, high)[0], total)  # loss(low, high) = criterion(net(low), high)
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
    clip = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(layers=1, width=64, patch_size=16, image_size=32, head_width=32),
        text_cfg=dict(context_length=16, vocab_size=49408, width=64, heads=2, layers=1),
    )
    net = DeepSPG(tiny(text_prior=True), prior=prior, text_loss=CLIPPromptLoss(model_obj=clip))
    assert [b[0].sem_channels for b in (net.enc1, net.enc2, net.mid)] == list(prior.spec.channels[:3])
    assert not any("clip" in k or "backbone" in k for k in net.state_dict())
    low, high = torch.rand(1, 3, 37, 45) * 0.2, torch.rand(1, 3, 37, 45)
    total, terms = net.loss(low, high)
    assert set(terms) == {"pixel", "edge", "semantic_kl", "text"} and torch.isfinite(total)
    total.backward()
    assert net.embed.weight.grad is not None
    assert all(p.grad is None for p in prior.parameters()) and all(p.grad is None for p in clip.parameters())


# ---------------------------------------------------------------- exact low-memory inference
def _perturbed(cfg, prior=None, dtype=torch.float32):
    """A model whose output is mostly unclamped (random init saturates), so equality means something."""
    torch.manual_seed(0)
    net = DeepSPG(cfg, prior=prior).to(dtype).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.5).add_(torch.randn_like(p) * 0.05)
    return net


@pytest.mark.parametrize("with_prior", [False, True])
@pytest.mark.parametrize("scaling", ["l2-temperature", "inv-sqrt-c"])
def test_banded_forward_equals_plain(with_prior, scaling):
    cfg = tiny(backend="reference", image_prior=with_prior, attention_scaling=scaling)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-5)):
        net = _perturbed(cfg, RegionPrior() if with_prior else None, dtype)
        for hw in [(17, 23), (32, 32), (9, 40), (30, 7)]:
            x = torch.rand(2, 3, *hw, dtype=dtype) * 0.4
            with torch.no_grad():
                plain = net(x)  # backend "reference": the plain path
                assert ((plain > 0) & (plain < 1)).float().mean() > 0.5
                for band in (2, 4, 6, None):
                    torch.testing.assert_close(net.forward_banded(x, band_rows=band), plain, atol=tol, rtol=0)


def test_forward_runs_banded_exactly_when_documented(monkeypatch):
    calls = []
    real = DeepSPG._forward_banded
    monkeypatch.setattr(DeepSPG, "_forward_banded", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    net = _perturbed(tiny(image_prior=False))  # backend "auto": streaming on the CPU
    x = torch.rand(1, 3, 20, 24) * 0.4
    with torch.no_grad():
        whole = net(x)  # small image: the whole-image graph (SEM blocks banded inside)
        assert calls == []
        net.whole_graph_max_pixels = 20 * 24 - 1
        lean = net(x)
    assert calls == [1]
    plain = net(x)  # parameters require grad: the autograd graph
    assert calls == [1] and plain.requires_grad
    torch.testing.assert_close(lean, plain.detach(), atol=2e-5, rtol=0)
    torch.testing.assert_close(whole, plain.detach(), atol=2e-5, rtol=0)
    assert whole.is_contiguous()
    ref = _perturbed(tiny(image_prior=False, backend="reference"))
    with torch.no_grad():
        ref(x)
    assert calls == [1]
    with pytest.raises(ValueError, match="even number"):
        net.forward_banded(x, band_rows=3)


def test_state_dict_layout_unchanged():
    """Keys and shapes of the shipped presets (checkpoints of earlier versions load and mean the same)."""
    import hashlib

    def digest(net):
        lines = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in net.state_dict().items())
        return hashlib.sha256(lines.encode()).hexdigest()[:16]

    cfg = DeepSPGConfig.preset("deepspg", text_prior=False)
    assert digest(DeepSPG(cfg, prior=RegionPrior())) == "dda9b4c2d6b6c858"
    assert digest(DeepSPG(cfg.ablation("baseline"))) == "26957fbee9de07bb"
    large = DeepSPGConfig.preset("deepspg-large", text_prior=False)
    assert digest(DeepSPG(large, prior=RegionPrior())) == "4c26cb93138c4d1c"


# ---------------------------------------------------------------- paper-literal options and counts
def test_parameter_count_per_prior():
    cfg = DeepSPGConfig.preset("deepspg", text_prior=False)
    assert DeepSPG(cfg, prior=RegionPrior()).parameter_count() == 575_713
    assert DeepSPG(cfg.ablation("baseline")).parameter_count() == 594_657
    paper = DeepSPGConfig.preset("deepspg", text_prior=False, ffn_expansion=2.0)
    assert DeepSPG(paper, prior=RegionPrior()).parameter_count() == 519_517
    assert "params=575,713" in repr(DeepSPG(cfg, prior=RegionPrior()))


@pytest.mark.slow
def test_parameter_count_with_hrnet_w48():
    pytest.importorskip("timm")
    from semprior.priors.hrnet import HRNetPrior

    prior = HRNetPrior("w48", dataset="ade20k")  # random init: the count does not depend on the weights
    assert DeepSPG(DeepSPGConfig.preset("deepspg", text_prior=False), prior=prior).parameter_count() == 607_969
    n = DeepSPG(DeepSPGConfig.preset("deepspg", text_prior=False, ffn_expansion=2.0), prior=prior).parameter_count()
    assert n == 551_773 and abs(n / 0.55e6 - 1) <= 0.10


def test_paper_scaling_has_no_temperature_and_loss_options_reach_the_criterion():
    net = DeepSPG(tiny(image_prior=False, attention_scaling="inv-sqrt-c"))
    assert not any("temperature" in k for k in net.state_dict())
    assert net.enc1[0].scaling == "inv-sqrt-c"
    net = DeepSPG(tiny(kl_direction="output||target", edge_normalized=False), prior=RegionPrior())
    assert net.criterion.kl_reverse and not net.criterion.edge_normalized
    assert not DeepSPG(tiny(), prior=RegionPrior()).criterion.kl_reverse
    for bad, match in (
        ({"attention_scaling": "sqrt"}, "attention_scaling"),
        ({"kl_direction": "p||q"}, "kl_direction"),
        ({"edge_normalized": "no"}, "edge_normalized"),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            tiny(**bad)


def test_activation_checkpointing_gives_the_same_gradients(monkeypatch):
    calls = []
    real = torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, gt = torch.rand(2, 3, 16, 20, dtype=torch.float64) * 0.4, torch.rand(2, 3, 16, 20, dtype=torch.float64)
    grads = []
    for ckpt in (False, True):
        net = _perturbed(tiny(activation_checkpointing=ckpt), RegionPrior(), torch.float64).train()
        net.loss(x, gt)[0].backward()
        grads.append({k: p.grad for k, p in net.named_parameters()})
        assert len(calls) == (5 if ckpt else 0)  # one per SEM block
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], msg=k)


def test_memory_format_changes_the_layout_not_the_result():
    """channels-last activations (the CPU training default) give the plain graph's output and
    gradients; the output is contiguous; the layout follows the rule of `memory_format`."""
    x, gt = torch.rand(2, 3, 16, 20, dtype=torch.float64) * 0.4, torch.rand(2, 3, 16, 20, dtype=torch.float64)
    outs, grads = [], []
    for fmt in ("contiguous", "channels_last", "auto"):
        net = _perturbed(tiny(memory_format=fmt), RegionPrior(), torch.float64).train()
        out = net(x)
        assert out.is_contiguous()
        net.loss(x, gt)[0].backward()
        outs.append(out.detach())
        grads.append({k: p.grad for k, p in net.named_parameters()})
    for o, g in zip(outs[1:], grads[1:]):
        torch.testing.assert_close(o, outs[0])
        for k in grads[0]:
            torch.testing.assert_close(g[k], grads[0][k], msg=k)
    net = DeepSPG(tiny(image_prior=False))
    cpu = torch.rand(1, 3, 8, 8)
    assert net._channels_last(cpu)  # auto: training on a CPU
    with torch.no_grad():
        assert not net._channels_last(cpu)  # auto: inference keeps the default layout
    assert (
        DeepSPG(tiny(image_prior=False, memory_format="channels_last"))._channels_last(cpu.requires_grad_(False))
        is True
    )
    with pytest.raises(ValueError, match="memory_format"):
        tiny(memory_format="nhwc")
