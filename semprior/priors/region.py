"""A weight-free, deterministic region prior: exposure-invariant colour/texture statistics + soft SLIC.

It lets every SEM-guided model and the semantic KL loss run fully offline, with a real signal
(region structure of the scene), without any pretrained checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from semprior.priors.base import PriorOutput, PriorSpec, SegPrior

__all__ = ["RegionPrior", "region_descriptors"]

#: descriptor channels per level before the cluster assignments
_DESC = ("chroma_rg", "chroma_yb", "log_intensity", "log_gradient", "pos_y", "pos_x", "std_log_intensity", "std_chroma")


def _pixel_descriptors(img: Tensor) -> Tensor:
    """Per-pixel, exposure-invariant descriptors ``(B, 6, H, W)``: chroma(2), log-intensity, gradient, y, x."""
    b, _, h, w = img.shape
    r, g, bl = img.clamp(min=0).unbind(1)
    inten = (r + g + bl) / 3
    # epsilon proportional to the image's mean intensity: scaling the image by a > 0 scales eps too,
    # so chroma, standardised log-intensity and log-gradients are invariant to global exposure.
    eps = 0.1 * inten.flatten(1).mean(1).view(b, 1, 1) + 1e-4
    den = 3 * (inten + eps)
    chroma_rg = (r - g) / den
    chroma_yb = (r + g - 2 * bl) / (2 * den)
    log_i = torch.log(inten + eps)
    mu = log_i.flatten(1).mean(1).view(b, 1, 1)
    sd = log_i.flatten(1).std(1, unbiased=False).view(b, 1, 1)
    log_i = (log_i - mu) / (sd + 1e-2)
    # central differences of the standardised log-intensity (replicate border)
    p = F.pad(log_i.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    gx = (p[:, 1:-1, 2:] - p[:, 1:-1, :-2]) / 2
    gy = (p[:, 2:, 1:-1] - p[:, :-2, 1:-1]) / 2
    grad = torch.sqrt(gx * gx + gy * gy + 1e-12)
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=img.device, dtype=img.dtype)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=img.device, dtype=img.dtype)
    pos_y = ys.view(1, h, 1).expand(b, h, w)
    pos_x = xs.view(1, 1, w).expand(b, h, w)
    return torch.stack([chroma_rg, chroma_yb, log_i, grad, pos_y, pos_x], dim=1)


def region_descriptors(img: Tensor, strides: tuple[int, ...]) -> list[Tensor]:
    """Pooled descriptors ``(B, 8, ceil(H/s), ceil(W/s))`` per stride (see
    [`RegionPrior`][semprior.priors.region.RegionPrior]).

    The image is average-pooled to the finest stride first, the per-pixel descriptors are computed
    there, and each coarser level pools the previous one (strides must each divide the next).

    Examples:
        >>> [d.shape[-2:] for d in region_descriptors(torch.rand(1, 3, 97, 131), (2, 4))]
        [torch.Size([49, 66]), torch.Size([25, 33])]
    """
    s0 = strides[0]
    x = img if s0 == 1 else F.avg_pool2d(img, s0, ceil_mode=True)
    d = _pixel_descriptors(x)
    # running means of the 6 descriptors and of the squares needed for the two local stds
    stack = torch.cat([d, d[:, 2:3] ** 2, d[:, 0:1] ** 2 + d[:, 1:2] ** 2], dim=1)
    out, prev = [], s0
    for s in strides:
        if s % prev:
            raise ValueError(f"each stride must divide the next, got strides {strides}")
        if s != prev:
            stack = F.avg_pool2d(stack, s // prev, ceil_mode=True)
            prev = s
        mean, msq = stack[:, :6], stack[:, 6:]
        std_l = torch.sqrt((msq[:, 0:1] - mean[:, 2:3] ** 2).clamp(min=0) + 1e-12)
        std_c = torch.sqrt((msq[:, 1:2] - mean[:, 0:1] ** 2 - mean[:, 1:2] ** 2).clamp(min=0) + 1e-12)
        out.append(torch.cat([mean, std_l, std_c], dim=1))
    return out


def _sq_dist(z: Tensor, c: Tensor) -> Tensor:
    """``||z_n - c_k||^2`` for z ``(B, D, N)`` and c ``(B, K, D)`` -> ``(B, K, N)``."""
    return ((z * z).sum(1, keepdim=True) - 2 * torch.einsum("bkd,bdn->bkn", c, z) + (c * c).sum(2, keepdim=True)).clamp(
        min=0
    )


class RegionPrior(SegPrior):
    """Weight-free prior: multi-scale colour/texture statistics and soft superpixel (SLIC-like) regions.

    **What signal it carries.** For each level (strides ``base_stride * 2**i``) the image is
    described by 8 pooled statistics plus ``K = grid[0] * grid[1]`` soft region memberships:

    - chroma ``(R-G)/3I'`` and ``(R+G-2B)/6I'`` (hue/saturation, brightness removed),
    - standardised log-intensity and its gradient magnitude (edges, relative brightness),
    - the normalised position ``(y, x)`` in ``[-1, 1]``,
    - the local standard deviations of log-intensity and chroma (texture) within each cell,
    - soft assignments to ``K`` regions found by a few iterations of soft k-means in the space
      (chroma, log-intensity, position), seeded on a regular ``grid`` like SLIC superpixels:
      region ``k`` stays anchored near its seed cell and follows colour/brightness boundaries,
      so the same scene gives corresponding regions under different exposures.

    ``I' = I + eps`` with ``eps`` proportional to the image mean, so the descriptors are
    invariant to a global exposure scaling (``img`` and ``0.2 * img`` give the same output up to
    clipping); this is what makes it useful on low-light inputs.

    ``logits`` are the region pseudo-logits ``-||z - c_k||^2 / temperature`` at the finest level
    (stride ``base_stride``), ``num_classes = K``; they let the semantic KL loss run offline.
    Everything is plain torch (deterministic; differentiable when called with ``grad=True``).

    Args:
        levels: number of feature levels.
        base_stride: stride of the finest level (1 or 2; each further level doubles it).
        grid: ``(rows, cols)`` of region seeds; ``K = rows * cols``.
        iterations: soft k-means iterations (at the coarsest level).
        temperature: softness of the assignments (smaller = harder).
        position_weight: weight of the position in the clustering distance (SLIC compactness).
        chroma_weight: weight of chroma in the clustering distance.

    Shape:
        - Input: ``(B, 3, H, W)`` in ``[0, 1]``
        - features[i]: ``(B, 8 + K, ceil(H / s_i), ceil(W / s_i))``, ``s_i = base_stride * 2**i``
        - logits: ``(B, K, ceil(H / base_stride), ceil(W / base_stride))``

    Examples:
        >>> prior = RegionPrior(levels=3)
        >>> prior.spec.channels, prior.spec.strides, prior.spec.num_classes
        ((24, 24, 24), (2, 4, 8), 16)
        >>> out = prior(torch.rand(1, 3, 97, 131))
        >>> [tuple(f.shape[-2:]) for f in out.features], tuple(out.logits.shape)
        ([(49, 66), (25, 33), (13, 17)], (1, 16, 49, 66))
    """

    def __init__(
        self,
        levels: int = 3,
        base_stride: int = 2,
        grid: tuple[int, int] = (4, 4),
        iterations: int = 3,
        temperature: float = 0.5,
        position_weight: float = 2.0,
        chroma_weight: float = 4.0,
    ) -> None:
        if not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive int, got {levels!r}")
        if base_stride not in (1, 2):
            raise ValueError(f"base_stride must be 1 or 2, got {base_stride!r}")
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"grid must be (rows, cols) with rows, cols >= 1, got {grid!r}")
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if position_weight < 0 or chroma_weight < 0:
            raise ValueError(
                f"weights must be >= 0, got position_weight={position_weight} chroma_weight={chroma_weight}"
            )
        k = int(grid[0]) * int(grid[1])
        strides = tuple(base_stride * 2**i for i in range(levels))
        super().__init__(PriorSpec("region", channels=(len(_DESC) + k,) * levels, strides=strides, num_classes=k))
        self.grid = (int(grid[0]), int(grid[1]))
        self.iterations = int(iterations)
        self.temperature = float(temperature)
        self.position_weight = float(position_weight)
        self.chroma_weight = float(chroma_weight)

    def _cluster_space(self, desc: Tensor) -> Tensor:
        """(chroma, log-intensity, position) with the distance weights applied: ``(B, 5, h, w)``."""
        cw, pw = self.chroma_weight, self.position_weight
        return torch.cat([desc[:, 0:2] * cw, desc[:, 2:3], desc[:, 4:6] * pw], dim=1)

    def _centres(self, z: Tensor) -> Tensor:
        """Soft k-means in the cluster space, seeded with the mean of each grid cell: ``(B, K, D)``."""
        c = rearrange(F.adaptive_avg_pool2d(z, self.grid), "b d gh gw -> b (gh gw) d")
        zf = rearrange(z, "b d h w -> b d (h w)")
        for _ in range(self.iterations):
            a = torch.softmax(-_sq_dist(zf, c) / self.temperature, dim=1)  # (B, K, N)
            c = torch.einsum("bkn,bdn->bkd", a, zf) / (a.sum(2, keepdim=True) + 1e-6)
        return c

    def _forward(self, img: Tensor) -> PriorOutput:
        descs = region_descriptors(img, self.spec.strides)
        centres = self._centres(self._cluster_space(descs[-1]))
        features, logits = [], None
        for i, d in enumerate(descs):
            h, w = d.shape[-2:]
            z = rearrange(self._cluster_space(d), "b d h w -> b d (h w)")
            lg = rearrange(-_sq_dist(z, centres) / self.temperature, "b k (h w) -> b k h w", h=h, w=w)
            if i == 0:
                logits = lg
            features.append(torch.cat([d, torch.softmax(lg, dim=1)], dim=1))
        return PriorOutput(features=features, logits=logits)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, grid={self.grid}, iterations={self.iterations}, temperature={self.temperature}"
