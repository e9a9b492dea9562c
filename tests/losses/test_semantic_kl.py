import pytest
import torch
import torch.nn.functional as F

from semprior import SemanticKLLoss, semantic_kl_loss


def _kl_ref(p_logits, q_logits):
    p, q = p_logits.softmax(1), q_logits.softmax(1)
    return (p * (p.log() - q.log())).sum(1).flatten(1).mean(1)


def test_direction_and_value():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4, 5, 5, generator=g), torch.randn(2, 4, 5, 5, generator=g)
    # default: KL(target || input)
    torch.testing.assert_close(semantic_kl_loss(a, b, reduction="none"), _kl_ref(b, a))
    torch.testing.assert_close(semantic_kl_loss(a, b, reverse=True, reduction="none"), _kl_ref(a, b))
    assert not torch.allclose(_kl_ref(a, b), _kl_ref(b, a))
    assert semantic_kl_loss(a, a).item() == pytest.approx(0.0, abs=1e-7)
    assert (semantic_kl_loss(a, b, reduction="none") >= 0).all()


def test_temperature_scales_logits():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 3, 4, 4, generator=g), torch.randn(1, 3, 4, 4, generator=g)
    torch.testing.assert_close(semantic_kl_loss(a, b, temperature=2.0), semantic_kl_loss(a / 2, b / 2))


def test_saturated_logits_are_finite():
    a = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    a[:, 0] = 1e4
    b = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    b[:, 1] = 1e4
    a.requires_grad_()
    loss = semantic_kl_loss(a, b)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == pytest.approx(1e4, rel=1e-6)
    assert torch.isfinite(a.grad).all()
    for rev in (False, True):
        assert torch.isfinite(semantic_kl_loss(a.detach().float(), b.float(), reverse=rev))


def test_resizes_target_to_input():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, 5, 8, 8, generator=g), torch.randn(2, 5, 4, 4, generator=g)
    b_up = F.interpolate(b, size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(semantic_kl_loss(a, b), semantic_kl_loss(a, b_up))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function(reduction):
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    m = SemanticKLLoss(temperature=1.5, reverse=True, reduction=reduction)
    torch.testing.assert_close(m(a, b), semantic_kl_loss(a, b, 1.5, True, reduction))


def test_gradcheck():
    g = torch.Generator().manual_seed(4)
    a = torch.randn(1, 3, 3, 3, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.randn(1, 3, 2, 2, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: semantic_kl_loss(x, y, temperature=0.7), (a, b))
    assert torch.autograd.gradcheck(lambda x, y: semantic_kl_loss(x, y, reverse=True), (a, b))


def test_bad_input():
    with pytest.raises(ValueError, match="number of classes K"):
        semantic_kl_loss(torch.randn(1, 3, 4, 4), torch.randn(1, 4, 4, 4))
    with pytest.raises(ValueError, match="at least 2 classes"):
        semantic_kl_loss(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        SemanticKLLoss(temperature=0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        semantic_kl_loss(torch.full((1, 3, 2, 2), float("inf")), torch.randn(1, 3, 2, 2))


def test_composite_loss_kl_direction_option():
    from semprior.losses.composite import DeepSPGLoss, LossWeights
    from semprior.priors.region import RegionPrior

    prior = RegionPrior()
    out, gt = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    w = LossWeights(pixel=0, edge=0, semantic_kl=1.0, text=0)
    ours = DeepSPGLoss(w, prior)(out, gt)[1]["semantic_kl"]
    other = DeepSPGLoss(w, prior, kl_reverse=True)(out, gt)[1]["semantic_kl"]
    pred, ref = prior(out).logits, prior(gt).logits
    torch.testing.assert_close(ours, semantic_kl_loss(pred, ref))
    torch.testing.assert_close(other, semantic_kl_loss(pred, ref, reverse=True))
    assert (ours - other).abs() > 1e-6
