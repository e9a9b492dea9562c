"""SSIM and PSNR (as `semprior eval` computes them, through ReferenceScorer) against scikit-image's
float64 implementations: synthetic images always, the real LOL-v1 eval15 pairs when the data is there.

Bounds: SSIM within 1e-6 of ``skimage.metrics.structural_similarity`` (MATLAB-style settings);
PSNR within 1e-5 dB of ``skimage.metrics.peak_signal_noise_ratio`` (both compute in float64; the
scores are returned in the prediction's float32, whose rounding of a ~20 dB value is ~1e-6 dB).
"""

import sys

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

import semprior.metrics.ssim  # noqa: F401
from semprior.metrics import MetricProtocol, ReferenceScorer, prepare_pair

SSIM_TOL, PSNR_TOL = 1e-6, 1e-5


def _skimage_scores(x: torch.Tensor, y: torch.Tensor, gt_mean: bool) -> tuple[float, float]:
    a, b = prepare_pair(x, y, MetricProtocol(gt_mean=gt_mean))
    a_np = a[0].double().numpy().transpose(1, 2, 0)
    b_np = b[0].double().numpy().transpose(1, 2, 0)
    s = sk_ssim(
        a_np, b_np, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=2
    )
    with np.errstate(divide="ignore"):  # identical images: PSNR inf, as ours
        p = sk_psnr(b_np, a_np, data_range=1.0)
    return float(p), float(s)


def _check_pair(x: torch.Tensor, y: torch.Tensor, scorer: ReferenceScorer, label: str) -> None:
    got = scorer.scores(x)
    for suffix, gt_mean in (("", False), ("_gtmean", True)):
        p_ref, s_ref = _skimage_scores(x, y, gt_mean)
        assert got["psnr" + suffix] == pytest.approx(p_ref, abs=PSNR_TOL), (label, suffix)
        assert got["ssim" + suffix] == pytest.approx(s_ref, abs=SSIM_TOL), (label, suffix)


def test_synthetic_pairs_match_skimage(monkeypatch):
    """Textured, flat bright, flat dark and odd-sized images, over several strips (the last one short)."""
    monkeypatch.setattr(sys.modules["semprior.metrics.ssim"], "STRIP_ELEMENTS", 4000)
    g = torch.Generator().manual_seed(11)
    y_tex = torch.rand(1, 3, 53, 71, generator=g)
    cases = {
        "texture": (y_tex, (0.5 * y_tex + 0.2 * torch.rand(1, 3, 53, 71, generator=g)).clamp(0, 1)),
        "flat bright": (torch.full((1, 3, 40, 64), 0.95), torch.full((1, 3, 40, 64), 0.93)),
        "bright, faint noise": (
            (0.97 + 0.003 * torch.randn(1, 3, 47, 50, generator=g)).clamp(0, 1),
            (0.94 + 0.003 * torch.randn(1, 3, 47, 50, generator=g)).clamp(0, 1),
        ),
        "dark": ((0.05 * torch.rand(1, 3, 33, 90, generator=g)), (0.03 * torch.rand(1, 3, 33, 90, generator=g))),
    }
    for label, (y, x) in cases.items():
        scorer = ReferenceScorer(y)
        _check_pair(x, y, scorer, label)
        _check_pair((x * 1.3).clamp(0, 1), y, scorer, label + ", second prediction (cached reference)")


def test_fast_map_equals_the_differentiable_map():
    """The no-gradient SSIM map (one buffer, in place) and the differentiable one agree to float64 rounding."""
    mod = sys.modules["semprior.metrics.ssim"]
    g = torch.Generator().manual_seed(12)
    x = torch.rand(2, 3, 30, 41, dtype=torch.float64, generator=g)
    y = torch.rand(2, 3, 30, 41, dtype=torch.float64, generator=g)
    taps = mod.gaussian_window(11, 1.5, torch.float64).tolist()
    stats = mod._target_stats(y, taps, 1e-4, 9e-4)
    fast = mod._ssim_map_inplace(x, y, stats, taps, 1e-4, 9e-4)
    plain = mod._ssim_map(x, y, stats, taps, 1e-4, 9e-4)
    assert fast.shape == plain.shape == (2, 3, 20, 31)
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-15)
    # and the two paths behind structural_similarity: with and without a gradient
    xg = x.clone().requires_grad_(True)
    torch.testing.assert_close(
        mod.structural_similarity(xg, y).detach(), mod.structural_similarity(x, y), rtol=0, atol=1e-15
    )


@pytest.mark.slow
@pytest.mark.data
def test_eval15_pairs_match_skimage(eval15_pairs):
    """Every eval15 pair, the low image and a brightened one as predictions, plain and GT-mean."""
    for name, x, y in eval15_pairs:
        scorer = ReferenceScorer(y)
        for pred in (x, (x * 4).clamp(0, 1)):
            _check_pair(pred, y, scorer, name)
