"""The enhance path's promise: a dark photo never comes out darker
([`keep_brightness`][semprior.engine.brightness.keep_brightness]).

A learned enhancer trained on LOL-v1 maps each image toward the brightness of LOL's references;
on a photo unlike LOL (a dusk sky, a lit shop window) it can return an image darker than its
input. ``semprior enhance`` applies this guard to every output unless ``--allow-darker`` is given;
evaluation (``semprior eval``) never does, so scores measure the model alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["keep_brightness"]


def keep_brightness(low: Tensor, out: Tensor, dark_below: float = 0.4, iters: int = 8) -> Tensor:
    """``out``, brightened where a dark input (mean grey below ``dark_below``) came out darker.

    Per image of the batch: when ``mean(low) < dark_below`` and ``mean(out) < mean(low)`` (means over
    channels and pixels, values in ``[0, 1]``), the output is multiplied by one global gain, found
    so that the clipped result's mean reaches the input's (the model's contrast and colours are
    kept, only the exposure changes). If clipping keeps the mean below the input's even then (an
    almost black output), the result is the pixelwise maximum of that and the input. Other images
    are returned unchanged (the same tensor values).

    Shape:
        - low, out: `(B, 3, H, W)` in ``[0, 1]`` -> `(B, 3, H, W)`

    Examples:
        >>> low = torch.full((1, 3, 4, 4), 0.2)
        >>> keep_brightness(low, torch.full((1, 3, 4, 4), 0.1)).mean().item() >= 0.2
        True
    """
    if low.shape != out.shape:
        raise ValueError(f"low and out must have the same shape, got {tuple(low.shape)} and {tuple(out.shape)}")
    result = out.clone()
    m_low = low.float().flatten(1).mean(1)
    m_out = out.float().flatten(1).mean(1)
    for i in torch.nonzero((m_low < dark_below) & (m_out < m_low)).flatten().tolist():
        target, y = float(m_low[i]), out[i].float()
        gain = min(target / max(float(m_out[i]), 1e-6), 1e4)
        for _ in range(iters):  # clipping lowers the mean below gain * mean: raise the gain until it reaches the target
            mean = float((y * gain).clamp(0, 1).mean())
            if mean >= target or gain > 1e4:
                break
            gain = min(gain * target / max(mean, 1e-6), 1e4)
        fixed = (y * gain).clamp(0, 1)
        if float(fixed.mean()) < target:
            fixed = torch.maximum(fixed, low[i].float())
        result[i] = fixed.to(out.dtype)
    return result
