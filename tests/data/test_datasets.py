import pytest
import torch

from semprior.data import LOLv1, LOLv2, PairedFolder, SyntheticPairs, batch_random_crop, paired_random_crop
from semprior.data.io import write_image


def _img(seed, h=12, w=16):
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


def _write(folder, names, h=12, w=16):
    for i, n in enumerate(names):
        write_image(folder / n, _img(i, h, w))


def test_paired_folder_matches_by_stem(tmp_path):
    _write(tmp_path / "low", ["a.png", "b.png"])
    _write(tmp_path / "high", ["b.png", "a.png"])
    ds = PairedFolder(tmp_path / "low", tmp_path / "high")
    assert len(ds) == 2 and [ds[i]["name"] for i in range(2)] == ["a", "b"]
    item = ds[0]
    assert item["low"].shape == (3, 12, 16) and item["low"].dtype == torch.float32
    torch.testing.assert_close(item["high"], (_img(1) * 255).round() / 255, atol=1e-6, rtol=0)


def test_unmatched_files_are_named(tmp_path):
    _write(tmp_path / "low", ["a.png", "b.png", "extra_low.png"])
    _write(tmp_path / "high", ["a.png", "b.png", "extra_high.png"])
    with pytest.raises(ValueError, match=r"extra_low\.png.*extra_high\.png.*rename or remove"):
        PairedFolder(tmp_path / "low", tmp_path / "high")


def test_missing_folder_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        PairedFolder(tmp_path / "nope", tmp_path / "high")
    (tmp_path / "low").mkdir()
    _write(tmp_path / "high", ["a.png"])
    with pytest.raises(FileNotFoundError, match="no images"):
        PairedFolder(tmp_path / "low", tmp_path / "high")


def test_size_mismatch_is_an_error(tmp_path):
    _write(tmp_path / "low", ["a.png"], 12, 16)
    _write(tmp_path / "high", ["a.png"], 12, 14)
    with pytest.raises(ValueError, match="differs in size"):
        PairedFolder(tmp_path / "low", tmp_path / "high")[0]


def test_key_regex_many_to_one_sid_style(tmp_path):
    _write(tmp_path / "short", ["10003_00_0.1s.png", "10003_01_0.04s.png", "10006_00_0.1s.png"])
    _write(tmp_path / "long", ["10003_00_10s.png", "10006_00_10s.png"])
    ds = PairedFolder(tmp_path / "short", tmp_path / "long", key=r"^(\d+)_")
    assert [p[1].name for p in ds.pairs] == ["10003_00_10s.png", "10003_00_10s.png", "10006_00_10s.png"]
    with pytest.raises(ValueError, match="capture group"):
        PairedFolder(tmp_path / "short", tmp_path / "long", key=r"^\d+_")


def test_random_crop_flip_is_paired_and_seeded(tmp_path):
    _write(tmp_path / "low", ["a.png"])
    _write(tmp_path / "high", ["a.png"])
    ds = PairedFolder(tmp_path / "low", tmp_path / "high", patch_size=8, flip=True)
    a = ds[0]
    assert a["low"].shape == (3, 8, 8)
    full = PairedFolder(tmp_path / "low", tmp_path / "high")[0]
    # the same window/flip was applied to both: the pair's pixel relation is preserved
    windows = [full["low"][:, i : i + 8, j : j + 8] for i in range(5) for j in range(9)]
    cands = [w.flip(d) if d else w for w in windows for d in ([], [-1], [-2], [-1, -2])]
    idx = [k for k, c in enumerate(cands) if torch.equal(c, a["low"])]
    assert idx
    assert torch.equal(ds[0]["low"], a["low"])


def test_lol_layouts(tmp_path):
    for split in ("our485", "eval15"):
        _write(tmp_path / "v1" / split / "low", ["1.png"])
        _write(tmp_path / "v1" / split / "high", ["1.png"])
    assert len(LOLv1(tmp_path / "v1", "train")) == 1 and len(LOLv1(tmp_path / "v1", "eval15")) == 1
    _write(tmp_path / "v2" / "Real_captured" / "Test" / "Low", ["low00001.png", "low00002.png"])
    _write(tmp_path / "v2" / "Real_captured" / "Test" / "Normal", ["normal00001.png", "normal00002.png"])
    assert [p[1].name for p in LOLv2(tmp_path / "v2", "real", "test").pairs] == ["normal00001.png", "normal00002.png"]
    with pytest.raises(FileNotFoundError, match="Synthetic"):
        LOLv2(tmp_path / "v2", "synthetic", "train")
    with pytest.raises(ValueError, match="split"):
        LOLv1(tmp_path / "v1", "val")


def test_synthetic_pairs_from_folder(tmp_path):
    _write(tmp_path / "clean", ["x.png", "y.jpg"], 20, 24)
    ds = SyntheticPairs(tmp_path / "clean", patch_size=16, length=4)
    assert len(ds.images) == 2 and ds[1]["low"].shape == (3, 16, 16)
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["low"].shape == (2, 3, 16, 16)


def test_batch_crop_and_errors():
    b = {"low": torch.rand(2, 3, 10, 10), "high": torch.rand(2, 3, 10, 10), "name": ["a", "b"]}
    out = batch_random_crop(b, 6, torch.Generator().manual_seed(0))
    assert out["low"].shape == (2, 3, 6, 6) and out["name"] == ["a", "b"]
    with pytest.raises(ValueError, match="smaller than the crop size"):
        paired_random_crop([torch.rand(3, 4, 4)], 8)
    with pytest.raises(ValueError, match="share H and W"):
        paired_random_crop([torch.rand(3, 4, 4), torch.rand(3, 5, 4)], 2)


def test_real_lol_eval15_pairs(shared_data):
    ds = PairedFolder(shared_data / "lol_v1_eval15" / "low", shared_data / "lol_v1_eval15" / "high")
    assert len(ds) == 15
    item = ds[0]
    assert item["low"].shape == (3, 400, 600) and float(item["low"].mean()) < float(item["high"].mean())
