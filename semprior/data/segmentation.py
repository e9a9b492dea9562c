"""Segmentation data for auxiliary segmentation tasks (SLLEN's segmentation phase).

Items are dicts ``{"image": (3, H, W) float in [0, 1], "mask": (H, W) int64}``; mask values are
class indices in ``[0, num_classes)`` or ``ignore_index``. Three datasets follow
[`SegmentationDataset`][semprior.data.segmentation.SegmentationDataset]:

- [`SegmentationFolder`][semprior.data.segmentation.SegmentationFolder]: images and label-map PNGs
  matched by name (Cityscapes ``*_labelTrainIds.png``, ADE20K, COCO-Stuff, your own);
- [`SyntheticSegmentation`][semprior.data.segmentation.SyntheticSegmentation]: procedural shapes, for tests and demos;
- [`LowLightSegmentation`][semprior.data.segmentation.LowLightSegmentation]: darkens another one's images with
  [`synthesize_low_light`][semprior.data.synthesis.synthesize_low_light], deterministically per
  ``(seed, epoch, index)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from semprior.data.synthesis import LowLightConfig, synthesize_low_light
from semprior.data.transforms import paired_random_crop, paired_random_flip

__all__ = ["SegmentationDataset", "SegmentationFolder", "SyntheticSegmentation", "LowLightSegmentation"]


@runtime_checkable
class SegmentationDataset(Protocol):
    """Indexed ``{"image", "mask"}`` items plus ``num_classes`` and ``ignore_index``.

    ``image`` is `(3, H, W)` float in ``[0, 1]``; ``mask`` is `(H, W)` int64 with values in
    ``[0, num_classes)`` or ``ignore_index``. Wrap Cityscapes, ADE20K, ... to this shape (or use
    [`SegmentationFolder`][semprior.data.segmentation.SegmentationFolder]).
    """

    num_classes: int
    ignore_index: int

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Tensor]: ...


class SyntheticSegmentation(torch.utils.data.Dataset):
    """Procedural segmentation data: textured backgrounds (class 0) with rectangles and discs.

    Class ``k >= 1`` is drawn with a class-specific colour (plus per-image jitter and noise), so
    the classes are learnable. Deterministic per ``(seed, index)``. For tests and demos only.

    Shape:
        - item: ``{"image": (3, size, size), "mask": (size, size) int64}``

    Examples:
        >>> ds = SyntheticSegmentation(4, size=16, num_classes=3)
        >>> item = ds[0]
        >>> item["image"].shape, item["mask"].dtype, int(item["mask"].max()) < 3
        (torch.Size([3, 16, 16]), torch.int64, True)
    """

    def __init__(self, length: int, size: int = 64, num_classes: int = 4, shapes: int = 3, seed: int = 0) -> None:
        if length < 1 or size < 4 or num_classes < 2 or shapes < 1:
            raise ValueError(
                f"SyntheticSegmentation needs length >= 1, size >= 4, num_classes >= 2, shapes >= 1; "
                f"got {length}, {size}, {num_classes}, {shapes}"
            )
        self.length, self.size, self.num_classes, self.shapes, self.seed = length, size, num_classes, shapes, seed
        self.ignore_index = 255
        self.colors = torch.rand(num_classes, 3, generator=torch.Generator().manual_seed(seed + 7919))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for SyntheticSegmentation of length {self.length}")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        s = self.size
        yy, xx = torch.meshgrid(torch.linspace(0, 1, s), torch.linspace(0, 1, s), indexing="ij")
        mask = torch.zeros(s, s, dtype=torch.int64)
        for _ in range(self.shapes):
            k = int(torch.randint(1, self.num_classes, (1,), generator=g))
            cy, cx, r = (
                torch.rand(3, generator=g) * torch.tensor([1.0, 1.0, 0.3]) + torch.tensor([0, 0, 0.1])
            ).tolist()
            if k % 2:
                inside = ((yy - cy).abs() < r) & ((xx - cx).abs() < r * 0.7)
            else:
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            mask[inside] = k
        img = self.colors[mask].permute(2, 0, 1) * (0.8 + 0.4 * torch.rand(3, 1, 1, generator=g))
        img = img + 0.05 * torch.sin(20 * (xx + yy))[None] + 0.03 * torch.randn(3, s, s, generator=g)
        return {"image": img.clamp(0, 1), "mask": mask}


def _read_mask(path: Path) -> Tensor:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(
                f"label map {path} has mode {im.mode!r}; expected one channel of class indices "
                "(8/16-bit grey or palette PNG, e.g. Cityscapes *_labelTrainIds.png)"
            )
        return torch.from_numpy(np.asarray(im).astype(np.int64))


class SegmentationFolder(torch.utils.data.Dataset):
    """Images and label maps in two folders, matched by name; random crops and flips for training.

    Args:
        image_dir: photos (searched recursively, as Cityscapes' ``leftImg8bit/train/CITY/``).
        mask_dir: one-channel label PNGs (class index per pixel), searched recursively.
        num_classes: classes of the labels; other values must be ``ignore_index``.
        ignore_index: label excluded from the loss (Cityscapes train ids: 255).
        mask_glob: which files of ``mask_dir`` are label maps (``"*_labelTrainIds.png"`` for Cityscapes).
        strip: suffixes removed from file stems before matching (Cityscapes: ``_leftImg8bit`` and
            ``_gtFine_labelTrainIds``), so ``a_leftImg8bit.png`` meets ``a_gtFine_labelTrainIds.png``.
        patch_size: random square crop (``None`` = whole images, which must then share one size to batch).
        flip: random horizontal/vertical flips.
        seed: crops and flips of item ``i`` in epoch ``e`` are drawn from ``(seed, e, i)``.

    Labels are checked when read: a value outside ``[0, num_classes)`` that is not ``ignore_index``
    is an error naming the file.
    """

    def __init__(
        self,
        image_dir: str | Path,
        mask_dir: str | Path,
        num_classes: int,
        ignore_index: int = 255,
        mask_glob: str = "*.png",
        strip: tuple[str, ...] = ("_leftImg8bit", "_gtFine_labelTrainIds"),
        patch_size: int | None = None,
        flip: bool = True,
        seed: int = 0,
    ) -> None:
        from semprior.data.io import IMAGE_EXTENSIONS

        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        image_dir, mask_dir = Path(image_dir).expanduser(), Path(mask_dir).expanduser()
        for d in (image_dir, mask_dir):
            if not d.is_dir():
                raise FileNotFoundError(f"segmentation folder not found: {d}")

        def key(p: Path, root: Path) -> str:
            stem = p.stem
            for suffix in strip:
                stem = stem.removesuffix(suffix)
            return (p.parent.relative_to(root) / stem).as_posix()

        exts = {e.lower() for e in IMAGE_EXTENSIONS}
        images = {
            key(p, image_dir): p for p in sorted(image_dir.rglob("*")) if p.is_file() and p.suffix.lower() in exts
        }
        masks = {key(p, mask_dir): p for p in sorted(mask_dir.rglob(mask_glob)) if p.is_file()}
        lonely = sorted(set(images) - set(masks))
        if lonely or not images:
            raise FileNotFoundError(
                f"{len(lonely)} image(s) in {image_dir} without a label map matching {mask_glob!r} in {mask_dir} "
                f"(first: {lonely[:3]}); set mask_glob / strip so names match"
                if images
                else f"no images in {image_dir}"
            )
        self.pairs = [(images[k], masks[k]) for k in sorted(images)]
        self.num_classes, self.ignore_index = int(num_classes), int(ignore_index)
        self.patch_size, self.flip, self.seed, self.epoch = patch_size, flip, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        from semprior.data.datasets import load_rgb

        img_path, mask_path = self.pairs[index]
        img, mask = load_rgb(img_path), _read_mask(mask_path)
        if img.shape[-2:] != mask.shape:
            raise ValueError(
                f"{img_path.name} is {tuple(img.shape[-2:])} but its label map {mask_path.name} is {tuple(mask.shape)}"
            )
        bad = (mask != self.ignore_index) & ((mask < 0) | (mask >= self.num_classes))
        if bool(bad.any()):
            raise ValueError(
                f"label map {mask_path} has values {sorted(set(mask[bad].tolist()))[:5]} outside "
                f"[0, {self.num_classes}) that are not ignore_index={self.ignore_index}"
            )
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_033 + index)
        if self.patch_size is not None:
            img, mask = paired_random_crop([img, mask], self.patch_size, g)
        if self.flip:
            img, mask = paired_random_flip([img, mask], g)
        return {"image": img.contiguous(), "mask": mask.contiguous()}


class LowLightSegmentation(torch.utils.data.Dataset):
    """Another segmentation dataset with its images darkened by
    [`synthesize_low_light`][semprior.data.synthesis.synthesize_low_light].

    So a shared encoder sees dark inputs in both an enhancement and a segmentation task. The
    degradation of item ``i`` in epoch ``e`` is drawn from ``(seed, e, i)``; masks are unchanged.

    Examples:
        >>> ds = LowLightSegmentation(SyntheticSegmentation(2, size=16, num_classes=3))
        >>> bool(ds[0]["image"].mean() < SyntheticSegmentation(2, size=16, num_classes=3)[0]["image"].mean())
        True
    """

    def __init__(self, dataset: SegmentationDataset, config: LowLightConfig | None = None, seed: int = 0) -> None:
        self.dataset, self.config, self.seed, self.epoch = dataset, config or LowLightConfig(), seed, 0
        self.num_classes, self.ignore_index = dataset.num_classes, dataset.ignore_index

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = dict(self.dataset[index])
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_033 + index + 17)
        item["image"] = synthesize_low_light(item["image"][None], self.config, g)[0]
        return item
