"""Weights that ship inside the semprior package (small models trained by the project).

[`SHIPPED`][semprior.models.shipped.SHIPPED] maps a registry name to ``{tag: folder}``; each folder under
``semprior/pretrained/`` is a [`semprior.hub.save_pretrained`][semprior.hub.save_pretrained] folder (``model.safetensors`` +
``config.json``) with a ``MODEL_CARD.md`` (data, steps, compute, eval15 scores and protocol,
licence of the data). The first tag of a model is its default: ``semprior enhance photo.jpg -o
out/`` uses the default DeepSPG, ``create_model("deepspg", pretrained="lolv1-cpu")`` a named one.

Examples:
    >>> from semprior.models.shipped import shipped_tags
    >>> shipped_tags("lime")
    []
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["PRETRAINED_DIR", "SHIPPED", "create_model_for_inference", "shipped_path", "shipped_tags"]

#: where the shipped folders live (inside the installed package)
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"

#: registry name -> {tag: folder under PRETRAINED_DIR}; the first tag is the default
SHIPPED: dict[str, dict[str, str]] = {
    "deepspg": {"lolv1-cpu": "deepspg-lolv1-cpu"},
    "retinexformer": {"lolv1-cpu": "retinexformer-lolv1-cpu"},
}


def shipped_tags(name: str) -> list[str]:
    """The tags of the weights shipped for registry model ``name`` (default first; ``[]`` if none)."""
    return [t for t, folder in SHIPPED.get(name, {}).items() if (PRETRAINED_DIR / folder / "config.json").is_file()]


def shipped_path(name: str, tag: str | None = None) -> Path:
    """The folder of the shipped weights ``tag`` (default: the model's first) of ``name``."""
    tags = SHIPPED.get(name, {})
    if not tags:
        raise FileNotFoundError(
            f"no weights for {name!r} ship with semprior; train one (`semprior train --config ...`) and pass "
            "--checkpoint runs/.../best.pt, or load a file with create_model(name, pretrained=PATH)"
        )
    tag = tag or next(iter(tags))
    if tag not in tags:
        raise ValueError(f"{name!r} has no shipped tag {tag!r}; shipped: {sorted(tags)}")
    folder = PRETRAINED_DIR / tags[tag]
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"the shipped weights {name}:{tag} are missing from {folder}; reinstall semprior")
    return folder


def create_model_for_inference(name: str, prior: str | None = None, weights_dir: str | os.PathLike | None = None,
                               **overrides: Any) -> nn.Module:
    """A registered model ready to enhance: classical methods as they are, learned ones with their shipped weights.

    A learned model without shipped weights is an error that says what to pass instead (never
    random weights).
    """
    from semprior.hub import load_model
    from semprior.models.registry import create_model, get_model_entry

    entry = get_model_entry(name)
    if entry.training_loss is None:  # a classical method: nothing to load
        return create_model(name, **overrides).eval()
    return load_model(shipped_path(name), name=name, prior=prior, weights_dir=weights_dir, **overrides)
