"""Physics-based low-light synthesis from clean photos.

The pipeline, per image (every random draw comes from one ``torch.Generator``, so a seeded
generator reproduces the same batch bit for bit):

1. **darken**, one of two models chosen per image:

   * *exposure*: linearise (inverse sRGB), multiply by an exposure scale ``s`` drawn
     log-uniformly from ``config.exposure``;
   * *tone curve*: in display space apply a random monotone darkening curve
     ``T(x) = s * x ** g`` with ``g`` from ``config.tone_gamma`` and ``s`` from
     ``config.exposure``, optionally bent by a random monotone piecewise-linear wiggle
     (``config.tone_wiggle``), then linearise. LOL's real pairs behave more like such a global
     display-space tone curve than like a linear-light exposure scale; ``config.tone_prob``
     is the share of images darkened this way.

2. **colour cast**: per-channel gains in linear light, ``1 + U(-c, c)`` with ``c = config.color_cast``,
   normalised to a mean gain of one (a white-balance error, not a brightness change);
3. **Poisson-Gaussian noise** in linear light: ``y = a * Poisson(x / a) + N(0, b^2)`` with the
   shot-noise gain ``a`` and the read-noise sigma ``b`` drawn log-uniformly from their ranges
   (``0`` turns a term off);
4. **re-gamma** back to display space with the sRGB curve (or a plain power ``1/gamma`` when
   ``config.encode_gamma`` is set, a camera-like encoding);
5. **quantise** to ``config.bits`` bits (``0`` keeps floats).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb
from torch import Tensor

from semprior._checks import check_image

__all__ = ["LowLightConfig", "synthesize_low_light", "LowLightSynthesis", "SyntheticPairs"]

Range = tuple[float, float]


def _check_range(name: str, r: Range, lo: float, hi: float, *, positive: bool = False) -> None:
    if not (isinstance(r, (tuple, list)) and len(r) == 2):
        raise ValueError(f"LowLightConfig.{name} must be a (min, max) pair, got {r!r}")
    a, b = float(r[0]), float(r[1])
    if not (lo <= a <= b <= hi):
        raise ValueError(f"LowLightConfig.{name} must satisfy {lo} <= min <= max <= {hi}, got {r!r}")
    if positive and a <= 0:
        raise ValueError(f"LowLightConfig.{name} must be > 0, got {r!r}")


@dataclass(frozen=True)
class LowLightConfig:
    """Parameters of [`synthesize_low_light`][semprior.data.synthesis.synthesize_low_light] (all ranges are
    ``(min, max)``, drawn per image).

    Attributes:
        exposure: darkening factor ``s``, log-uniform. Exposure model: linear-light scale;
            tone-curve model: display-space scale of the curve.
        tone_prob: probability that an image is darkened by the display-space tone curve
            instead of the linear-light exposure scale (``0`` = pure exposure model,
            ``1`` = pure tone-curve model).
        tone_gamma: exponent ``g`` of the display-space curve ``s * x ** g`` (``g > 1`` crushes
            shadows more than highlights, like LOL's pairs).
        tone_wiggle: strength in ``[0, 1)`` of a random monotone piecewise-linear bend mixed into
            the curve (``0`` = pure power curve).
        color_cast: half-width ``c`` of the per-channel linear-light gains ``1 + U(-c, c)``.
        shot_noise: Poisson gain ``a`` (variance ``a * x`` in linear light), log-uniform; ``(0, 0)`` = off.
        read_noise: Gaussian read-noise sigma ``b`` in linear light, log-uniform; ``(0, 0)`` = off.
        encode_gamma: ``None`` re-encodes with sRGB; a float ``gamma`` uses ``x ** (1 / gamma)``.
        bits: quantisation bit depth of the output (``0`` = no quantisation).

    Examples:
        >>> LowLightConfig(exposure=(0.05, 0.2)).exposure
        (0.05, 0.2)
    """

    exposure: Range = (0.04, 0.35)
    tone_prob: float = 0.5
    tone_gamma: Range = (1.2, 2.2)
    tone_wiggle: float = 0.3
    color_cast: float = 0.08
    shot_noise: Range = (1e-4, 3e-3)
    read_noise: Range = (5e-4, 5e-3)
    encode_gamma: float | None = None
    bits: int = 8

    def __post_init__(self) -> None:
        for name in ("exposure", "tone_gamma", "shot_noise", "read_noise"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        _check_range("exposure", self.exposure, 0.0, 1.0, positive=True)
        _check_range("tone_gamma", self.tone_gamma, 0.1, 10.0, positive=True)
        _check_range("shot_noise", self.shot_noise, 0.0, 1.0)
        _check_range("read_noise", self.read_noise, 0.0, 1.0)
        if not 0.0 <= self.tone_prob <= 1.0:
            raise ValueError(f"LowLightConfig.tone_prob must be in [0, 1], got {self.tone_prob}")
        if not 0.0 <= self.tone_wiggle < 1.0:
            raise ValueError(f"LowLightConfig.tone_wiggle must be in [0, 1), got {self.tone_wiggle}")
        if not 0.0 <= self.color_cast < 1.0:
            raise ValueError(f"LowLightConfig.color_cast must be in [0, 1), got {self.color_cast}")
        if self.encode_gamma is not None and not self.encode_gamma > 0:
            raise ValueError(f"LowLightConfig.encode_gamma must be None (sRGB) or > 0, got {self.encode_gamma}")
        if not (isinstance(self.bits, int) and 0 <= self.bits <= 16):
            raise ValueError(f"LowLightConfig.bits must be an int in [0, 16] (0 = no quantisation), got {self.bits!r}")


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator | None, device) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def _log_uniform(n: int, r: Range, gen: torch.Generator | None, device) -> Tensor:
    """Log-uniform in ``[lo, hi]``; a range starting at 0 gives 0 when ``hi == 0`` else uses ``hi/100`` as floor."""
    lo, hi = r
    u = torch.rand(n, generator=gen, device=device)  # always draw: keeps the stream aligned
    if hi == 0.0:
        return torch.zeros(n, device=device)
    lo = lo if lo > 0 else hi / 100.0
    return torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u)


def _monotone_wiggle(x: Tensor, knots: Tensor) -> Tensor:
    """Piecewise-linear monotone map of ``[0, 1]`` through ``(i / K, knots[:, i])``; ``knots`` is ``(B, K + 1)``."""
    b, k = x.shape[0], knots.shape[1] - 1
    pos = x.clamp(0, 1) * k
    idx = pos.floor().clamp(max=k - 1).long()
    frac = pos - idx
    flat = idx.reshape(b, -1)
    lo = torch.gather(knots, 1, flat).view_as(x)
    hi = torch.gather(knots, 1, flat + 1).view_as(x)
    return lo + (hi - lo) * frac


def synthesize_low_light(
    img: Tensor,
    config: LowLightConfig | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Turn clean ``[0, 1]`` sRGB photos into realistic low-light versions (see module docstring).

    Args:
        img: clean images.
        config: synthesis parameters; ``LowLightConfig()`` when ``None``.
        generator: source of all randomness; must live on ``img.device``.

    Returns:
        The low-light images, quantised to ``config.bits`` bits, in ``[0, 1]``.

    Shape:
        - img: `(B, 3, H, W)`
        - output: `(B, 3, H, W)`

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> low = synthesize_low_light(torch.rand(2, 3, 16, 16), generator=g)
        >>> low.shape, bool(low.max() <= 1)
        (torch.Size([2, 3, 16, 16]), True)
    """
    check_image(img, "img")
    cfg = config or LowLightConfig()
    if generator is not None and generator.device.type != img.device.type:
        raise ValueError(
            f"generator is on {generator.device} but img is on {img.device}; "
            f"create it with torch.Generator(device={str(img.device)!r})"
        )
    if float(img.min()) < 0.0 or float(img.max()) > 1.0:
        raise ValueError("img must be in [0, 1]; clamp it with img.clamp(0, 1) or divide 8-bit data by 255")
    b, dev, dt = img.shape[0], img.device, img.dtype
    gen = generator
    x = img.detach().to(torch.float32)

    # 1. darken: both models drawn for every image (keeps the random stream independent of the choice)
    use_tone = torch.rand(b, generator=gen, device=dev) < cfg.tone_prob
    scale = _log_uniform(b, cfg.exposure, gen, dev)
    gamma = _uniform(b, *cfg.tone_gamma, gen, dev)
    k = 8
    steps = torch.rand(b, k, generator=gen, device=dev) + 0.05
    knots = torch.cat([torch.zeros(b, 1, device=dev), steps.cumsum(1) / steps.sum(1, keepdim=True)], dim=1)

    sv = scale.view(b, 1, 1, 1)
    lin_exposure = rgb_to_linear_rgb(x) * sv
    bent = (1 - cfg.tone_wiggle) * x + cfg.tone_wiggle * _monotone_wiggle(x, knots) if cfg.tone_wiggle > 0 else x
    disp_tone = sv * bent.clamp(0, 1) ** gamma.view(b, 1, 1, 1)
    lin_tone = rgb_to_linear_rgb(disp_tone)
    lin = torch.where(use_tone.view(b, 1, 1, 1), lin_tone, lin_exposure)

    # 2. colour cast (white-balance error, mean gain 1)
    gains = 1 + cfg.color_cast * (2 * torch.rand(b, 3, generator=gen, device=dev) - 1)
    gains = gains / gains.mean(dim=1, keepdim=True)
    lin = (lin * gains.view(b, 3, 1, 1)).clamp(0, 1)

    # 3. Poisson-Gaussian noise in linear light
    a = _log_uniform(b, cfg.shot_noise, gen, dev).view(b, 1, 1, 1)
    sigma = _log_uniform(b, cfg.read_noise, gen, dev).view(b, 1, 1, 1)
    safe_a = torch.where(a > 0, a, torch.ones_like(a))
    shot = torch.poisson(lin / safe_a, generator=gen) * safe_a
    lin = torch.where(a > 0, shot, lin)
    lin = lin + sigma * torch.randn(lin.shape, generator=gen, device=dev)
    lin = lin.clamp(0, 1)

    # 4. re-gamma
    out = linear_rgb_to_rgb(lin) if cfg.encode_gamma is None else lin ** (1.0 / cfg.encode_gamma)
    out = out.clamp(0, 1)

    # 5. quantise
    if cfg.bits:
        levels = float(2**cfg.bits - 1)
        out = torch.round(out * levels) / levels
    return out.to(dt)


class LowLightSynthesis(torch.nn.Module):
    """Module form of [`synthesize_low_light`][semprior.data.synthesis.synthesize_low_light] (no parameters).

    Shape:
        - input: `(B, 3, H, W)`
        - output: `(B, 3, H, W)`

    Examples:
        >>> m = LowLightSynthesis(LowLightConfig(tone_prob=1.0))
        >>> m(torch.rand(1, 3, 8, 8), generator=torch.Generator().manual_seed(1)).shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(self, config: LowLightConfig | None = None) -> None:
        super().__init__()
        self.config = config or LowLightConfig()

    def forward(self, img: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return synthesize_low_light(img, self.config, generator)


class SyntheticPairs(torch.utils.data.Dataset):
    """Low/normal-light pairs synthesised on the fly from clean photos.

    Item ``i`` is deterministic given ``(seed, epoch, i)``: random crop + flips of clean image
    ``i % len(images)``, then [`synthesize_low_light`][semprior.data.synthesis.synthesize_low_light]. Call
    [`set_epoch`][semprior.data.synthesis.SyntheticPairs.set_epoch] each epoch to draw new crops and degradations (the
    trainer does); a validation split keeps ``epoch = 0``.

    Args:
        images: a folder of clean photos (png/jpg/bmp/tif, read with
            [`semprior.data.io.read_image`][semprior.data.io.read_image]), or a sequence / dict of ``(3, H, W)`` tensors
            in ``[0, 1]`` (e.g.
            [`semprior.data.samples.default_clean_images`][semprior.data.samples.default_clean_images]).
        patch_size: crop size; ``None`` keeps whole images (then batch only same-size images).
        config: the synthesis parameters.
        length: items per epoch; defaults to the number of images.
        seed: base seed.
        flip: random horizontal/vertical flips.
        skip_corrupt: for a folder, skip unreadable files with one warning listing them
            (``self.skipped``) instead of raising [`ImageReadError`][semprior.data.io.ImageReadError].

    Items are dicts ``{"low": (3, P, P), "high": (3, P, P), "name": str}``.

    Examples:
        >>> ds = SyntheticPairs([torch.rand(3, 32, 32)], patch_size=16, length=4)
        >>> item = ds[0]
        >>> item["low"].shape, item["high"].shape, len(ds)
        (torch.Size([3, 16, 16]), torch.Size([3, 16, 16]), 4)
    """

    def __init__(
        self,
        images: str | os.PathLike | Sequence[Tensor] | Mapping[str, Tensor],
        patch_size: int | None = 128,
        config: LowLightConfig | None = None,
        length: int | None = None,
        seed: int = 0,
        flip: bool = True,
        skip_corrupt: bool = False,
    ) -> None:
        from pathlib import Path

        from semprior.data.transforms import PairedAugment

        self.skipped: list[Path] = []
        if isinstance(images, (str, os.PathLike)):
            from semprior.data.datasets import find_unreadable, list_images, load_rgb, warn_skipped

            files = list_images(Path(images))
            if not files:
                raise FileNotFoundError(f"no images (png/jpg/bmp/tif) found in {images}")
            if skip_corrupt:
                bad = find_unreadable(files)
                warn_skipped(bad, str(images))
                self.skipped = sorted(bad)
                files = [f for f in files if f not in bad]
                if not files:
                    raise ValueError(f"no readable images in {images}")
            self.names = [f.stem for f in files]
            self.images = [load_rgb(f) for f in files]
        elif isinstance(images, Mapping):
            self.names, self.images = list(images), list(images.values())
        else:
            self.images = list(images)
            self.names = [f"img{i}" for i in range(len(self.images))]
        if not self.images:
            raise ValueError("SyntheticPairs needs at least one clean image")
        for name, im in zip(self.names, self.images):
            if not (isinstance(im, Tensor) and im.dim() == 3 and im.shape[0] == 3 and im.is_floating_point()):
                raise ValueError(
                    f"clean image {name!r} must be a float (3, H, W) tensor, got {getattr(im, 'shape', im)}"
                )
            if patch_size is not None and min(im.shape[-2:]) < patch_size:
                raise ValueError(
                    f"clean image {name!r} is {tuple(im.shape[-2:])}, smaller than patch_size={patch_size}; "
                    "lower patch_size or drop the image"
                )
        self.patch_size = patch_size
        self.config = config or LowLightConfig()
        self.length = len(self.images) if length is None else int(length)
        if self.length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.seed = int(seed)
        self.epoch = 0
        self.augment = PairedAugment(patch_size, flip)

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of epoch ``epoch`` (crops, flips, degradations)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for SyntheticPairs of length {self.length}")
        k = index % len(self.images)
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_003 + index)
        (high,) = self.augment([self.images[k]], gen)
        low = synthesize_low_light(high.unsqueeze(0), self.config, gen)[0]
        return {"low": low, "high": high, "name": f"{self.names[k]}_{index}"}
