"""Scene-aware validation splits: hold out whole scenes, not single frames.

Paired low-light sets are shot in runs: LOL-v1's ``our485`` holds up to seven frames of one scene
(consecutive numbers, nearly the same picture). A validation split that draws single pairs puts
frames of the same scene on both sides, so validation measures memory of the scene, not
generalisation. [`group_scenes`][semprior.data.scenes.group_scenes] groups near-duplicate frames;
[`scene_holdout`][semprior.data.scenes.scene_holdout] holds out whole groups.

The grouping: each reference image becomes a 24x16 grey thumbnail (PIL box filter, so integer
arithmetic and the same on every machine), normalised to zero mean and unit variance (the
exposure does not matter); two frames belong to one scene when the RMS difference of their
thumbnails is below ``threshold`` (0.4), and groups are closed under that relation (single
linkage). On LOL-v1 ``our485`` the nearest-neighbour distances fall into two clusters, below 0.3
(frames of one scene) and above 0.5 (other scenes), so any threshold between them gives the same
234 scenes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["group_scenes", "scene_holdout", "scene_thumbnail"]

THUMBNAIL = (24, 16)


def scene_thumbnail(path: str | Path) -> np.ndarray:
    """The normalised ``16 x 24`` grey thumbnail of an image, flattened (float64)."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("L").resize(THUMBNAIL, Image.Resampling.BOX), dtype=np.float64)
    return ((a - a.mean()) / (a.std() + 1e-6)).ravel()


def group_scenes(paths: Sequence[str | Path], threshold: float = 0.4) -> list[int]:
    """A scene number per image: images whose thumbnails differ by less than ``threshold`` share one.

    Scene numbers count from 0 in the order of each scene's first image.

    Examples:
        >>> group_scenes([])
        []
    """
    if not paths:
        return []
    thumbs = np.stack([scene_thumbnail(p) for p in paths])
    n = len(thumbs)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sq = (thumbs**2).sum(1)
    dist2 = (sq[:, None] + sq[None, :] - 2 * thumbs @ thumbs.T) / thumbs.shape[1]
    for i, j in zip(*np.nonzero(dist2 < threshold**2)):
        a, b = find(int(i)), find(int(j))
        if a != b:
            parent[max(a, b)] = min(a, b)
    ids: dict[int, int] = {}
    return [ids.setdefault(find(i), len(ids)) for i in range(n)]


def scene_holdout(keys: Sequence[str], scenes: Sequence[int], n: int, salt: str = "semprior-val") -> list[str]:
    """Whole scenes, in the order of ``sha256(salt + the scene's smallest key)``, until at least ``n`` keys are held
    out.

    The choice depends only on the names and the grouping (not on the listing order, the machine
    or a seed). At least one scene stays for training.

    Examples:
        >>> scene_holdout(["1", "2", "3", "4"], [0, 0, 1, 1], 1) in (["1", "2"], ["3", "4"])
        True
    """
    if len(keys) != len(scenes):
        raise ValueError(f"need one scene number per key, got {len(keys)} keys and {len(scenes)} scene numbers")
    members: dict[int, list[str]] = {}
    for k, s in zip(keys, scenes):
        members.setdefault(int(s), []).append(k)
    order = sorted(members.values(), key=lambda m: hashlib.sha256((salt + min(m)).encode()).hexdigest())
    held: list[str] = []
    for m in order:
        if len(held) >= n:
            break
        held += m
    if n > 0 and len(held) >= len(keys):
        raise ValueError(
            f"cannot hold out {n} of {len(keys)} pairs in whole scenes ({len(members)} scenes) and keep "
            "one for training; lower data.val_holdout"
        )
    return sorted(held)
