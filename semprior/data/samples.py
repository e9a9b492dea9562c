"""Embedded default clean photos: colour photographs that scikit-image ships (no download).

scikit-image is an extra (``pip install 'semprior[demo]'``, included in ``semprior[all]``): it is
needed only here, and a missing one raises an ``ImportError`` that names the extra.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from semprior._optional import require

__all__ = ["DEFAULT_SAMPLE_NAMES", "default_clean_images"]

#: colour photographs bundled inside the scikit-image wheel (``skimage.data``); no network needed
DEFAULT_SAMPLE_NAMES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


def default_clean_images(names: tuple[str, ...] | None = None) -> dict[str, Tensor]:
    """Load bundled scikit-image colour photos as ``(3, H, W)`` float tensors in ``[0, 1]``.

    Args:
        names: which ``skimage.data`` photos; [`DEFAULT_SAMPLE_NAMES`][semprior.data.samples.DEFAULT_SAMPLE_NAMES] when
            ``None``.

    Returns:
        ``{name: image}`` in the order given.

    Shape:
        - each value: `(3, H, W)` (e.g. astronaut `(3, 512, 512)`, coffee `(3, 400, 600)`)

    Raises:
        ImportError: scikit-image is not installed (the message says ``pip install 'semprior[demo]'``).
        ValueError: a name that is not a bundled colour photo.

    Examples:
        >>> imgs = default_clean_images(("coffee",))
        >>> imgs["coffee"].shape
        torch.Size([3, 400, 600])
    """
    skdata = require("skimage.data", extra="demo", purpose="the bundled demo photos (default_clean_images)")
    out: dict[str, Tensor] = {}
    for name in names or DEFAULT_SAMPLE_NAMES:
        loader = getattr(skdata, name, None)
        if loader is None or not callable(loader):
            raise ValueError(f"skimage.data has no image called {name!r}; choose from {DEFAULT_SAMPLE_NAMES}")
        try:
            arr = np.asarray(loader())
        except Exception as exc:  # pooch-backed images need a download
            raise ValueError(
                f"skimage.data.{name} is not bundled with scikit-image (it needs a download); "
                f"use one of {DEFAULT_SAMPLE_NAMES}"
            ) from exc
        if arr.ndim != 3 or arr.shape[2] < 3:
            raise ValueError(f"skimage.data.{name} is not a colour photo (shape {arr.shape}); pick an RGB one")
        out[name] = torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1).float() / 255.0
    return out
