"""The text losses' table: DeepSPG's text prior by name (``text:`` in a run config).

The text prior is a training loss, never part of a model: a saved model does not need CLIP.

Examples:
    >>> sorted(TEXT_LOSSES)
    ['clip', 'none']
    >>> build_text_loss("none") is None
    True
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["TEXT_LOSSES", "build_text_loss"]

#: text-loss name -> description
TEXT_LOSSES = {
    "none": "no text prior",
    "clip": "CLIPPromptLoss ViT-B-16 with OpenAI weights (file ViT-B-16.pt in the weights directory)",
}


def build_text_loss(name: str, weights_dir: str | os.PathLike | None = None) -> Any:
    """``"none"`` -> ``None``; ``"clip"`` -> [`CLIPPromptLoss`][semprior.losses.clip_prompt.CLIPPromptLoss] from the
    local ViT-B-16 file."""
    if name == "none":
        return None
    if name == "clip":
        from semprior.losses.clip_prompt import CLIPPromptLoss
        from semprior.weights import resolve_weights

        try:
            path = resolve_weights("clip_vit_b16_openai", weights_dir=weights_dir)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{exc}. To train without the text prior, set `text: none` in the config") from exc
        return CLIPPromptLoss("ViT-B-16", pretrained=path)
    raise ValueError(f"unknown text loss {name!r}; choose one of {sorted(TEXT_LOSSES)}")
