"""NIQE as published: the authors' features and pristine model, checked against the MATLAB release.

The MATLAB values of IQA-PyTorch's five calibration images (``ResultsCalibra/dist_dir/I03, I04,
I06, I08, I19.bmp`` in github:chaofengc/IQA-PyTorch, ``results_official.csv``) are the reference.
The images are not in this repository: point ``SEMPRIOR_NIQE_CALIBRATION`` at a folder holding them
(e.g. ``git -C IQA-PyTorch show HEAD:ResultsCalibra/dist_dir/I03.bmp > DIR/I03.bmp``) to run
``test_calibration_images``; without it that test skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from semprior.metrics.niqe import (
    NIQE_MODELS,
    _half_size,
    aggd_fit,
    authors_niqe_model,
    fitted_niqe_model,
    niqe,
    niqe_features,
    niqe_model,
)

#: the MATLAB release (computequality.m with modelparameters.mat) on the calibration images
MATLAB = {
    "I03": 15.7536293917814,
    "I04": 3.65492152353770,
    "I06": 3.23547743716998,
    "I08": 3.18403333858339,
    "I19": 8.63519663862637,
}
#: this implementation on the same files (float64; recorded when the test was written)
OURS = {"I03": 15.7357, "I04": 3.6549, "I06": 3.2357, "I08": 3.2025, "I19": 9.0220}


def _read_bmp(path: Path) -> torch.Tensor:
    from PIL import Image

    arr = np.asarray(Image.open(path).convert("RGB")).copy()
    return torch.from_numpy(arr).permute(2, 0, 1).to(torch.float64)[None] / 255


def test_calibration_images():
    folder = os.environ.get("SEMPRIOR_NIQE_CALIBRATION")
    if not folder:
        pytest.skip("set SEMPRIOR_NIQE_CALIBRATION to a folder with IQA-PyTorch's ResultsCalibra/dist_dir/*.bmp")
    for name, ref in MATLAB.items():
        v = niqe(_read_bmp(Path(folder) / f"{name}.bmp")).item()
        assert abs(v - ref) / ref < 0.05, (name, v, ref)
        assert v == pytest.approx(OURS[name], abs=1e-3), (name, v)


def _synthetic() -> torch.Tensor:
    """A 192 x 288 8-bit image with natural-ish statistics, rebuilt from a formula and a seeded generator."""
    g = torch.Generator().manual_seed(2013)
    yy, xx = torch.meshgrid(
        torch.arange(192, dtype=torch.float64), torch.arange(288, dtype=torch.float64), indexing="ij"
    )
    base = 0.5 + 0.25 * torch.sin(xx / 17) * torch.cos(yy / 11) + 0.15 * (xx > 140).double() - 0.1 * (yy > 90).double()
    noise = torch.rand(3, 192, 288, generator=g, dtype=torch.float64) - 0.5
    img = (base[None] + torch.tensor([0.0, 0.03, -0.04], dtype=torch.float64)[:, None, None] + 0.08 * noise).clamp(0, 1)
    return (img * 255).round()[None] / 255


#: NIQE of `_synthetic()` with each pristine model (float64; recorded when the features were fixed)
SYNTHETIC_AUTHORS = 23.95887
SYNTHETIC_FITTED = 27.11852


def test_synthetic_known_answer():
    x = _synthetic()
    assert niqe(x).item() == pytest.approx(SYNTHETIC_AUTHORS, abs=1e-3)
    assert niqe(x, "fitted").item() == pytest.approx(SYNTHETIC_FITTED, abs=1e-3)


def test_features_are_niqe_not_brisque():
    """The MSCN scale feature is (β_l + β_r) / 2 and the pair features are β_l, β_r (not their squares)."""
    from semprior.metrics.niqe import _gray255, _mscn, _patches

    x = _synthetic()[0]
    f, _ = niqe_features(x)
    s, _ = _mscn(_gray255(x)[..., :192, :288])
    p = _patches(s, 96)
    a, bl, br = aggd_fit(p.reshape(p.shape[0], -1))
    assert torch.allclose(f[:, 0], a) and torch.allclose(f[:, 1], (bl + br) / 2)
    pair = (p * torch.roll(p, shifts=(0, 1), dims=(-2, -1))).reshape(p.shape[0], -1)
    _, pl, pr = aggd_fit(pair)
    assert torch.allclose(f[:, 4], pl) and torch.allclose(f[:, 5], pr)


def _matlab_half(x: torch.Tensor) -> torch.Tensor:
    """MATLAB imresize(x, 0.5, 'bicubic') written out from its contributions() (gather form), as the oracle."""

    def cubic(t):
        a = t.abs()
        return (1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1) + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((a > 1) & (a <= 2))

    def along(t, dim):
        n = t.shape[dim]
        i = torch.arange(1, n // 2 + 1, dtype=torch.float64)
        u = i / 0.5 + 0.5 * (1 - 1 / 0.5)
        idx = torch.floor(u - 4)[:, None] + torch.arange(10, dtype=torch.float64)[None]
        w = 0.5 * cubic(0.5 * (u[:, None] - idx))
        w = w / w.sum(1, keepdim=True)
        aux = torch.cat([torch.arange(1, n + 1), torch.arange(n, 0, -1)])
        idx = aux[(idx.long() - 1) % len(aux)] - 1
        t = t.movedim(dim, -1)
        return (t[..., idx] * w).sum(-1).movedim(-1, dim)

    return along(along(x, -2), -1)


def test_half_size_is_matlab_imresize():
    x = torch.rand(1, 1, 20, 14, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 255
    assert torch.allclose(_half_size(x), _matlab_half(x), atol=1e-9)


def test_model_choice():
    assert NIQE_MODELS[0] == "authors"
    a, f = authors_niqe_model(), fitted_niqe_model()
    assert torch.equal(niqe_model(None).mean, a.mean) and torch.equal(niqe_model("fitted").mean, f.mean)
    assert niqe_model(f) is f
    with pytest.raises(ValueError, match="unknown NIQE model 'matlab'"):
        niqe_model("matlab")


def test_eval_unpaired_niqe_model_flag(tmp_path, capsys):
    from semprior.cli.main import main
    from semprior.data.io import write_image

    write_image(tmp_path / "in" / "a.png", _synthetic()[0])
    for which, value in (("authors", SYNTHETIC_AUTHORS), ("fitted", SYNTHETIC_FITTED)):
        assert (
            main(
                [
                    "eval",
                    "--unpaired",
                    str(tmp_path / "in"),
                    "--model",
                    "identity",
                    "--niqe-model",
                    which,
                    "--out",
                    str(tmp_path / which),
                    "--no-progress",
                ]
            )
            == 0
        )
        capsys.readouterr()
        rows = [r for r in (tmp_path / which / "noref.md").read_text().splitlines() if r.startswith("| input ")]
        assert f"| {value:.3f} |" in rows[0], rows
