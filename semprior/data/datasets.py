"""Paired-folder datasets: a generic name-matched [`PairedFolder`][semprior.data.datasets.PairedFolder], LOL-v1 and
LOL-v2 layouts.

SID / SMID are used as image pairs (already converted to sRGB PNG/JPG) through
[`PairedFolder`][semprior.data.datasets.PairedFolder] with a ``key`` regex that maps a low file to its reference, e.g.
SID's ``10003_00_0.1s.png -> 10003_00_10s.png`` with ``key=r"^(\\d+)_"``.
Items are dicts ``{"low": (3, H, W), "high": (3, H, W), "name": str}`` in ``[0, 1]``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor

from semprior.data.io import IMAGE_EXTENSIONS, list_images
from semprior.data.transforms import PairedAugment

__all__ = [
    "IMAGE_EXTENSIONS",
    "find_unreadable",
    "holdout_split",
    "list_images",
    "load_rgb",
    "PairedFolder",
    "LOLv1",
    "LOLv2",
]


def load_rgb(path: str | Path) -> Tensor:
    """Read an image file as a ``(3, H, W)`` float tensor in ``[0, 1]`` (EXIF orientation applied)."""
    from semprior.data.io import read_image

    img = read_image(path)
    return img[0] if img.dim() == 4 else img


def find_unreadable(paths: Iterable[str | Path]) -> dict[Path, str]:
    """Files that [`semprior.data.io.read_image`][semprior.data.io.read_image] cannot decode: ``path -> reason``.

    Decodes every file fully (a truncated file is only detected by decoding it), so this costs
    one read of each image.
    """
    from semprior.data.io import ImageReadError, read_image

    bad: dict[Path, str] = {}
    for p in paths:
        try:
            read_image(p)
        except ImageReadError as exc:
            bad[Path(p)] = str(exc)
    return bad


def warn_skipped(bad: dict[Path, str], where: str) -> None:
    """One ``UserWarning`` listing every skipped file (name and reason)."""
    if bad:
        listing = "; ".join(f"{p} ({reason.split(': ', 1)[-1]})" for p, reason in sorted(bad.items()))
        warnings.warn(f"skipped {len(bad)} unreadable image file(s) in {where}: {listing}", UserWarning, stacklevel=3)


def _make_key(key: str | Callable[[str], str] | None) -> Callable[[str], str]:
    if key is None:
        return lambda stem: stem
    if callable(key):
        return key
    pattern = re.compile(key)
    if pattern.groups != 1:
        raise ValueError(f"key regex must have exactly one capture group, got {key!r} with {pattern.groups}")

    def by_regex(stem: str) -> str:
        m = pattern.search(stem)
        if m is None:
            raise ValueError(f"file name {stem!r} does not match the key regex {key!r}; fix the regex or the file name")
        return m.group(1)

    return by_regex


def holdout_split(keys: Iterable[str], n: int, salt: str = "semprior-val") -> list[str]:
    """The ``n`` keys with the smallest ``sha256(salt + key)``: a fixed, documented held-out split.

    The choice depends only on the names (not on the listing order, the machine or a seed), so
    every run and every reader of the docs holds out the same pairs. For LOL-v1 ``our485`` with
    ``n=20`` these are the pairs the shipped models were selected on (never eval15).

    Examples:
        >>> holdout_split(["1", "2", "3", "4"], 2) == holdout_split(["4", "3", "2", "1"], 2)
        True
    """
    import hashlib

    keys = sorted(set(keys))
    if not 0 <= n < len(keys):
        raise ValueError(f"cannot hold out {n} of {len(keys)} pairs; need 0 <= n < {len(keys)}")
    return sorted(keys, key=lambda k: hashlib.sha256((salt + k).encode()).hexdigest())[:n]


class PairedFolder(torch.utils.data.Dataset):
    """Low/reference image pairs from two folders, matched by file name (extension ignored).

    Every low image must match exactly one reference and every reference at least one low image
    (several low exposures may share a reference, as in SID); otherwise a ``ValueError`` lists
    the unmatched names.

    Args:
        low_dir: folder of low-light images.
        high_dir: folder of reference images.
        patch_size: random crop size for training; ``None`` returns whole images.
        flip: random horizontal/vertical flips (training).
        key: how a file stem maps to the matching key: ``None`` (same stem), a regex with one
            capture group, or a callable ``stem -> key``.
        seed: base seed; item ``i`` of epoch ``e`` is deterministic given ``(seed, e, i)``.
        keep: only the pairs whose key is in this collection (e.g. a validation split from
            [`holdout_split`][semprior.data.datasets.holdout_split]); ``None`` keeps all.
        drop: leave out the pairs whose key is in this collection (the training side of a split).
        skip_corrupt: decode every file up front and drop the pairs with an unreadable
            (truncated, corrupt, non-image) file, with one warning listing them (``self.skipped``).
            By default (``False``) an unreadable file raises
            [`ImageReadError`][semprior.data.io.ImageReadError] naming it when its item is loaded.
        cache: keep every decoded pair in memory after its first use (as ``uint8`` when the file is
            8-bit, which reads back exactly; else float32), so later epochs crop without decoding PNGs
            again. LOL-v1's 485 pairs take about 0.7 GB.

    Examples:
        >>> ds = PairedFolder("lol/eval15/low", "lol/eval15/high")  # doctest: +SKIP
        >>> ds[0]["low"].shape  # doctest: +SKIP
        torch.Size([3, 400, 600])
    """

    def __init__(
        self,
        low_dir: str | Path,
        high_dir: str | Path,
        patch_size: int | None = None,
        flip: bool = False,
        key: str | Callable[[str], str] | None = None,
        seed: int = 0,
        skip_corrupt: bool = False,
        keep: Iterable[str] | None = None,
        drop: Iterable[str] | None = None,
        cache: bool = False,
    ) -> None:
        self.low_dir, self.high_dir = Path(low_dir), Path(high_dir)
        self.cache: dict[int, tuple[Tensor, Tensor]] | None = {} if cache else None
        lows, highs = list_images(self.low_dir), list_images(self.high_dir)
        if not lows:
            raise FileNotFoundError(f"no images found in the low folder {self.low_dir}")
        if not highs:
            raise FileNotFoundError(f"no images found in the reference folder {self.high_dir}")
        fn = _make_key(key)
        high_by_key: dict[str, Path] = {}
        for h in highs:
            k = fn(h.stem)
            if k in high_by_key:
                raise ValueError(
                    f"two reference images share the key {k!r}: {high_by_key[k].name} and {h.name}; "
                    "remove one or use a more specific key"
                )
            high_by_key[k] = h
        pairs, unmatched_low = [], []
        used: set[str] = set()
        for low in lows:
            k = fn(low.stem)
            if k in high_by_key:
                pairs.append((low, high_by_key[k]))
                used.add(k)
            else:
                unmatched_low.append(low.name)
        unmatched_high = [high_by_key[k].name for k in high_by_key if k not in used]
        if unmatched_low or unmatched_high:

            def show(names: list[str]) -> str:
                return ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")

            parts = []
            if unmatched_low:
                parts.append(
                    f"{len(unmatched_low)} low image(s) without a reference in {self.high_dir}: {show(unmatched_low)}"
                )
            if unmatched_high:
                parts.append(
                    f"{len(unmatched_high)} reference image(s) without a low image in {self.low_dir}: "
                    f"{show(unmatched_high)}"
                )
            raise ValueError(
                "unmatched files: " + "; ".join(parts) + ". Pairs are matched by file name without extension; "
                "rename or remove the extra files, or pass key= (a regex with one group) to map names"
            )
        if keep is not None or drop is not None:
            keep_set = None if keep is None else set(keep)
            drop_set = set(drop or ())
            known = {fn(lo.stem) for lo, _ in pairs}
            missing = sorted((keep_set or set()) - known)
            if missing:
                raise ValueError(f"keep= names {missing[:5]} are not pairs in {self.low_dir}; check the split")
            pairs = [
                (lo, hi)
                for lo, hi in pairs
                if (keep_set is None or fn(lo.stem) in keep_set) and fn(lo.stem) not in drop_set
            ]
            if not pairs:
                raise ValueError(f"no pairs left in {self.low_dir} after keep/drop; check the split")
        self.skipped: list[Path] = []
        if skip_corrupt:
            bad = find_unreadable(sorted({f for pair in pairs for f in pair}))
            if bad:
                warn_skipped(bad, f"{self.low_dir} / {self.high_dir}")
                pairs = [(lo, hi) for lo, hi in pairs if lo not in bad and hi not in bad]
                self.skipped = sorted(bad)
            if not pairs:
                raise ValueError(
                    f"every pair in {self.low_dir} / {self.high_dir} has an unreadable file; nothing is left"
                )
        self.pairs = pairs
        self.key_fn = fn
        self.patch_size = patch_size
        self.augment = PairedAugment(patch_size, flip) if (patch_size is not None or flip) else None
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of epoch ``epoch`` (crops and flips)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        low_path, high_path = self.pairs[index]
        if self.cache is not None and index in self.cache:
            low, high = (_unpack(t) for t in self.cache[index])
        else:
            low, high = self._read(low_path, high_path)
            if self.cache is not None:
                self.cache[index] = (_pack(low), _pack(high))
        if self.augment is not None:
            gen = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_003 + index)
            low, high = self.augment([low, high], gen)
        return {"low": low, "high": high, "name": low_path.stem}

    @staticmethod
    def _read(low_path: Path, high_path: Path) -> tuple[Tensor, Tensor]:
        from semprior.data.io import ImageReadError

        try:
            low, high = load_rgb(low_path), load_rgb(high_path)
        except ImageReadError as exc:
            raise ImageReadError(
                f"{exc}; remove or replace the file, or pass skip_corrupt=True (YAML: data.skip_corrupt: true) to skip "
                "unreadable pairs with a warning"
            ) from exc
        if low.shape != high.shape:
            raise ValueError(
                f"pair {low_path.name} / {high_path.name} differs in size: {tuple(low.shape)} vs {tuple(high.shape)}; "
                "resize one of them so both match"
            )
        return low, high

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.low_dir} <-> {self.high_dir}, {len(self)} pairs, "
            f"patch_size={self.patch_size})"
        )


def _pack(img: Tensor) -> Tensor:
    """``uint8`` when ``img`` holds 8-bit values exactly (``k / 255``), else the float tensor itself."""
    q = (img * 255).round_()
    return q.to(torch.uint8) if torch.equal(q / 255, img) else img


def _unpack(t: Tensor) -> Tensor:
    return t / 255 if t.dtype == torch.uint8 else t


def _sub(root: Path, *parts: str, layout: str) -> Path:
    path = root.joinpath(*parts)
    if not path.is_dir():
        raise FileNotFoundError(f"expected folder {path} (layout: {layout}); point root at the dataset's top folder")
    return path


class LOLv1(PairedFolder):
    """LOL-v1: ``root/{our485,eval15}/{low,high}/*.png``; ``split`` is ``"train"``/``"our485"`` or
    ``"test"``/``"eval15"``."""

    LAYOUT = "root/our485/{low,high} and root/eval15/{low,high}"

    def __init__(self, root: str | Path, split: str = "eval15", **kwargs) -> None:
        names = {"train": "our485", "our485": "our485", "test": "eval15", "eval15": "eval15"}
        if split not in names:
            raise ValueError(f"LOL-v1 split must be one of {sorted(names)}, got {split!r}")
        root = Path(root)
        d = names[split]
        super().__init__(_sub(root, d, "low", layout=self.LAYOUT), _sub(root, d, "high", layout=self.LAYOUT), **kwargs)


def _lolv2_key(stem: str) -> str:
    """``low00001``/``normal00001`` -> ``00001``; other names unchanged (Synthetic uses equal names)."""
    return re.sub(r"^(low|normal)", "", stem, flags=re.IGNORECASE)


class LOLv2(PairedFolder):
    """LOL-v2: ``root/{Real_captured,Synthetic}/{Train,Test}/{Low,Normal}``.

    ``subset`` is ``"real"``/``"Real_captured"`` or ``"synthetic"``/``"Synthetic"``; ``split`` is
    ``"train"`` or ``"test"``. Real_captured names ``low00001.png``/``normal00001.png`` are matched
    on their number.
    """

    LAYOUT = "root/{Real_captured,Synthetic}/{Train,Test}/{Low,Normal}"

    def __init__(self, root: str | Path, subset: str = "real", split: str = "test", **kwargs) -> None:
        subsets = {"real": "Real_captured", "real_captured": "Real_captured", "synthetic": "Synthetic"}
        if subset.lower() not in subsets:
            raise ValueError(f"LOL-v2 subset must be 'real' or 'synthetic', got {subset!r}")
        if split.lower() not in ("train", "test"):
            raise ValueError(f"LOL-v2 split must be 'train' or 'test', got {split!r}")
        root, s, sp = Path(root), subsets[subset.lower()], split.lower().capitalize()
        kwargs.setdefault("key", _lolv2_key)
        super().__init__(
            _sub(root, s, sp, "Low", layout=self.LAYOUT), _sub(root, s, sp, "Normal", layout=self.LAYOUT), **kwargs
        )
