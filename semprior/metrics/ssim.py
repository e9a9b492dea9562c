"""Structural similarity (Wang et al. 2004), MATLAB-style: Gaussian 11x11, sigma 1.5, 'valid' window."""

from __future__ import annotations

import functools

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


def _blur_valid(t: Tensor, taps: list[float], dim: int) -> Tensor:
    n = t.shape[dim] - len(taps) + 1
    out = t.narrow(dim, 0, n) * taps[0]
    for i in range(1, len(taps)):
        out.add_(t.narrow(dim, i, n), alpha=taps[i])  # in place: no temporaries, autograd-safe
    return out


def _blur(t: Tensor, taps: list[float]) -> Tensor:
    """Separable 'valid' Gaussian blur of the last two dimensions, columns first (the row pass then
    runs on the output rows only). The moment maps of a strip are stacked along a leading dimension
    and blurred by one call: 11 + 11 whole-tensor operations for all of them."""
    return _blur_valid(_blur_valid(t, taps, -2), taps, -1)


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

#: output rows per banded matrix product in the no-gradient path's column pass (each product reads
#: ``GEMM_ROWS + window_size - 1`` rows: short blocks waste few multiplications on the band's zeros)
GEMM_ROWS = 16


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
    """Mean SSIM over the 'valid' positions, computed over strips of output rows (see `_ssim_sums`)."""
    return _ssim_sums(x, y, data_range, window_size, sigma, k1, k2, target)[0]


def _ssim_sums(
    x: Tensor,
    y: Tensor,
    data_range: float,
    window_size: int,
    sigma: float,
    k1: float,
    k2: float,
    target: list[tuple[Tensor, Tensor, Tensor]] | None = None,
    sse: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Mean SSIM over the 'valid' positions, computed over strips of output rows (exact: each strip
    reads its rows plus the window's ``window_size - 1`` halo rows; the sum over strips is divided
    by the number of positions once; the sums run in float64 and so does the result). Differentiable;
    on a GPU the strips are just fewer, larger launches. The arithmetic runs in the wider of the two
    dtypes (a float32 prediction against a float64 target is converted strip by strip).

    ``target``: a list that caches the target's blurred statistics strip by strip (empty on the
    first call, which fills it; later calls with a prediction of the same shape read it), so that
    many predictions scored against one target blur its two moment maps once
    ([`ReferenceScorer`][semprior.metrics.scorer.ReferenceScorer]). ``None``: nothing is kept.

    ``sse``: also return the sum of squared differences of each image over all its pixels (PSNR's
    numerator, shape `(B,)`, float64), summed strip by strip while the strip is in the cache; else
    ``None``."""
    taps = gaussian_window(window_size, sigma, torch.float64).tolist()
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    b, c, h, w = x.shape
    m, n = h - window_size + 1, w - window_size + 1
    rows = max(1, STRIP_ELEMENTS // (b * c * w)) if x.device.type == "cpu" else m
    fast = not (torch.is_grad_enabled() and (x.requires_grad or y.requires_grad))
    dtype = torch.promote_types(x.dtype, y.dtype)
    total = x.new_zeros(b, dtype=torch.float64)
    sq = x.new_zeros(b, dtype=torch.float64) if sse else None
    for i, r0 in enumerate(range(0, m, rows)):
        r1 = min(r0 + rows, m) + window_size - 1
        xs, ys = x[..., r0:r1, :], y[..., r0:r1, :]
        if target is not None and i < len(target):
            stats = target[i]
        else:
            stats = _target_stats_mm(ys.to(dtype), taps, c1, c2) if fast else _target_stats(ys.to(dtype), taps, c1, c2)
            if target is not None:
                target.append(stats)
        if fast:
            ssim_sum = _ssim_sum_mm(xs, ys.to(dtype), stats, taps, c1, c2)
        else:
            ssim_map = _ssim_map(xs.to(dtype), ys.to(dtype), stats, taps, c1, c2)
            ssim_sum = ssim_map.flatten(1).sum(dim=1, dtype=torch.float64)
        total = total + ssim_sum
        if sq is not None:  # the rows this strip owns: its first `rows`, and the last strip the rest
            own = xs if r1 == h else xs[..., : r1 - r0 - window_size + 1, :]
            d = torch.sub(own.to(torch.float64), ys[..., : own.shape[-2], :].to(torch.float64))
            sq = sq + d.square_().flatten(1).sum(1)
    return total / (c * m * n), sq


def _target_stats(y: Tensor, taps: list[float], c1: float, c2: float) -> tuple[Tensor, Tensor, Tensor]:
    """The target's share of the SSIM map of a strip: blurred mean ``μ_y``, ``μ_y² + C1`` and
    ``σ_y² + C2`` (the terms the formula adds them to)."""
    mu_y, eyy = _blur(torch.stack((y, y * y)), taps).unbind(0)
    mu_y2c1 = mu_y.square() + c1
    return mu_y, mu_y2c1, eyy - mu_y2c1 + (c1 + c2)


def _ssim_map(
    x: Tensor, y: Tensor, target: tuple[Tensor, Tensor, Tensor], taps: list[float], c1: float, c2: float
) -> Tensor:
    """The SSIM map of a strip, differentiable. The separable 'valid' Gaussian blur is written as a sum
    of shifted slices (much faster than conv2d for float64 on CPU, exact, differentiable)."""
    mu_x, exx, exy = _blur(torch.stack((x, x * x, x * y)), taps).unbind(0)
    mu_y, mu_y2c1, syyc2 = target
    mu_x2 = mu_x.square()
    mu_xy = mu_x * mu_y
    return ((2 * mu_xy + c1) * (2 * (exy - mu_xy) + c2)) / ((mu_x2 + mu_y2c1) * (exx - mu_x2 + syyc2))


# The no-gradient path. A strip's moment maps live in one buffer laid out rows first, `(rows, maps,
# B*C, W)`, so that the column pass is a matrix product: a band matrix of the window's taps times
# the buffer seen as `(rows, maps*B*C*W)` (BLAS does the 11 multiply-adds of each output in
# registers, instead of 11 passes through memory); the row pass stays shifted slices. Blurred maps
# come out as `(rows, B*C, W')` views; what is cached or returned is the `(B, C, rows, W')` view of
# them, so the two paths share one cache format.


@functools.lru_cache(maxsize=16)
def _band(rows: int, taps: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """`(rows, rows + k - 1)` matrix whose row ``i`` holds the ``k`` taps from column ``i``: a 'valid'
    1-D correlation down ``rows + k - 1`` rows as one matrix product."""
    k = len(taps)
    band = torch.zeros(rows, rows + k - 1, dtype=dtype, device=device)
    t = torch.tensor(taps, dtype=dtype, device=device)
    for i in range(rows):
        band[i, i : i + k] = t
    return band


def _blur_mm(buf: Tensor, taps: list[float]) -> Tensor:
    """'valid' separable blur of a rows-first buffer `(H, ..., W)` -> `(H', ..., W')`: the columns by
    banded matrix products over blocks of `GEMM_ROWS` output rows, the rows by shifted slices."""
    k = len(taps)
    hs, w = buf.shape[0], buf.shape[-1]
    m = hs - k + 1
    flat = buf.reshape(hs, -1)
    cols = buf.new_empty((m, flat.shape[1]))
    for r0 in range(0, m, GEMM_ROWS):
        r1 = min(r0 + GEMM_ROWS, m)
        band = _band(r1 - r0, tuple(taps), buf.dtype, buf.device)
        torch.mm(band, flat[r0 : r1 + k - 1], out=cols[r0:r1])
    return _blur_valid(cols.view(m, *buf.shape[1:-1], w), taps, -1)


def _rows_first(t: Tensor) -> Tensor:
    """`(B, C, H, W)` -> `(H, B*C, W)` view."""
    return t.flatten(0, 1).transpose(0, 1)


def _images_first(t: Tensor, b: int) -> Tensor:
    """`(H, B*C, W)` -> `(B, C, H, W)` view (the inverse of `_rows_first`)."""
    return t.transpose(0, 1).unflatten(0, (b, -1))


def _target_stats_mm(y: Tensor, taps: list[float], c1: float, c2: float) -> tuple[Tensor, Tensor, Tensor]:
    """`_target_stats` without a gradient (the same terms), blurred by `_blur_mm`."""
    yr = _rows_first(y)
    buf = torch.empty((yr.shape[0], 2, *yr.shape[1:]), dtype=y.dtype, device=y.device)
    buf[:, 0].copy_(yr)
    torch.mul(buf[:, 0], buf[:, 0], out=buf[:, 1])
    mu_y, eyy = _blur_mm(buf, taps).unbind(1)
    mu_y2c1 = mu_y.square().add_(c1)
    syyc2 = eyy.sub_(mu_y2c1).add_(c1 + c2)
    return _images_first(mu_y, y.shape[0]), _images_first(mu_y2c1, y.shape[0]), _images_first(syyc2, y.shape[0])


def _ssim_sum_mm(
    x: Tensor, y: Tensor, target: tuple[Tensor, Tensor, Tensor], taps: list[float], c1: float, c2: float
) -> Tensor:
    """Sum of the SSIM map of a strip over its positions per image, `(B,)` float64, without a gradient:
    the `_ssim_map` formula in place in one buffer of the three blurred moment maps (no temporaries:
    each is a fresh allocation and one more pass through memory). ``x`` may be narrower than ``y``
    (a float32 prediction): it is converted as it is copied into the buffer, before any product.
    Equal to `_ssim_map` to float64 rounding (tested)."""
    xr, yr = _rows_first(x), _rows_first(y)
    buf = torch.empty((xr.shape[0], 3, *xr.shape[1:]), dtype=y.dtype, device=y.device)
    buf[:, 0].copy_(xr)
    torch.mul(buf[:, 0], buf[:, 0], out=buf[:, 1])
    torch.mul(buf[:, 0], yr, out=buf[:, 2])
    mu_x, exx, exy = _blur_mm(buf, taps).unbind(1)
    mu_y, mu_y2c1, syyc2 = (_rows_first(t) for t in target)
    mu_x2 = mu_x.square()
    mu_xy = mu_x.mul_(mu_y)
    num = exy.sub_(mu_xy).mul_(2).add_(c2).mul_(mu_xy.mul_(2).add_(c1))
    den = exx.sub_(mu_x2).add_(syyc2).mul_(mu_x2.add_(mu_y2c1))
    return _images_first(num.div_(den), x.shape[0]).sum(dim=(1, 2, 3), dtype=torch.float64)


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


def _ssim_sse_prepared(a: Tensor, b: Tensor, data_range: float, target: list | None = None) -> tuple[Tensor, Tensor]:
    """`_ssim_prepared` and the sum of squared differences of each image (for PSNR) in one pass over
    the strips; ``a`` may stay float32 (the prepared prediction), it is widened strip by strip."""
    ssim_val, sse = _ssim_sums(a, b.double(), data_range, 11, 1.5, 0.01, 0.03, target, sse=True)
    assert sse is not None
    return ssim_val, sse
