"""A truncated or corrupt file in a dataset folder: an error naming the file, or with ``skip_corrupt=True``
one warning listing the skipped files while the rest is used."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from semprior.data.datasets import LOLv1, PairedFolder
from semprior.data.io import ImageReadError
from semprior.data.synthesis import SyntheticPairs


def _folder_pair(root, n=4, size=24, broken=()):
    """``root/low``, ``root/high`` with ``n`` pairs; ``broken`` = [(side, index, kind)] damaged files."""
    low, high = root / "low", root / "high"
    low.mkdir(parents=True)
    high.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        for d in (low, high):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(d / f"{i}.png")
    for side, i, kind in broken:
        f = (low if side == "low" else high) / f"{i}.png"
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 2] if kind == "truncated" else b"GIF89a not really" + data[40:])
    return low, high


def test_corrupt_file_error_names_the_file(tmp_path):
    low, high = _folder_pair(tmp_path, broken=[("low", 2, "truncated")])
    ds = PairedFolder(low, high)
    assert len(ds) == 4
    ds[0], ds[1], ds[3]  # the others load
    with pytest.raises(ImageReadError) as info:
        ds[2]
    msg = str(info.value)
    assert str(low / "2.png") in msg and "truncated" in msg and "skip_corrupt=True" in msg


def test_corrupt_file_stops_a_dataloader_with_its_name(tmp_path):
    low, high = _folder_pair(tmp_path, broken=[("high", 1, "garbage")])
    loader = torch.utils.data.DataLoader(PairedFolder(low, high), batch_size=2)
    with pytest.raises(ImageReadError, match=r"1\.png"):
        list(loader)


def test_skip_corrupt_warns_with_the_list_and_uses_the_rest(tmp_path):
    low, high = _folder_pair(tmp_path, n=5, broken=[("low", 1, "truncated"), ("high", 3, "garbage")])
    with pytest.warns(UserWarning, match="skipped 2 unreadable") as rec:
        ds = PairedFolder(low, high, skip_corrupt=True)
    msg = str(rec[0].message)
    assert str(low / "1.png") in msg and str(high / "3.png") in msg
    assert sorted(p.name for p in ds.skipped) == ["1.png", "3.png"]
    assert len(ds) == 3 and [ds[i]["name"] for i in range(3)] == ["0", "2", "4"]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["low"].shape == (3, 3, 24, 24)


def test_skip_corrupt_clean_folder_is_silent(tmp_path):
    low, high = _folder_pair(tmp_path, n=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = PairedFolder(low, high, skip_corrupt=True)
    assert len(ds) == 2 and ds.skipped == []


def test_skip_corrupt_everything_broken_is_an_error(tmp_path):
    low, high = _folder_pair(tmp_path, n=2, broken=[("low", 0, "truncated"), ("low", 1, "garbage")])
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="nothing is left"):
        PairedFolder(low, high, skip_corrupt=True)


def test_lol_layout_passes_skip_corrupt(tmp_path):
    _folder_pair(tmp_path / "eval15", n=3, broken=[("high", 0, "truncated")])
    with pytest.warns(UserWarning, match="0.png"):
        ds = LOLv1(tmp_path, "eval15", skip_corrupt=True)
    assert len(ds) == 2


def test_synthetic_pairs_from_a_folder(tmp_path):
    low, _ = _folder_pair(tmp_path, n=3, size=20, broken=[("low", 1, "garbage")])
    with pytest.raises(ImageReadError, match=r"1\.png"):
        SyntheticPairs(low, patch_size=16)
    with pytest.warns(UserWarning, match=r"1\.png"):
        ds = SyntheticPairs(low, patch_size=16, skip_corrupt=True)
    assert ds.names == ["0", "2"] and len(ds.skipped) == 1
    assert ds[0]["low"].shape == (3, 16, 16)
