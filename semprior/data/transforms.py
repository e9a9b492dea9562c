"""Paired random crop / flip, applied identically to a low image and its reference.

Works on single images ``(C, H, W)`` (dataset side) and on batches ``(B, C, H, W)`` (the
trainer's progressive patch-size schedule crops whole batches with
[`batch_random_crop`][semprior.data.transforms.batch_random_crop]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["paired_random_crop", "paired_random_flip", "PairedAugment", "batch_random_crop", "batch_view"]


def _hw(tensors: Sequence[Tensor]) -> tuple[int, int]:
    if not tensors:
        raise ValueError("need at least one tensor to crop")
    h, w = tensors[0].shape[-2:]
    for t in tensors[1:]:
        if t.shape[-2:] != (h, w):
            raise ValueError(
                f"paired tensors must share H and W, got {tuple(tensors[0].shape)} and {tuple(t.shape)}; "
                "resize or crop them to the same size first"
            )
    return int(h), int(w)


def paired_random_crop(tensors: Sequence[Tensor], size: int, generator: torch.Generator | None = None) -> list[Tensor]:
    """Crop the same random ``size x size`` window out of every tensor.

    Shape:
        - each tensor: `(..., H, W)` -> `(..., size, size)`

    Examples:
        >>> a, b = paired_random_crop([torch.rand(3, 10, 12), torch.rand(3, 10, 12)], 8)
        >>> a.shape
        torch.Size([3, 8, 8])
    """
    h, w = _hw(tensors)
    if size < 1:
        raise ValueError(f"crop size must be >= 1, got {size}")
    if h < size or w < size:
        raise ValueError(
            f"image of {h}x{w} is smaller than the crop size {size}; use a smaller patch size or larger images"
        )
    top = int(torch.randint(0, h - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - size + 1, (1,), generator=generator))
    return [t[..., top : top + size, left : left + size] for t in tensors]


def paired_random_flip(tensors: Sequence[Tensor], generator: torch.Generator | None = None) -> list[Tensor]:
    """Flip every tensor horizontally and/or vertically (each with probability 1/2), identically.

    Shape:
        - each tensor: `(..., H, W)` -> same

    Examples:
        >>> [t.shape for t in paired_random_flip([torch.rand(3, 4, 5)])]
        [torch.Size([3, 4, 5])]
    """
    _hw(tensors)
    flips = torch.rand(2, generator=generator) < 0.5
    dims = [d for d, f in zip((-1, -2), flips.tolist()) if f]
    return [t.flip(dims) if dims else t for t in tensors]


class PairedAugment:
    """Random crop (when ``patch_size`` is set) then random flips, same for all tensors.

    Examples:
        >>> aug = PairedAugment(patch_size=4)
        >>> low, high = aug([torch.rand(3, 9, 9), torch.rand(3, 9, 9)], torch.Generator().manual_seed(0))
        >>> low.shape
        torch.Size([3, 4, 4])
    """

    def __init__(self, patch_size: int | None = None, flip: bool = True) -> None:
        self.patch_size = patch_size
        self.flip = flip

    def __call__(self, tensors: Sequence[Tensor], generator: torch.Generator | None = None) -> list[Tensor]:
        out = list(tensors)
        if self.patch_size is not None:
            out = paired_random_crop(out, self.patch_size, generator)
        if self.flip:
            out = paired_random_flip(out, generator)
        return [t.contiguous() for t in out]

    def __repr__(self) -> str:
        return f"PairedAugment(patch_size={self.patch_size}, flip={self.flip})"


def _leaves(batch: Any) -> list[Tensor]:
    """Every ``(B, C, H, W)`` tensor of a batch (tensor, tuple/list or dict), in order."""
    leaves: list[Tensor] = []

    def collect(x: Any) -> None:
        if isinstance(x, Tensor):
            if x.dim() == 4:
                leaves.append(x)
        elif isinstance(x, Mapping):
            for v in x.values():
                collect(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                collect(v)

    collect(batch)
    if not leaves:
        raise ValueError("the batch holds no (B, C, H, W) tensor to crop or resize")
    return leaves


def _rebuild(batch: Any, leaves: list[Tensor], new: list[Tensor]) -> Any:
    """``batch`` with each tensor of ``leaves`` replaced by its counterpart in ``new``."""
    by_id = {id(t): n for t, n in zip(leaves, new)}

    def rebuild(x: Any) -> Any:
        if isinstance(x, Tensor):
            return by_id.get(id(x), x) if x.dim() == 4 else x
        if isinstance(x, Mapping):
            return {k: rebuild(v) for k, v in x.items()}
        if isinstance(x, tuple):
            return tuple(rebuild(v) for v in x)
        if isinstance(x, list):
            return [rebuild(v) for v in x]
        return x

    return rebuild(batch)


def batch_random_crop(batch: Any, size: int, generator: torch.Generator | None = None) -> Any:
    """Crop every ``(B, C, H, W)`` tensor of a batch (tensor, tuple/list or dict) to the same window.

    Tensors that are not 4-D (names, scalars) pass through. Images smaller than ``size`` are an error.

    Examples:
        >>> batch = {"low": torch.rand(2, 3, 8, 8), "high": torch.rand(2, 3, 8, 8), "name": ["a", "b"]}
        >>> out = batch_random_crop(batch, 4)
        >>> out["low"].shape, out["name"]
        (torch.Size([2, 3, 4, 4]), ['a', 'b'])
    """
    leaves = _leaves(batch)
    h, w = _hw(leaves)
    if h == size and w == size:
        return batch
    return _rebuild(batch, leaves, paired_random_crop(leaves, size, generator))


def batch_view(
    batch: Any, patch: int, scale: float = 1.0, generator: torch.Generator | None = None, multiple: int = 1
) -> Any:
    """One training view of a batch: resize every ``(B, C, H, W)`` tensor by ``scale``, then crop.

    ``scale < 1`` resizes with antialiased bilinear interpolation (the same for the low image and
    its reference); ``patch > 0`` then takes the same random ``patch x patch`` window of every
    tensor ([`batch_random_crop`][semprior.data.transforms.batch_random_crop]); ``patch == 0`` keeps
    the whole frame, trimmed at the bottom and right to a multiple of ``multiple`` (a model's
    ``required_multiple``). With ``scale == 1`` and ``patch > 0`` this is exactly ``batch_random_crop``.

    Examples:
        >>> b = {"low": torch.rand(2, 3, 400, 600), "high": torch.rand(2, 3, 400, 600)}
        >>> batch_view(b, 0, 0.5, multiple=8)["low"].shape
        torch.Size([2, 3, 200, 296])
    """
    if scale != 1.0:
        leaves = _leaves(batch)
        h, w = _hw(leaves)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        resized = [
            torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(
                0, 1
            )
            for t in leaves
        ]
        batch = _rebuild(batch, leaves, resized)
    if patch > 0:
        return batch_random_crop(batch, patch, generator)
    leaves = _leaves(batch)
    h, w = _hw(leaves)
    th, tw = h - h % multiple, w - w % multiple
    if th < 1 or tw < 1:
        raise ValueError(
            f"a {h}x{w} frame is smaller than the model's required multiple {multiple}; use a larger scale"
        )
    if (th, tw) == (h, w):
        return batch
    return _rebuild(batch, leaves, [t[..., :th, :tw] for t in leaves])
