"""``semprior.enhance(img)``: one photo in, the enhanced photo out, in the kind it came in.

The same steps as ``semprior enhance`` on one whole image: [`enhance_image`][semprior.engine.tiling.enhance_image]
(padding, precision, eval mode, no autograd), then
[`keep_brightness`][semprior.engine.brightness.keep_brightness] so that a dark photo never comes out darker.

Examples:
    >>> import numpy as np
    >>> out = enhance(np.full((8, 10, 3), 40, np.uint8), "gamma")
    >>> out.shape, out.dtype, int(out[0, 0, 0]) > 40
    ((8, 10, 3), dtype('uint8'), True)
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["enhance"]


@functools.lru_cache(maxsize=4)
def _model(name: str) -> nn.Module:
    from semprior.models.factory import create_model_for_inference

    return create_model_for_inference(name)


def _to_tensor(img: Any) -> tuple[Tensor, Any]:
    """``(1, 3, H, W)`` float in ``[0, 1]`` and a function that turns a result back into ``img``'s kind."""
    if isinstance(img, Tensor):
        if img.dim() not in (3, 4) or img.shape[-3] != 3:
            raise ValueError(
                f"a tensor image must be (3, H, W) or (B, 3, H, W) RGB in [0, 1], got shape {tuple(img.shape)}"
            )
        x = img if img.dim() == 4 else img.unsqueeze(0)
        return x, lambda y: (y if img.dim() == 4 else y[0]).to(img.dtype)
    try:
        from PIL import Image
    except ImportError:  # pillow is a core dependency; this only guards odd environments
        pass
    else:
        if isinstance(img, Image.Image):
            arr = np.asarray(img.convert("RGB"))
            return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255, (
                lambda y: Image.fromarray(_uint8(y[0]))
            )
    if isinstance(img, np.ndarray):
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"a numpy image must be (H, W, 3) RGB, got shape {img.shape}")
        if img.dtype == np.uint8:
            return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255, lambda y: _uint8(y[0])
        if np.issubdtype(img.dtype, np.floating):
            x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
            return x, lambda y: y[0].permute(1, 2, 0).numpy().astype(img.dtype)
        raise ValueError(f"a numpy image must be uint8 (0..255) or float (0..1), got {img.dtype}")
    raise TypeError(f"enhance takes a PIL image, a numpy (H, W, 3) array or a torch tensor, got {type(img).__name__}")


def _uint8(y: Tensor) -> np.ndarray:
    return (y.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def enhance(
    img: Any, model: str | nn.Module = "deepspg", *, keep_brightness: bool = True, **enhance_kwargs: Any
) -> Any:
    """Enhance one photo (or a tensor batch) and return it in the kind it came in.

    Args:
        img: a PIL image, a numpy ``(H, W, 3)`` RGB array (``uint8`` 0..255, or float 0..1) or a
            torch tensor ``(3, H, W)`` / ``(B, 3, H, W)`` in ``[0, 1]``.
        model: a registry name (learned models load their default shipped weights; built once and
            cached) or a model.
        keep_brightness: never return a dark photo darker than it was
            ([`keep_brightness`][semprior.engine.brightness.keep_brightness]), as ``semprior enhance`` does.
        **enhance_kwargs: passed to [`enhance_image`][semprior.engine.tiling.enhance_image] (``tile``,
            ``max_memory_mb``, ``precision``, ...).

    Returns the enhanced image: a PIL image, a numpy array of the input's dtype, or a tensor of the
    input's shape and dtype.
    """
    from semprior.engine.brightness import keep_brightness as brighten
    from semprior.engine.tiling import enhance_image

    net = _model(model) if isinstance(model, str) else model
    x, back = _to_tensor(img)
    y = enhance_image(net, x, **enhance_kwargs).clamp(0, 1)
    return back(brighten(x, y) if keep_brightness else y)
