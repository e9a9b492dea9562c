"""NIQE, the no-reference "naturalness" score of Mittal, Soundararajan and Bovik (IEEE SPL 2013).

Lower is more natural. The algorithm follows the authors' MATLAB release (``computequality.m``,
``computefeature.m``, ``estimatemodelparam.m``):

1. gray levels in ``[0, 255]`` (``rgb2gray`` weights), cropped to whole ``96 x 96`` patches;
2. at two scales (full, then half size by bicubic resampling with antialiasing): MSCN
   coefficients ``(I - mu) / (sigma + 1)`` with a ``7 x 7`` Gaussian window (sigma ``7/6``,
   replicate borders);
3. per patch (``96 / scale``) 18 features: an AGGD fit of the MSCN values (shape,
   ``(left² + right²) / 2``) and, for the four neighbour products (horizontal, vertical, both
   diagonals; circular shifts within the patch), AGGD shape, mean, left and right variance;
4. a multivariate Gaussian (mean, covariance) of the 36 features over the image's patches, and
   the distance to the pristine model's Gaussian:
   ``sqrt((mu_p - mu_d)ᵀ pinv((Σ_p + Σ_d) / 2) (mu_p - mu_d))``.

The pristine model is fitted with [`fit_niqe_model`][semprior.metrics.niqe.fit_niqe_model] on clean photos, keeping the patches
whose mean local sigma exceeds ``0.75 x`` the image's maximum (the authors' sharpness
selection). **The shipped model** (`semprior.metrics.niqe_params`) is fitted on the clean
photos the project can reach (CBSD68, Kodak24, McMaster; see ``examples/fit_niqe.py``), not on
the authors' 125 images, so scores are comparable between methods scored here, not with NIQE
numbers printed in papers. Patches whose features are not finite (flat patches) are dropped
(the MATLAB code uses ``nanmean``/``nancov``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from semprior._checks import check_image

__all__ = ["NIQEModel", "aggd_fit", "default_niqe_model", "fit_niqe_model", "niqe", "niqe_features"]

PATCH = 96
SHARPNESS_THRESHOLD = 0.75
_GAM = torch.arange(200, 10001, dtype=torch.float64) / 1000  # 0.2:0.001:10 as the MATLAB code


def _lgamma(x: Tensor) -> Tensor:
    return torch.lgamma(x)


_R_AGGD = torch.exp(2 * _lgamma(2 / _GAM) - _lgamma(1 / _GAM) - _lgamma(3 / _GAM))


def aggd_fit(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Asymmetric generalised Gaussian fit by moment matching, per row: ``(shape, left scale, right scale)``.

    Shape:
        - x: `(P, N)` samples per row -> three `(P,)` tensors

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> alpha, _, _ = aggd_fit(torch.randn(2, 200_000, generator=g, dtype=torch.float64))
        >>> [round(a, 1) for a in alpha.tolist()]   # a Gaussian has shape 2
        [2.0, 2.0]
    """
    x = x.to(torch.float64)
    neg, pos = x < 0, x > 0
    left = ((x.square() * neg).sum(-1) / neg.sum(-1)).sqrt()
    right = ((x.square() * pos).sum(-1) / pos.sum(-1)).sqrt()
    gh = left / right
    rhat = x.abs().mean(-1).square() / x.square().mean(-1)
    rnorm = rhat * (gh**3 + 1) * (gh + 1) / (gh.square() + 1).square()
    idx = (_R_AGGD.to(x.device)[None, :] - rnorm[:, None]).square().argmin(-1)
    alpha = _GAM.to(x.device)[idx]
    scale = torch.exp(0.5 * (_lgamma(1 / alpha) - _lgamma(3 / alpha)))
    return alpha, left * scale, right * scale


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> Tensor:
    r = torch.arange(7, dtype=dtype, device=device) - 3
    g = torch.exp(-r.square() / (2 * (7 / 6) ** 2))
    w = g[:, None] * g[None, :]
    return (w / w.sum())[None, None]


def _mscn(gray: Tensor) -> tuple[Tensor, Tensor]:
    w = _gaussian_window(gray.dtype, gray.device)
    pad = F.pad(gray, (3, 3, 3, 3), mode="replicate")
    mu = F.conv2d(pad, w)
    sigma = (F.conv2d(pad.square(), w) - mu.square()).abs().sqrt()
    return (gray - mu) / (sigma + 1), sigma


def _patches(x: Tensor, p: int) -> Tensor:
    """``(1, 1, H, W)`` with ``H, W`` multiples of ``p`` -> ``(P, p, p)`` in column-major block order."""
    t = x[0, 0].unfold(0, p, p).unfold(1, p, p)  # (nh, nw, p, p)
    return t.permute(1, 0, 2, 3).reshape(-1, p, p)


def _patch_features(s: Tensor) -> Tensor:
    """18 features per ``(P, p, p)`` patch of MSCN coefficients -> ``(P, 18)``."""
    flat = s.reshape(s.shape[0], -1)
    a, bl, br = aggd_fit(flat)
    feats = [a, (bl.square() + br.square()) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        pair = (s * torch.roll(s, shifts=shift, dims=(-2, -1))).reshape(s.shape[0], -1)
        a, bl, br = aggd_fit(pair)
        mean = (br - bl) * torch.exp(_lgamma(2 / a) - _lgamma(1 / a))
        feats += [a, mean, bl.square(), br.square()]
    return torch.stack(feats, dim=-1)


def _gray255(img: Tensor) -> Tensor:
    """``(3, H, W)`` in ``[0, 1]`` -> ``(1, 1, H, W)`` float64 gray in ``[0, 255]`` (MATLAB rgb2gray weights)."""
    w = torch.tensor([0.298936021293775, 0.587043074451121, 0.114020904255103], dtype=torch.float64, device=img.device)
    return (img.to(torch.float64) * 255 * w[:, None, None]).sum(0)[None, None]


def niqe_features(img: Tensor, patch: int = PATCH) -> tuple[Tensor, Tensor]:
    """Per-patch NIQE features and sharpness of one image.

    Shape:
        - img: `(3, H, W)` in ``[0, 1]`` with ``H, W >= patch``
        - output: features `(P, 36)` (float64), sharpness `(P,)` (mean local sigma per patch)
    """
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"niqe_features takes one (3, H, W) image, got shape {tuple(img.shape)}")
    h, w = (img.shape[-2] // patch) * patch, (img.shape[-1] // patch) * patch
    if h == 0 or w == 0:
        raise ValueError(f"NIQE needs images of at least {patch}x{patch} pixels, got {tuple(img.shape[-2:])}")
    gray = _gray255(img)[..., :h, :w]
    feats, sharp = [], None
    for scale in (1, 2):
        s, sigma = _mscn(gray)
        feats.append(_patch_features(_patches(s, patch // scale)))
        if scale == 1:
            sharp = _patches(sigma, patch).mean(dim=(-2, -1))
        gray = F.interpolate(gray, scale_factor=0.5, mode="bicubic", align_corners=False, antialias=True)
    return torch.cat(feats, dim=-1), sharp  # type: ignore[return-value]


@dataclass(frozen=True)
class NIQEModel:
    """A multivariate Gaussian of pristine NIQE features: ``mean (36,)``, ``cov (36, 36)``, float64."""

    mean: Tensor
    cov: Tensor
    patches: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        if self.mean.shape != (36,) or self.cov.shape != (36, 36):
            raise ValueError(f"NIQEModel needs mean (36,) and cov (36, 36), got {tuple(self.mean.shape)}, "
                             f"{tuple(self.cov.shape)}")


def _finite_rows(f: Tensor) -> Tensor:
    return f[torch.isfinite(f).all(-1)]


def fit_niqe_model(images: Iterable[Tensor], patch: int = PATCH, sharpness_threshold: float = SHARPNESS_THRESHOLD,
                   source: str = "") -> NIQEModel:
    """Fit the pristine Gaussian from clean ``(3, H, W)`` photos in ``[0, 1]`` (sharp patches only)."""
    rows = []
    for img in images:
        f, sharp = niqe_features(img, patch)
        rows.append(f[sharp > sharpness_threshold * sharp.max()])
    if not rows:
        raise ValueError("fit_niqe_model needs at least one image")
    feats = _finite_rows(torch.cat(rows))
    if feats.shape[0] < 37:
        raise ValueError(f"only {feats.shape[0]} usable patches; give more (or larger) clean photos")
    return NIQEModel(feats.mean(0), torch.cov(feats.T), int(feats.shape[0]), source)


def default_niqe_model() -> NIQEModel:
    """The shipped pristine model (`semprior.metrics.niqe_params`)."""
    from semprior.metrics import niqe_params as p

    return NIQEModel(torch.tensor(p.MEAN, dtype=torch.float64), torch.tensor(p.COV, dtype=torch.float64),
                     p.PATCHES, p.SOURCE)


def niqe(img: Tensor, model: NIQEModel | None = None, patch: int = PATCH) -> Tensor:
    """NIQE of each image (lower = more natural), with the shipped pristine model by default.

    Shape:
        - img: `(B, 3, H, W)` in ``[0, 1]``, ``H, W >= 96`` -> `(B,)` float64

    Examples:
        >>> x = torch.rand(2, 3, 192, 200, generator=torch.Generator().manual_seed(0))
        >>> niqe(x).shape
        torch.Size([2])
    """
    check_image(img, "img", unit_range=True)
    model = model or default_niqe_model()
    out = []
    for x in img:
        f = _finite_rows(niqe_features(x, patch)[0])
        if f.shape[0] < 2:
            out.append(torch.tensor(math.nan, dtype=torch.float64))
            continue
        d = model.mean.to(f.device) - f.mean(0)
        cov = (model.cov.to(f.device) + torch.cov(f.T)) / 2
        out.append(torch.sqrt(d @ torch.linalg.pinv(cov) @ d))
    return torch.stack(out)
