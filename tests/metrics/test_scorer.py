"""ReferenceScorer: the reference's work done once, the values of psnr()/ssim() kept."""

import sys

import pytest
import torch

from semprior.metrics import MetricProtocol, ReferenceScorer, psnr, ssim

PROTOCOLS = [
    MetricProtocol(),
    MetricProtocol(quantize=False),
    MetricProtocol(space="y", crop_border=3),
    MetricProtocol(gt_mean=True),
]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
@pytest.mark.parametrize("strip", [500, 1 << 40])
def test_scorer_equals_the_functions_for_many_predictions(monkeypatch, protocol, strip):
    import semprior.metrics.ssim  # noqa: F401

    monkeypatch.setattr(sys.modules["semprior.metrics.ssim"], "STRIP_ELEMENTS", strip)  # several strips, or one
    g = torch.Generator().manual_seed(7)
    y = torch.rand(2, 3, 37, 29, generator=g)
    scorer = ReferenceScorer(y, protocol)
    preds = [(0.4 * y + 0.1 * torch.rand(2, 3, 37, 29, generator=g)).clamp(0, 1) for _ in range(3)] + [y]
    for x in preds:  # the second and later SSIMs read the cached reference statistics
        for gt_mean in (None, False, True):
            p = protocol if gt_mean is None else MetricProtocol(**{**protocol.__dict__, "gt_mean": gt_mean})
            torch.testing.assert_close(scorer.psnr(x, gt_mean), psnr(x, y, p), rtol=0, atol=1e-5)
            torch.testing.assert_close(scorer.ssim(x, gt_mean).double(), ssim(x, y, p).double(), rtol=0, atol=1e-7)


def test_scores_of_one_pair_match_four_function_calls():
    g = torch.Generator().manual_seed(8)
    y = torch.rand(1, 3, 40, 52, generator=g)
    scorer = ReferenceScorer(y)
    for _ in range(2):
        x = (y * 0.3 + 0.05 * torch.randn(1, 3, 40, 52, generator=g)).clamp(0, 1)
        plain, gtm = MetricProtocol(), MetricProtocol(gt_mean=True)
        expected = {
            "psnr": psnr(x, y, plain),
            "ssim": ssim(x, y, plain),
            "psnr_gtmean": psnr(x, y, gtm),
            "ssim_gtmean": ssim(x, y, gtm),
        }
        got = scorer.scores(x)
        assert list(got) == list(expected)
        for k in expected:
            assert got[k] == pytest.approx(float(expected[k]), abs=1e-9), k
    assert scorer.scores(y)["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert scorer.scores(y * 0.5)["psnr_gtmean"] > scorer.scores(y * 0.5)["psnr"]


def test_the_cache_is_exact_in_float64(monkeypatch):
    """The cached path and the one-shot path run the same operations: equal to float64 rounding."""
    import semprior.metrics.ssim as ssim_mod  # noqa: F401

    mod = sys.modules["semprior.metrics.ssim"]
    monkeypatch.setattr(mod, "STRIP_ELEMENTS", 300)
    g = torch.Generator().manual_seed(9)
    a = torch.rand(1, 3, 30, 24, dtype=torch.float64, generator=g)
    b = torch.rand(1, 3, 30, 24, dtype=torch.float64, generator=g)
    cache: list = []
    first = mod._ssim_prepared(a, b, 1.0, cache)
    assert len(cache) > 1  # several strips were cached
    again = mod._ssim_prepared(a, b, 1.0, cache)
    plain = mod._ssim_prepared(a, b, 1.0)
    torch.testing.assert_close(first, plain, rtol=0, atol=1e-12)
    torch.testing.assert_close(again, plain, rtol=0, atol=1e-12)


def test_scorer_bad_input():
    y = torch.rand(1, 3, 16, 16)
    scorer = ReferenceScorer(y)
    with pytest.raises(ValueError, match="same shape"):
        scorer.psnr(torch.rand(1, 3, 16, 12))
    with pytest.raises(ValueError, match="one image"):
        ReferenceScorer(torch.rand(2, 3, 16, 16)).scores(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 11x11"):
        ReferenceScorer(y, MetricProtocol(crop_border=3)).ssim(y)
    with pytest.raises(ValueError):
        ReferenceScorer(torch.rand(3, 16, 16))  # not a batch
