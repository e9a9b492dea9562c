"""Inference on images of any size: pad to the model's multiple, crop back, tile with blending.

A model that needs its input height and width to be multiples of some number (an encoder that
downsamples three times needs 8; timm's HRNet needs 32) declares it as an integer attribute
``required_multiple`` (default 1). [`enhance_image`][semprior.engine.tiling.enhance_image] reflect-pads
each piece it runs to that multiple and crops the output back, so callers never see the padding.

Large images are split into overlapping square tiles; each tile's output is weighted by a
separable linear ramp over the overlap (weight 1 in the interior and at the image border) and
the weighted outputs are normalised by the summed weights, so seams blend smoothly. The tile
size comes from ``tile=`` or from a memory cap (``max_memory_mb=``) divided by the model's
inference cost per pixel (attribute ``inference_bytes_per_pixel`` or
[`DEFAULT_BYTES_PER_PIXEL`][semprior.engine.tiling.DEFAULT_BYTES_PER_PIXEL]).

A model whose result depends on the whole image (global histogram equalisation, CLAHE's grid
over the image) declares ``tileable = False``; [`enhance_image`][semprior.engine.tiling.enhance_image]
then always runs it on the whole image, ignoring ``tile``/``max_memory_mb``, so tiling never changes its result.

``precision`` chooses fp32 (the exact reference), bfloat16 or float16 autocast; ``"auto"`` (default)
uses bfloat16 only for a model that states its measured bfloat16 error, on a CPU with native
bfloat16 ([`semprior.engine.precision`][semprior.engine.precision]).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._checks import check_image
from semprior.engine.precision import autocast_for, resolve_precision

#: Conservative peak activation memory per input pixel when a model does not declare
#: ``inference_bytes_per_pixel``: Retinexformer measured ~3-3.8 KB/pixel on CPU (FACTS.md).
DEFAULT_BYTES_PER_PIXEL = 4096


def required_multiple(model: nn.Module) -> int:
    """The model's ``required_multiple`` attribute (default 1), validated."""
    m = getattr(model, "required_multiple", 1)
    if not isinstance(m, int) or isinstance(m, bool) or m < 1:
        raise ValueError(f"model.required_multiple must be a positive int, got {m!r}; set it on the model class")
    return m


def is_tileable(model: nn.Module) -> bool:
    """False when the model declares ``tileable = False`` (its output depends on the whole image).

    Examples:
        >>> from semprior.models.classical import HistogramEqualization, Gamma
        >>> is_tileable(Gamma()), is_tileable(HistogramEqualization())
        (True, False)
    """
    t = getattr(model, "tileable", True)
    if not isinstance(t, bool):
        raise ValueError(f"model.tileable must be True or False, got {t!r}; set it on the model class")
    return t


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad ``x`` at the bottom/right so H and W are multiples of ``multiple``.

    Uses reflection; a side too small to reflect (e.g. a 1-pixel image) is padded by replication.
    Returns the padded tensor and the original ``(H, W)`` to crop back to.

    Shape:
        - x: `(B, C, H, W)`
        - output: `(B, C, H', W')` with `H' = ceil(H / m) * m`, `W' = ceil(W / m) * m`

    Examples:
        >>> y, (h, w) = pad_to_multiple(torch.rand(1, 3, 5, 7), 4)
        >>> tuple(y.shape), (h, w)
        ((1, 3, 8, 8), (5, 7))
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    while ph > 0 or pw > 0:  # reflection pads at most size-1 per pass
        sh, sw = min(ph, x.shape[-2] - 1), min(pw, x.shape[-1] - 1)
        if sh <= 0 and ph > 0 or sw <= 0 and pw > 0:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
            break
        x = F.pad(x, (0, sw, 0, sh), mode="reflect")
        ph, pw = ph - sh, pw - sw
    return x, (h, w)


def _as_image(out: Any) -> Tensor:
    if isinstance(out, Tensor):
        return out
    enhanced = getattr(out, "enhanced", None)
    if enhanced is None and isinstance(out, dict):
        enhanced = out.get("enhanced")
    if not isinstance(enhanced, Tensor):
        raise TypeError(
            f"the model returned {type(out).__name__}; enhance_image needs a tensor or an output with an "
            "'enhanced' tensor (attribute or dict key); wrap the model so forward returns the image"
        )
    return enhanced


def _run_padded(model: nn.Module, x: Tensor, multiple: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    xp, (h, w) = pad_to_multiple(x.to(device, dtype), multiple)
    y = _as_image(model(xp))
    if y.shape[-2:] != xp.shape[-2:] or y.shape[0] != xp.shape[0]:
        raise ValueError(f"the model changed the image size: input {tuple(xp.shape)} -> output {tuple(y.shape)}")
    return y[..., :h, :w].to(x.device, x.dtype)


def tile_size_for_memory(max_memory_mb: float, bytes_per_pixel: float, multiple: int = 1) -> int:
    """Largest square tile side (a multiple of ``multiple``) whose activations fit the cap.

    Examples:
        >>> tile_size_for_memory(64, 4096, multiple=8)
        128
    """
    if not (math.isfinite(max_memory_mb) and max_memory_mb > 0):
        raise ValueError(f"max_memory_mb must be a finite number > 0, got {max_memory_mb}")
    if not (math.isfinite(bytes_per_pixel) and bytes_per_pixel > 0):
        raise ValueError(f"bytes_per_pixel must be a finite number > 0, got {bytes_per_pixel}")
    side = int(math.sqrt(max_memory_mb * 2**20 / bytes_per_pixel))
    side -= side % multiple
    if side < multiple:
        need = bytes_per_pixel * multiple * multiple / 2**20
        raise ValueError(
            f"max_memory_mb={max_memory_mb} is too small for even one {multiple}x{multiple} tile "
            f"(needs about {need:.1f} MB at {bytes_per_pixel:.0f} bytes/pixel); raise max_memory_mb"
        )
    return side


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile + 1, stride))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


def _ramp(length: int, overlap_before: int, overlap_after: int) -> Tensor:
    """1-D weight: linear ramp (never zero) over each overlapped side, 1 elsewhere."""
    r = torch.ones(length, dtype=torch.float64)
    if overlap_before > 0:
        r[:overlap_before] = torch.minimum(r[:overlap_before], (torch.arange(overlap_before) + 0.5) / overlap_before)
    if overlap_after > 0:
        tail = (torch.arange(overlap_after, 0, -1) - 0.5) / overlap_after
        r[length - overlap_after :] = torch.minimum(r[length - overlap_after :], tail)
    return r


def _axis_windows(size: int, tile: int, overlap: int) -> list[tuple[int, int, Tensor]]:
    starts = _starts(size, tile, tile - overlap)
    length = min(tile, size)
    out = []
    for i, s in enumerate(starts):
        before = starts[i - 1] + length - s if i > 0 else 0
        after = s + length - starts[i + 1] if i + 1 < len(starts) else 0
        out.append((s, length, _ramp(length, before, after)))
    return out


#: bytes per pixel of the image buffers `semprior enhance` holds beside the model's work (input,
#: output accumulator, blending weights, the 8-bit copy written)
IMAGE_BUFFER_BYTES_PER_PIXEL = 64
#: share of the memory left after the image buffers that the default bound gives the model
DEFAULT_MEMORY_FRACTION = 0.5
#: below this many MB for the model, an image is refused rather than cut into tiny tiles
MIN_AUTO_MEMORY_MB = 64


def default_memory_mb(pixels: int, available: int | None, *, name: str = "the image") -> float | None:
    """The memory cap (MB) used when neither ``tile`` nor ``max_memory_mb`` is given; ``None`` = unknown, no cap.

    Half of what is left once the image buffers (`IMAGE_BUFFER_BYTES_PER_PIXEL` per pixel) are
    counted. With this cap [`enhance_image`][semprior.engine.tiling.enhance_image] runs the whole image
    when it fits and tiles otherwise.

    Raises:
        ValueError: less than `MIN_AUTO_MEMORY_MB` would remain: one line naming ``--tile`` and
            ``--max-memory-mb``.

    Examples:
        >>> round(default_memory_mb(1000 * 1000, 8 * 2**30))  # 8 GiB free, a 1-megapixel image
        4065
    """
    if available is None:
        return None
    buffers = pixels * IMAGE_BUFFER_BYTES_PER_PIXEL
    budget = (available - buffers) * DEFAULT_MEMORY_FRACTION / 2**20
    if budget < MIN_AUTO_MEMORY_MB:
        raise ValueError(
            f"{name} ({pixels / 1e6:.1f} megapixels) needs about {buffers / 2**20:.0f} MB for its buffers and "
            f"{available / 2**20:.0f} MB are available; free memory, or choose the bound yourself with "
            "--max-memory-mb MB or --tile PIXELS"
        )
    return budget


def tiling_plan(
    model: nn.Module,
    *,
    multiple: int | None = None,
    tile: int | None = None,
    overlap: int = 32,
    max_memory_mb: float | None = None,
    bytes_per_pixel: float | None = None,
) -> tuple[int, int | None]:
    """Validate [`enhance_image`][semprior.engine.tiling.enhance_image]'s options for ``model``.

    Returns ``(multiple, tile)``.

    Needs no image, so a batch can refuse bad options before it reads its first file. ``tile``
    is ``None`` for whole-image runs: no tiling asked, or a global method (``tileable = False``).
    An explicit ``tile`` is rounded down to the multiple and must exceed ``overlap``.

    Examples:
        >>> tiling_plan(torch.nn.Identity(), multiple=8, tile=100, overlap=16)
        (8, 96)
    """
    m = required_multiple(model) if multiple is None else int(multiple)
    if m < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if tile is not None:
        given = int(tile)
        tile = given - given % m
        if tile < 1:
            raise ValueError(f"tile must be at least the model's multiple ({m}), got {given}")
        if overlap >= tile:
            raise ValueError(f"overlap ({overlap}) must be smaller than tile ({tile}); lower overlap or raise tile")
    elif max_memory_mb is not None:
        bpp = bytes_per_pixel or float(getattr(model, "inference_bytes_per_pixel", DEFAULT_BYTES_PER_PIXEL))
        tile = tile_size_for_memory(max_memory_mb, bpp, m)
    if not is_tileable(model):
        tile = None  # global method: only the whole image gives its result
    return m, tile


@torch.no_grad()
def enhance_image(
    model: nn.Module,
    img: Tensor,
    *,
    multiple: int | None = None,
    tile: int | None = None,
    overlap: int = 32,
    max_memory_mb: float | None = None,
    bytes_per_pixel: float | None = None,
    precision: str = "auto",
) -> Tensor:
    """Run an enhancement ``model`` on an image of any size.

    The model runs in eval mode under ``torch.no_grad()`` (its training flag is restored after)
    on the device and in the dtype of its first parameter; the output is assembled on the input's
    device in the input's dtype.

    Args:
        model: maps `(B, 3, h, w)` to `(B, 3, h, w)` (a tensor, or an output with an ``enhanced`` tensor).
        img: image batch in [0, 1].
        multiple: pad each piece to this multiple; default ``model.required_multiple`` (or 1).
        tile: tile side in pixels (rounded down to ``multiple``); ``None`` = no tiling unless
            ``max_memory_mb`` asks for it. A model with ``tileable = False`` (a global method)
            always runs on the whole image: tiling would change its result.
        overlap: pixels shared by neighbouring tiles and blended with linear ramps.
        max_memory_mb: cap on activation memory; picks the largest tile that fits (ignored when
            ``tile`` is given). The whole image runs in one piece if it fits.
        bytes_per_pixel: inference cost per pixel for the cap; default
            ``model.inference_bytes_per_pixel`` or
            [`DEFAULT_BYTES_PER_PIXEL`][semprior.engine.tiling.DEFAULT_BYTES_PER_PIXEL].
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``
            ([`resolve_precision`][semprior.engine.precision.resolve_precision]);
            ``"auto"`` stays fp32 for a model whose parameters are not float32.

    Shape:
        - img: `(B, 3, H, W)`, any H, W >= 1
        - output: `(B, 3, H, W)`

    Examples:
        >>> net = torch.nn.Conv2d(3, 3, 3, padding=1)
        >>> enhance_image(net, torch.rand(1, 3, 37, 50), multiple=8, tile=32, overlap=8).shape
        torch.Size([1, 3, 37, 50])
    """
    check_image(img, "img")
    m, tile = tiling_plan(
        model,
        multiple=multiple,
        tile=tile,
        overlap=overlap,
        max_memory_mb=max_memory_mb,
        bytes_per_pixel=bytes_per_pixel,
    )
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else img.device
    # run in the model's dtype (a float64 image through a float32 model), return in the image's
    dtype = param.dtype if param is not None and param.is_floating_point() else img.dtype
    if precision == "auto" and (dtype != torch.float32 or img.dtype == torch.float64):
        precision = "fp32"  # a cast model, or a float64 image (asking for precision): no autocast
    mode = resolve_precision(precision, model, device)
    was_training = model.training
    model.eval()
    try:
        with autocast_for(mode, device):
            return _enhance(model, img, m, tile, overlap, device, dtype)
    finally:
        model.train(was_training)


def _enhance(
    model: nn.Module, img: Tensor, m: int, tile: int | None, overlap: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    h, w = img.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return _run_padded(model, img, m, device, dtype)
    if overlap >= tile:  # a tile derived from the memory cap (explicit tiles are checked up front)
        raise ValueError(
            f"overlap ({overlap}) must be smaller than tile ({tile}); lower overlap or raise max_memory_mb"
        )
    acc = torch.promote_types(img.dtype, torch.float32)
    out = torch.zeros(img.shape, dtype=acc, device=img.device)
    weight = torch.zeros((1, 1, h, w), dtype=acc, device=img.device)
    for y0, th, ry in _axis_windows(h, tile, overlap):
        for x0, tw, rx in _axis_windows(w, tile, overlap):
            piece = _run_padded(model, img[..., y0 : y0 + th, x0 : x0 + tw], m, device, dtype)
            wgt = (ry[:, None] * rx[None, :]).to(img.device, acc)
            out[..., y0 : y0 + th, x0 : x0 + tw] += piece.to(acc) * wgt
            weight[..., y0 : y0 + th, x0 : x0 + tw] += wgt
    return (out / weight).to(img.dtype)


class TiledEnhancer(nn.Module):
    """Module form of [`enhance_image`][semprior.engine.tiling.enhance_image]: wraps a model with fixed tiling settings.

    Shape:
        - input: `(B, 3, H, W)`
        - output: `(B, 3, H, W)`

    Examples:
        >>> net = TiledEnhancer(torch.nn.Identity(), tile=16, overlap=4)
        >>> x = torch.rand(1, 3, 30, 20)
        >>> torch.allclose(net(x), x)
        True
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        multiple: int | None = None,
        tile: int | None = None,
        overlap: int = 32,
        max_memory_mb: float | None = None,
        bytes_per_pixel: float | None = None,
    ):
        super().__init__()
        self.model = model
        self.kwargs: dict[str, Any] = dict(
            multiple=multiple, tile=tile, overlap=overlap, max_memory_mb=max_memory_mb, bytes_per_pixel=bytes_per_pixel
        )

    def forward(self, img: Tensor) -> Tensor:
        return enhance_image(self.model, img, **self.kwargs)
