"""The conformance suite every prior backend must pass (tiny random-init configs)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from semprior.priors import PriorOutput, PriorSpec, SegPrior


def _check_shapes(prior, out, b, h, w):
    spec = prior.spec
    assert isinstance(out, PriorOutput)
    assert len(out.features) == spec.num_levels
    for f, c, s in zip(out.features, spec.channels, spec.strides):
        assert tuple(f.shape) == (b, c, math.ceil(h / s), math.ceil(w / s))
        assert torch.isfinite(f).all()
    if spec.num_classes:
        assert out.logits is not None and out.logits.shape[:2] == (b, spec.num_classes)
        assert torch.isfinite(out.logits).all()
    else:
        assert out.logits is None


def test_spec_available_after_construction(prior):
    spec = prior.spec
    assert isinstance(prior, SegPrior) and isinstance(spec, PriorSpec)
    assert len(spec.channels) == len(spec.strides) >= 1
    assert list(spec.strides) == sorted(spec.strides)
    assert spec.num_classes >= 0


@pytest.mark.parametrize("size", [(97, 131), (33, 17)])
def test_any_size_honours_strides(prior, size):
    h, w = size
    out = prior(torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1)))
    _check_shapes(prior, out, 1, h, w)


def test_float64_followed(prior):
    out = prior(torch.rand(1, 3, 40, 56, dtype=torch.float64))
    assert all(f.dtype == torch.float64 for f in out.features)
    if out.logits is not None:
        assert out.logits.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in prior.parameters())
    out32 = prior(torch.rand(1, 3, 40, 56))
    assert out32.features[0].dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_followed(prior):
    out = prior(torch.rand(1, 3, 40, 56, device="cuda"))
    assert all(f.device.type == "cuda" for f in out.features)
    prior.to("cpu")


def test_device_follow_moves_buffers(prior, monkeypatch):
    """On CPU-only machines: the follow step asks for the input's device and dtype."""
    calls = []
    real_to = nn.Module.to

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(type(prior), "to", spy)
    prior(torch.rand(1, 3, 32, 32, dtype=torch.float64))
    if not list(prior.parameters()) + list(prior.buffers()):
        assert calls == []  # nothing to move: the computation follows the input by construction
        return
    assert calls and calls[0]["device"] == torch.device("cpu") and calls[0]["dtype"] == torch.float64


def test_frozen_and_stays_eval(prior):
    parent = nn.Sequential(nn.Conv2d(3, 3, 1), prior)
    parent.train()
    assert not prior.training and not any(m.training for m in prior.modules())
    assert not any(p.requires_grad for p in prior.parameters())
    bn = [m for m in prior.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    before = [m.running_mean.clone() for m in bn]
    prior(torch.rand(1, 3, 64, 64))
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, bn))
    # a parameter-free prior still reports eval mode
    assert prior.train(True) is prior and not prior.training


def test_no_grad_by_default_but_usable_in_a_graph(prior):
    img = torch.rand(1, 3, 48, 48, requires_grad=True)
    out = prior(img)
    assert not out.features[-1].requires_grad
    assert not out.features[-1].is_inference()
    w = torch.ones(1, requires_grad=True)
    (out.features[-1] * w).sum().backward()  # outputs are plain tensors, not inference tensors
    assert w.grad is not None and img.grad is None


def test_grad_true_reaches_input_not_params(prior):
    img = torch.rand(1, 3, 48, 48, requires_grad=True)
    out = prior(img, grad=True)
    target = out.logits if out.logits is not None else out.features[-1]
    target.square().mean().backward()
    assert img.grad is not None and torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0
    assert all(p.grad is None for p in prior.parameters())


def test_deterministic(prior):
    x = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(3))
    a, b = prior(x), prior(x)
    for fa, fb in zip(a.features, b.features):
        torch.testing.assert_close(fa, fb, rtol=0, atol=0)


def test_batch_independent(prior):
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(4))
    both = prior(x).features[-1]
    one = prior(x[1:]).features[-1]
    torch.testing.assert_close(both[1:], one, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.rand(3, 32, 32), "batch dimension"),
        (torch.rand(1, 1, 32, 32), "grayscale"),
        ((torch.rand(1, 3, 32, 32) * 255).to(torch.uint8), "floating-point"),
        (torch.full((1, 3, 32, 32), float("nan")), "NaN"),
    ],
)
def test_bad_input_names_problem_and_fix(prior, bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        prior(bad)


def test_segprior_subclass_without_forward_cannot_be_built():
    from semprior.priors.base import PriorSpec, SegPrior

    class Incomplete(SegPrior):
        def __init__(self):
            super().__init__(PriorSpec("x", channels=(4,), strides=(1,)))

    with pytest.raises(TypeError, match="_forward"):
        Incomplete()
