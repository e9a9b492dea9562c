"""NIQE, the no-reference "naturalness" score of Mittal, Soundararajan and Bovik (IEEE SPL 2013).

Lower is more natural. The algorithm follows the authors' MATLAB release (``computequality.m``,
``computefeature.m``, ``estimatemodelparam.m``):

1. gray levels ``0..255`` (``rgb2gray`` weights, rounded to whole levels as ``rgb2gray`` does for
   8-bit images), cropped to whole ``96 x 96`` patches;
2. at two scales (full, then half size by MATLAB's ``imresize``: bicubic ``a = -0.5``,
   antialiased, symmetric borders): MSCN coefficients ``(I - mu) / (sigma + 1)`` with a ``7 x 7``
   Gaussian window (sigma ``7/6``, replicate borders);
3. per patch (``96 / scale``) 18 features: an AGGD fit of the MSCN values (shape and
   ``(β_left + β_right) / 2``) and, for the four neighbour products (horizontal, vertical, both
   diagonals; circular shifts within the patch), AGGD shape, mean, ``β_left`` and ``β_right``
   (the scale parameters themselves; BRISQUE, not NIQE, uses their squares);
4. a multivariate Gaussian (mean, covariance) of the 36 features over the image's patches, and
   the distance to the pristine model's Gaussian:
   ``sqrt((mu_p - mu_d)ᵀ pinv((Σ_p + Σ_d) / 2) (mu_p - mu_d))``.

**Pristine models.** The default is the authors' (``niqe_pris_params.npz``: the LIVE release's
parameters as shipped by BasicSR, Apache-2.0), so scores compare with NIQE tables in papers: on
the five calibration images of IQA-PyTorch (``ResultsCalibra``) this implementation is within
0.6 % of the MATLAB release on four and 4.5 % on the fifth (``tests/metrics/test_niqe_published.py``).
``model="fitted"`` is semprior's own fit ([`fit_niqe_model`][semprior.metrics.niqe.fit_niqe_model]
on CBSD68, Kodak24 and McMaster, ``examples/fit_niqe.py``, stored in ``niqe_fitted_params.npz``):
the patches whose mean local sigma exceeds ``0.75 x`` the image's maximum (the authors' sharpness
selection). Patches whose features are not finite (flat patches) are dropped (the MATLAB code uses
``nanmean``/``nancov``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from semprior._checks import check_image

__all__ = [
    "NIQE_MODELS",
    "NIQEModel",
    "aggd_fit",
    "authors_niqe_model",
    "default_niqe_model",
    "fit_niqe_model",
    "fitted_niqe_model",
    "load_niqe_model",
    "niqe",
    "niqe_features",
    "niqe_model",
    "save_niqe_model",
]

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


def _cubic(x: Tensor) -> Tensor:
    """Keys' cubic kernel with ``a = -0.5`` (MATLAB ``imresize``'s ``cubic``)."""
    a = x.abs()
    return (1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1) + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((a > 1) & (a <= 2))


def _symmetric_pad(x: Tensor, dim: int, before: int, after: int) -> Tensor:
    """Mirror padding that repeats the edge sample (MATLAB's ``symmetric``: ``c b a | a b c``)."""
    n = x.shape[dim]
    idx = torch.cat([torch.arange(before - 1, -1, -1), torch.arange(n), torch.arange(n - 1, n - 1 - after, -1)])
    return x.index_select(dim, idx.to(x.device))


def _half_size(x: Tensor) -> Tensor:
    """MATLAB ``imresize(x, 0.5)`` (bicubic, antialiased, symmetric borders) of ``(1, 1, H, W)`` with even ``H, W``.

    At scale 1/2 the antialiased kernel has 8 taps at distances ``±0.25, ±0.75, ±1.25, ±1.75`` (in
    output pixels) and sums to one, so it is one strided convolution per axis.
    """
    k = 0.5 * _cubic(0.5 * (3.5 - torch.arange(8, dtype=x.dtype, device=x.device)))
    x = _symmetric_pad(_symmetric_pad(x, -2, 3, 4), -1, 3, 4)
    x = F.conv2d(x, k.view(1, 1, 8, 1), stride=(2, 1))
    return F.conv2d(x, k.view(1, 1, 1, 8), stride=(1, 2))


def _patches(x: Tensor, p: int) -> Tensor:
    """``(1, 1, H, W)`` with ``H, W`` multiples of ``p`` -> ``(P, p, p)`` in column-major block order."""
    t = x[0, 0].unfold(0, p, p).unfold(1, p, p)  # (nh, nw, p, p)
    return t.permute(1, 0, 2, 3).reshape(-1, p, p)


def _patch_features(s: Tensor) -> Tensor:
    """18 features per ``(P, p, p)`` patch of MSCN coefficients -> ``(P, 18)``."""
    flat = s.reshape(s.shape[0], -1)
    a, bl, br = aggd_fit(flat)
    feats = [a, (bl + br) / 2]  # NIQE's computefeature.m: the scale parameters themselves (BRISQUE squares them)
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        pair = (s * torch.roll(s, shifts=shift, dims=(-2, -1))).reshape(s.shape[0], -1)
        a, bl, br = aggd_fit(pair)
        mean = (br - bl) * torch.exp(_lgamma(2 / a) - _lgamma(1 / a))
        feats += [a, mean, bl, br]
    return torch.stack(feats, dim=-1)


def _gray255(img: Tensor) -> Tensor:
    """``(3, H, W)`` in ``[0, 1]`` -> ``(1, 1, H, W)`` float64 gray levels ``0..255`` (MATLAB ``rgb2gray`` of a uint8
    image: its weights, rounded to whole levels)."""
    w = torch.tensor([0.298936021293775, 0.587043074451121, 0.114020904255103], dtype=torch.float64, device=img.device)
    return (img.to(torch.float64) * 255 * w[:, None, None]).sum(0).round()[None, None]


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
        gray = _half_size(gray)
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
            raise ValueError(
                f"NIQEModel needs mean (36,) and cov (36, 36), got {tuple(self.mean.shape)}, {tuple(self.cov.shape)}"
            )


def _finite_rows(f: Tensor) -> Tensor:
    return f[torch.isfinite(f).all(-1)]


def fit_niqe_model(
    images: Iterable[Tensor], patch: int = PATCH, sharpness_threshold: float = SHARPNESS_THRESHOLD, source: str = ""
) -> NIQEModel:
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


#: names of the shipped pristine models; the first is the default
NIQE_MODELS = ("authors", "fitted")


def authors_niqe_model() -> NIQEModel:
    """The NIQE authors' pristine model (``modelparameters.mat`` of the LIVE release, 125 pristine photos).

    Read from ``niqe_pris_params.npz`` as shipped by BasicSR (Apache-2.0, XPixelGroup/BasicSR
    ``basicsr/metrics/niqe_pris_params.npz``): ``mu_pris_param`` and ``cov_pris_param``. With it,
    [`niqe`][semprior.metrics.niqe.niqe] gives the numbers papers print.
    """
    import numpy as np

    with np.load(Path(__file__).with_name("niqe_pris_params.npz")) as d:
        mean, cov = d["mu_pris_param"].reshape(36), d["cov_pris_param"]
    return NIQEModel(
        torch.from_numpy(mean.copy()),
        torch.from_numpy(cov.copy()),
        0,
        "NIQE authors' pristine model (LIVE, 125 photos; file from BasicSR, Apache-2.0)",
    )


#: the fitted pristine model's file, beside this module: written by ``examples/fit_niqe.py`` (do not edit; refit)
FITTED_FILE = "niqe_fitted_params.npz"


def save_niqe_model(model: NIQEModel, path: str | Path) -> Path:
    """Write ``model`` as an ``.npz`` file (``mean``, ``cov`` float64, ``patches``, ``source``), atomically."""
    import numpy as np

    from semprior._atomic import atomic_write

    path = Path(path)
    with atomic_write(path) as f:
        np.savez(
            f,
            mean=model.mean.detach().cpu().double().numpy(),
            cov=model.cov.detach().cpu().double().numpy(),
            patches=np.int64(model.patches),
            source=np.str_(model.source),
        )
    return path


def load_niqe_model(path: str | Path) -> NIQEModel:
    """A [`NIQEModel`][semprior.metrics.niqe.NIQEModel] from a file written by
    [`save_niqe_model`][semprior.metrics.niqe.save_niqe_model] (read with ``allow_pickle=False``)."""
    import numpy as np

    with np.load(Path(path), allow_pickle=False) as d:
        missing = sorted({"mean", "cov", "patches", "source"} - set(d.files))
        if missing:
            raise ValueError(f"{path} is not a NIQE model file (no {missing}); write it with save_niqe_model")
        mean, cov = torch.from_numpy(d["mean"].astype(np.float64)), torch.from_numpy(d["cov"].astype(np.float64))
        return NIQEModel(mean, cov, int(d["patches"]), str(d["source"]))


def fitted_niqe_model() -> NIQEModel:
    """The pristine model fitted by semprior on the clean photos it can reach (``niqe_fitted_params.npz``)."""
    return load_niqe_model(Path(__file__).with_name(FITTED_FILE))


def default_niqe_model() -> NIQEModel:
    """The default pristine model: the authors' ([`authors_niqe_model`][semprior.metrics.niqe.authors_niqe_model])."""
    return authors_niqe_model()


def niqe_model(model: NIQEModel | str | None = None) -> NIQEModel:
    """A [`NIQEModel`][semprior.metrics.niqe.NIQEModel] from a model, a name in `NIQE_MODELS` or ``None`` (the
    authors')."""
    if model is None or model == "authors":
        return authors_niqe_model()
    if model == "fitted":
        return fitted_niqe_model()
    if isinstance(model, NIQEModel):
        return model
    raise ValueError(f"unknown NIQE model {model!r}; use one of {list(NIQE_MODELS)} or a NIQEModel (fit_niqe_model)")


def niqe(img: Tensor, model: NIQEModel | str | None = None, patch: int = PATCH) -> Tensor:
    """NIQE of each image (lower = more natural), with the authors' pristine model by default.

    ``model``: ``None`` or ``"authors"`` (the published NIQE), ``"fitted"`` (semprior's own fit), or a
    [`NIQEModel`][semprior.metrics.niqe.NIQEModel].

    Shape:
        - img: `(B, 3, H, W)` in ``[0, 1]``, ``H, W >= 96`` -> `(B,)` float64

    Examples:
        >>> x = torch.rand(2, 3, 192, 200, generator=torch.Generator().manual_seed(0))
        >>> niqe(x).shape
        torch.Size([2])
    """
    check_image(img, "img", unit_range=True)
    model = niqe_model(model)
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
