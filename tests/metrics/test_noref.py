"""No-reference scores: NIQE (the authors' and a fitted pristine model shipped), exposure, colour, noise,
unpaired folders."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from semprior.engine.evaluate_unpaired import evaluate_unpaired
from semprior.metrics import (
    brightness,
    colorfulness,
    default_niqe_model,
    exposure_clipping,
    fit_niqe_model,
    fitted_niqe_model,
    noise_sigma,
)
from semprior.metrics.niqe import aggd_fit, niqe, niqe_features


def _ggd(shape: float, n: int, g: torch.Generator) -> torch.Tensor:
    """Generalised Gaussian samples of a given shape: sign * Gamma(1/shape)^(1/shape)."""
    gam = torch.distributions.Gamma(
        torch.tensor(1 / shape, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    )
    torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=g)))
    mag = gam.sample((n,)) ** (1 / shape)
    sign = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)
    return sign * mag


@pytest.mark.parametrize("shape", [0.8, 1.0, 2.0, 3.0])
def test_aggd_fit_recovers_the_shape(shape):
    g = torch.Generator().manual_seed(0)
    x = _ggd(shape, 400_000, g)
    alpha, left, right = aggd_fit(x[None])
    assert alpha.item() == pytest.approx(shape, rel=0.03)
    assert left.item() == pytest.approx(right.item(), rel=0.02)  # symmetric


def test_aggd_fit_sees_asymmetry():
    x = torch.randn(1, 200_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = torch.where(x < 0, 2 * x, x)
    _, left, right = aggd_fit(x)
    assert left.item() / right.item() == pytest.approx(2.0, rel=0.02)


@pytest.mark.parametrize("which", ["authors", "fitted"])
def test_shipped_models_are_valid_gaussians(which):
    m = default_niqe_model() if which == "authors" else fitted_niqe_model()
    assert m.mean.shape == (36,) and torch.isfinite(m.mean).all()
    assert torch.allclose(m.cov, m.cov.T) and torch.linalg.eigvalsh(m.cov).min() > -1e-9
    if which == "fitted":
        assert m.patches > 100 and "cbsd68" in m.source and "kodak24" in m.source
    else:
        assert "authors" in m.source and "BasicSR" in m.source


def _photo(shared_data, i: int = 0):
    from semprior.data.io import read_image

    files = sorted((shared_data / "clean" / "kodak24").glob("*.png"))
    if not files:
        pytest.skip("no Kodak24 photos in the shared data")
    return read_image(files[i])[None]


@pytest.mark.data
def test_niqe_rises_with_noise_and_blur(shared_data):
    x = _photo(shared_data)
    torch.manual_seed(0)
    noisy = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    blur = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, 1)
    clean, n, b = niqe(torch.cat([x, noisy, blur])).tolist()
    assert clean < 4 and n > clean + 2 and b > clean + 2, (clean, n, b)


@pytest.mark.data
def test_fit_is_deterministic_and_uses_sharp_patches(shared_data):
    imgs = [_photo(shared_data, i)[0] for i in range(8)]
    a, b = fit_niqe_model(imgs), fit_niqe_model(imgs)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.cov, b.cov)
    total = sum(niqe_features(im)[0].shape[0] for im in imgs)
    assert 37 <= a.patches < total  # the sharpness threshold keeps a subset
    assert niqe(_photo(shared_data, 0), a).item() < niqe(_photo(shared_data, 0)).item() + 5


def test_niqe_input_rules():
    with pytest.raises(ValueError, match="at least 96x96"):
        niqe(torch.rand(1, 3, 64, 200))
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        niqe(torch.rand(1, 3, 96, 96) * 2)


def test_simple_statistics():
    gray = torch.full((1, 3, 32, 32), 0.4)
    assert colorfulness(gray).item() == 0.0
    red = torch.zeros(1, 3, 32, 32)
    red[:, 0] = 1
    assert colorfulness(red).item() == pytest.approx(0.3 * math.hypot(255, 127.5))  # uniform: mean term only
    assert brightness(gray).item() == pytest.approx(0.4)
    dark, bright = exposure_clipping(torch.cat([torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)]))
    assert dark.tolist() == [1.0, 0.0] and bright.tolist() == [0.0, 1.0]
    g = torch.Generator().manual_seed(0)
    sig = [
        noise_sigma((0.5 + s / 255 * torch.randn(1, 3, 128, 128, generator=g)).clamp(0, 1)).item() for s in (0, 5, 20)
    ]
    assert sig[0] == 0 and sig[0] < sig[1] < sig[2]
    luma_sigma = 20 * math.sqrt(0.299**2 + 0.587**2 + 0.114**2)
    assert sig[2] == pytest.approx(luma_sigma, rel=0.1)


def test_evaluate_unpaired_folder(tmp_path):
    from semprior.data.io import write_image

    g = torch.Generator().manual_seed(0)
    for i in range(2):
        write_image(tmp_path / f"{i}.png", torch.rand(3, 200, 200, generator=g) * 0.2)
    write_image(tmp_path / "small.png", torch.rand(3, 40, 40, generator=g) * 0.2)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    res = evaluate_unpaired({"double": lambda x: x * 2}, tmp_path)
    assert res.names == ["0.png", "1.png", "small.png"] and [n for n, _ in res.skipped] == ["broken.png"]
    m = res.means()
    assert m["double"]["brightness"] == pytest.approx(2 * m["input"]["brightness"], rel=1e-3)
    assert math.isnan(res.scores["input"]["niqe"][2]) and not math.isnan(m["input"]["niqe"])  # NIQE needs 96x96
    table = res.table()
    assert "| input |" in table and "| double |" in table and "broken.png" in table
    with pytest.raises(ValueError, match="returned"):
        evaluate_unpaired({"crop": lambda x: x[..., :50, :50]}, tmp_path)
