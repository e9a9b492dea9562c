"""Structural similarity (Wang et al. 2004), MATLAB-style: Gaussian 11x11, sigma 1.5, 'valid' window."""

from __future__ import annotations

import torch
from torch import Tensor

from semprior._checks import check_image, check_same_shape
from semprior.metrics.protocol import MetricProtocol, prepare_pair

__all__ = ["ssim", "structural_similarity", "gaussian_window"]


def gaussian_window(window_size: int, sigma: float, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """Normalised 1-D Gaussian of odd length ``window_size`` (MATLAB ``fspecial('gaussian')`` row).

    Examples:
        >>> gaussian_window(11, 1.5).sum().item()
        1.0
    """
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd integer, got {window_size}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    r = (window_size - 1) / 2
    t = torch.arange(window_size, dtype=torch.float64, device=device) - r
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def _blur_valid(t: Tensor, g: Tensor, dim: int) -> Tensor:
    n = t.shape[dim] - g.numel() + 1
    taps = g.tolist()
    out = t.narrow(dim, 0, n) * taps[0]
    for i in range(1, len(taps)):
        out.add_(t.narrow(dim, i, n), alpha=taps[i])  # in place: no temporaries, autograd-safe
    return out


def _blur(t: Tensor, g: Tensor) -> Tensor:
    """Separable 'valid' Gaussian blur, columns first (the row pass then runs on the output rows only).

    One map at a time: stacking the maps first costs a copy of all of them (a third of the time)."""
    return _blur_valid(_blur_valid(t, g, -2), g, -1)


def structural_similarity(
    x: Tensor,
    y: Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    r"""Differentiable mean SSIM per image, averaged over channels and 'valid' window positions.

    Local statistics come from a separable Gaussian window applied without padding (MATLAB
    ``filter2(..., 'valid')``), population (not sample) covariances, and
    $C_1 = (k_1 R)^2$, $C_2 = (k_2 R)^2$. This matches
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=R, channel_axis=...)``, which also averages
    the per-channel SSIM for colour images.

    Shape:
        - Input: `(B, C, H, W)` twice, ``H, W >= window_size``
        - Output: `(B,)`

    Examples:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> structural_similarity(x, x).tolist()
        [1.0, 1.0]
    """
    check_image(x, "input", channels=None)
    check_image(y, "target", channels=None)
    check_same_shape(x, y)
    if min(x.shape[-2:]) < window_size:
        raise ValueError(
            f"SSIM needs images at least {window_size}x{window_size} (the window size), got "
            f"{tuple(x.shape[-2:])}; pass a smaller odd window_size or use larger images"
        )
    return _ssim_valid(x, y, data_range, window_size, sigma, k1, k2).to(x.dtype)


#: elements of one input strip per moment map; a strip's five moment maps and blur outputs stay in
#: the CPU cache (the whole-image version streams ~2 GB through memory for one 600x400 RGB pair)
STRIP_ELEMENTS = 65536


def _ssim_valid(
    x: Tensor,
    y: Tensor,
    data_range: float,
    window_size: int,
    sigma: float,
    k1: float,
    k2: float,
    target: list[tuple[Tensor, Tensor, Tensor]] | None = None,
) -> Tensor:
    """Mean SSIM over the 'valid' positions, computed over strips of output rows (exact: each strip
    reads its rows plus the window's ``window_size - 1`` halo rows; the sum over strips is divided
    by the number of positions once; the sums run in float64 and so does the result). Differentiable;
    on a GPU the strips are just fewer, larger launches.

    ``target``: a list that caches the target's blurred statistics strip by strip (empty on the
    first call, which fills it; later calls with a prediction of the same shape read it), so that
    many predictions scored against one target blur its two moment maps once
    ([`ReferenceScorer`][semprior.metrics.scorer.ReferenceScorer]). ``None``: nothing is kept."""
    g = gaussian_window(window_size, sigma, x.dtype, x.device)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    b, c, h, w = x.shape
    m, n = h - window_size + 1, w - window_size + 1
    rows = max(1, STRIP_ELEMENTS // (b * c * w)) if x.device.type == "cpu" else m
    total = x.new_zeros(b, dtype=torch.float64)
    for i, r0 in enumerate(range(0, m, rows)):
        r1 = min(r0 + rows, m) + window_size - 1
        xs, ys = x[..., r0:r1, :], y[..., r0:r1, :]
        if target is not None and i < len(target):
            stats = target[i]
        else:
            stats = _target_stats(ys, g)
            if target is not None:
                target.append(stats)
        part = _ssim_map(xs, ys, stats, g, c1, c2).flatten(1).sum(dim=1, dtype=torch.float64)
        total = total + part
    return total / (c * m * n)


def _target_stats(y: Tensor, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The target's share of the SSIM map of a strip: blurred mean, its square and the variance."""
    mu_y, eyy = (_blur(t, g) for t in (y, y * y))
    mu_y2 = mu_y.square()
    return mu_y, mu_y2, eyy - mu_y2


def _ssim_map(x: Tensor, y: Tensor, target: tuple[Tensor, Tensor, Tensor], g: Tensor, c1: float, c2: float) -> Tensor:
    # separable 'valid' Gaussian blur of the prediction's three local-moment maps at once, written
    # as a sum of shifted slices (much faster than conv2d for float64 on CPU, exact, differentiable);
    # columns first: the row pass then runs on the strip's output rows only, not on its halo
    mu_x, exx, exy = (_blur(t, g) for t in (x, x * x, x * y))
    mu_y, mu_y2, syy = target
    mu_x2 = mu_x.square()
    sxx = exx - mu_x2
    sxy = exy - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x2 + mu_y2 + c1) * (sxx + syy + c2))


def ssim(x: Tensor, y: Tensor, protocol: MetricProtocol | None = None) -> Tensor:
    """Per-image SSIM under a [`MetricProtocol`][semprior.metrics.protocol.MetricProtocol] (Gaussian 11x11, sigma 1.5,
    per-channel mean for RGB).

    Computed in float64 after the protocol's preparation (GT-mean, quantisation, colour space,
    crop). Print ``protocol`` beside reported numbers.

    Shape:
        - Input: `(B, 3, H, W)` twice
        - Output: `(B,)`

    Examples:
        >>> x = torch.rand(1, 3, 32, 32)
        >>> ssim(x, x).item()
        1.0
    """
    protocol = MetricProtocol() if protocol is None else protocol
    a, b = prepare_pair(x, y, protocol)
    _check_ssim_size(a)
    # inputs were validated by prepare_pair
    return _ssim_prepared(a.double(), b.double(), protocol.data_range).to(x.dtype)


def _check_ssim_size(a: Tensor) -> None:
    if min(a.shape[-2:]) < 11:
        raise ValueError(
            f"SSIM needs images at least 11x11 after border crop, got {tuple(a.shape[-2:])}; "
            "use larger images or a smaller MetricProtocol.crop_border"
        )


def _ssim_prepared(a: Tensor, b: Tensor, data_range: float, target: list | None = None) -> Tensor:
    """The metric's SSIM of two prepared images (behind `ssim` and `ReferenceScorer`), in float64.

    float64 throughout: in float32, ``E[x²] − μ²`` cancels on flat bright regions and the mean
    SSIM moves by up to 3e-4 (``tests/metrics/test_metrics.py``)."""
    return _ssim_valid(a.double(), b.double(), data_range, 11, 1.5, 0.01, 0.03, target)
