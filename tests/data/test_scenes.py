"""Scene-aware validation: near-duplicate frames are grouped, and whole groups are held out."""

from pathlib import Path

import pytest
import torch

from semprior.data import LOLv1
from semprior.data.io import write_image
from semprior.data.scenes import group_scenes, scene_holdout
from semprior.engine.recipe import DataConfig, build_data


def _scene(g: torch.Generator) -> torch.Tensor:
    """A smooth random picture (a few blobs), so thumbnails carry structure."""
    small = torch.rand(3, 4, 6, generator=g)
    return torch.nn.functional.interpolate(small[None], size=(48, 72), mode="bicubic", align_corners=False)[0].clamp(
        0, 1
    )


@pytest.fixture
def bursts(tmp_path):
    """Four scenes of 1, 2, 3 and 4 frames: each frame is its scene at another exposure, with noise."""
    g = torch.Generator().manual_seed(0)
    for d in ("low", "high"):
        (tmp_path / d).mkdir()
    truth, n = {}, 0
    for s, frames in enumerate((1, 2, 3, 4)):
        base = _scene(g)
        for f in range(frames):
            high = (base * (0.7 + 0.1 * f) + 0.01 * torch.randn(base.shape, generator=g)).clamp(0, 1)
            write_image(tmp_path / "high" / f"{n}.png", high)
            write_image(tmp_path / "low" / f"{n}.png", high * 0.1)
            truth[str(n)] = s
            n += 1
    return tmp_path, truth


def test_group_scenes_finds_the_bursts(bursts):
    root, truth = bursts
    names = sorted(truth, key=int)
    groups = group_scenes([root / "high" / f"{k}.png" for k in names])
    same = {(a, b) for a in names for b in names if truth[a] == truth[b]}
    found = {(a, b) for i, a in enumerate(names) for j, b in enumerate(names) if groups[i] == groups[j]}
    assert found == same and groups[0] == 0
    assert group_scenes([root / "high" / f"{k}.png" for k in names], threshold=0.0) == list(range(len(names)))


def test_scene_holdout_takes_whole_scenes_in_a_fixed_order(bursts):
    root, truth = bursts
    keys = sorted(truth, key=int)
    scenes = [truth[k] for k in keys]
    held = scene_holdout(keys, scenes, 3)
    assert len(held) >= 3
    held_scenes = {truth[k] for k in held}
    assert {k for k in keys if truth[k] in held_scenes} == set(held)  # whole scenes only
    assert scene_holdout(keys[::-1], scenes[::-1], 3) == held  # independent of the listing order
    with pytest.raises(ValueError, match="keep one for training"):
        scene_holdout(keys, scenes, len(keys))
    with pytest.raises(ValueError, match="one scene number per key"):
        scene_holdout(keys, scenes[:-1], 2)


def test_build_data_holds_out_scenes_by_default(bursts):
    root, truth = bursts
    train, val = build_data(
        DataConfig(kind="paired", low_dir=str(root / "low"), high_dir=str(root / "high"), patch_size=16, val_holdout=2)
    )
    t = {truth[p[0].stem] for p in train.pairs}
    v = {truth[p[0].stem] for p in val.pairs}
    assert not t & v and len(val) >= 2 and len(train) + len(val) == len(truth)
    with pytest.raises(ValueError, match="val_split must be 'scenes' or 'names'"):
        DataConfig(kind="paired", low_dir="a", high_dir="b", val_split="random")


@pytest.mark.data
def test_lol_v1_scene_split():
    """LOL-v1 our485: 234 scenes; the 48-pair scene split shares no scene with the training side."""
    lol = Path.home() / "data" / "LOL"
    if not (lol / "our485").is_dir():
        pytest.skip(f"LOL-v1 our485 not found at {lol} (../shared/data/get-lol-v1.sh fetches it)")
    everything = LOLv1(lol, "train")
    groups = group_scenes([p[1] for p in everything.pairs])
    assert len(set(groups)) == 234
    train, val = build_data(DataConfig(kind="lol-v1", root=str(lol), val_holdout=48, patch_size=0))
    scene_of = {p[0].stem: g for p, g in zip(everything.pairs, groups)}
    assert len(val) == 49 and len(train) == 436
    assert not {scene_of[p[0].stem] for p in train.pairs} & {scene_of[p[0].stem] for p in val.pairs}
