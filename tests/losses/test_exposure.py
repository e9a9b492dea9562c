"""Exposure and GT-mean terms: brightness and structure apart."""

import pytest
import torch

from semprior.losses import ExposureLoss, GTMeanLoss, exposure_loss, gtmean_loss
from semprior.losses.composite import LossWeights, deepspg_loss


def test_exposure_is_the_log_ratio_of_means():
    y = torch.rand(2, 3, 8, 8)
    assert exposure_loss(y, y).item() == 0
    got = exposure_loss(0.5 * y, y, eps=0, reduction="none")
    assert torch.allclose(got, torch.full((2,), torch.log(torch.tensor(2.0)).item()), atol=1e-5)
    assert ExposureLoss(eps=0)(0.5 * y, y).item() == pytest.approx(got.mean().item())


def test_gtmean_ignores_global_brightness_but_not_structure():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(2, 3, 8, 8, generator=g)
    assert gtmean_loss(0.3 * y, y, eps=0).item() < 1e-10
    noisy = y + 0.1 * torch.randn(y.shape, generator=g)
    assert gtmean_loss(noisy, y).item() > 1e-3
    assert GTMeanLoss(kind="l1")(noisy, y).item() == pytest.approx(gtmean_loss(noisy, y, kind="l1").item())


def test_gradients_of_the_split_terms():
    """The exposure term moves the brightness; the GT-mean term is blind to it (no gradient along x)."""
    y = torch.rand(1, 3, 8, 8)
    x = (0.5 * y).requires_grad_()
    gtmean_loss(x, y, eps=0).backward()
    assert x.grad.abs().max().item() < 1e-6
    x.grad = None
    exposure_loss(x, y).backward()
    assert (x.grad < 0).all()  # raising every pixel lowers the exposure error of a too-dark output


def test_deepspg_loss_reports_the_new_terms_only_when_weighted():
    out, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    _, terms = deepspg_loss(out, gt, LossWeights(semantic_kl=0, text=0))
    assert sorted(terms) == ["edge", "pixel"]
    total, terms = deepspg_loss(out, gt, LossWeights(pixel=0, semantic_kl=0, text=0, exposure=0.5, gtmean=1.0))
    assert sorted(terms) == ["edge", "exposure", "gtmean"]
    assert total.item() == pytest.approx(
        0.5 * terms["edge"].item() + 0.5 * terms["exposure"].item() + terms["gtmean"].item(), rel=1e-6
    )
    with pytest.raises(ValueError, match="exposure must be >= 0"):
        LossWeights(exposure=-1)
