"""Segmentation datasets: SegmentationFolder (name matching, label checks, seeded crops), LowLightSegmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from semprior.data import (
    LowLightSegmentation,
    SegmentationDataset,
    SegmentationFolder,
    SyntheticSegmentation,
    write_image,
)


def _cityscapes_like(root, n=3, h=20, w=24, bad_label=None):
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        d_img, d_mask = root / "leftImg8bit" / "train" / "aachen", root / "gtFine" / "train" / "aachen"
        d_img.mkdir(parents=True, exist_ok=True)
        d_mask.mkdir(parents=True, exist_ok=True)
        stem = f"aachen_{i:06d}_000019"
        write_image(d_img / f"{stem}_leftImg8bit.png", torch.rand(3, h, w, generator=g))
        labels = np.random.default_rng(i).integers(0, 3, (h, w)).astype(np.uint8)
        labels[0, :5] = 255
        if bad_label is not None:
            labels[1, 1] = bad_label
        Image.fromarray(labels).save(d_mask / f"{stem}_gtFine_labelTrainIds.png")
        Image.fromarray(labels).convert("RGB").save(
            d_mask / f"{stem}_gtFine_color.png"
        )  # not a label map: filtered out
    return root / "leftImg8bit" / "train", root / "gtFine" / "train"


def test_folder_matches_cityscapes_names_and_reads_labels(tmp_path):
    imgs, masks = _cityscapes_like(tmp_path)
    ds = SegmentationFolder(imgs, masks, num_classes=3, mask_glob="*_labelTrainIds.png", patch_size=16, seed=1)
    assert isinstance(ds, SegmentationDataset) and len(ds) == 3
    item = ds[0]
    assert item["image"].shape == (3, 16, 16) and item["mask"].shape == (16, 16) and item["mask"].dtype == torch.int64
    assert set(item["mask"].unique().tolist()) <= {0, 1, 2, 255}
    assert torch.equal(ds[0]["mask"], item["mask"])  # deterministic per (seed, epoch, index)
    ds.set_epoch(1)
    assert any(
        not torch.equal(
            ds[i]["image"],
            SegmentationFolder(imgs, masks, 3, mask_glob="*_labelTrainIds.png", patch_size=16, seed=1)[i]["image"],
        )
        for i in range(3)
    )
    whole = SegmentationFolder(imgs, masks, 3, mask_glob="*_labelTrainIds.png", flip=False)[2]
    ref = np.asarray(Image.open(masks / "aachen" / "aachen_000002_000019_gtFine_labelTrainIds.png"))
    assert torch.equal(whole["mask"], torch.from_numpy(ref.astype(np.int64)))


def test_folder_errors_name_the_problem(tmp_path):
    imgs, masks = _cityscapes_like(tmp_path / "a")
    with pytest.raises(ValueError, match="mode 'RGB'"):  # the colour previews are not label maps
        SegmentationFolder(imgs, masks, 3, mask_glob="*_color.png", strip=("_leftImg8bit", "_gtFine_color"))[0]
    with pytest.raises(FileNotFoundError, match="without a label map"):
        SegmentationFolder(imgs, masks, 3, mask_glob="*_instanceIds.png")
    imgs, masks = _cityscapes_like(tmp_path / "b", bad_label=7)
    with pytest.raises(ValueError, match=r"values \[7\] outside \[0, 3\)"):
        SegmentationFolder(imgs, masks, 3, mask_glob="*_labelTrainIds.png")[0]
    with pytest.raises(FileNotFoundError, match="not found"):
        SegmentationFolder(tmp_path / "nope", masks, 3)


def test_low_light_wrapper_keeps_masks_and_resumes_per_epoch():
    base = SyntheticSegmentation(3, size=16, num_classes=3)
    a, b = LowLightSegmentation(base, seed=4), LowLightSegmentation(base, seed=4)
    a.set_epoch(2)
    b.set_epoch(2)
    assert torch.equal(a[1]["image"], b[1]["image"]) and torch.equal(a[1]["mask"], base[1]["mask"])
    assert a.num_classes == 3 and a.ignore_index == 255
