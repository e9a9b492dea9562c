"""The front door: ``create_model(name, pretrained=...)`` above the registry and the loader.

Resolution order of ``pretrained`` (timm's, with open_clip's "tag or file path"):
``None``/``False`` random init; ``True`` the default shipped weights; a tag of the entry's
pretrained table (shipped folder, or an official release file in the weights directory); a path
(any file [`load_model`][semprior.models.io.load_model] reads); ``hf://org/name`` a model
published with [`push_to_hub`][semprior.hub.push_to_hub] (needs the ``hub`` extra).

Examples:
    >>> from semprior.models.factory import create_model
    >>> net = create_model("retinexformer", width=4, blocks=(1, 1, 1))
    >>> net(torch.rand(1, 3, 13, 18)).shape
    torch.Size([1, 3, 13, 18])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch  # noqa: F401 - the doctest above uses it
from torch import nn

from semprior.models.build import build_entry
from semprior.models.io import HUB_PREFIX, load_model, local_model_path
from semprior.models.registry import ModelEntry, get_model_entry

__all__ = ["create_model", "create_model_for_inference", "pretrained_path"]


def pretrained_path(name: str, tag: str | None = None, weights_dir: str | os.PathLike | None = None) -> Path:
    """Where the weights ``tag`` of model ``name`` are (default tag: the first shipped one); an error names the fix."""
    entry = get_model_entry(name)
    if tag is None:
        if not entry.shipped_tags:
            raise FileNotFoundError(_none_shipped(entry))
        tag = entry.shipped_tags[0]
    row = entry.pretrained.get(tag)
    if row is None:
        raise ValueError(f"{name!r} has no pretrained tag {tag!r}; tags: {sorted(entry.pretrained)}")
    if row.shipped:
        folder = row.path()  # never None for shipped weights
        if folder is None or not (folder / "config.json").is_file():
            raise FileNotFoundError(f"the shipped weights {name}:{tag} are missing from {folder}; reinstall semprior")
        return folder
    from semprior.weights import ENV_VAR, default_weights_dir

    wdir = default_weights_dir(weights_dir)
    path = row.path(wdir)
    if path is None or not path.is_file():
        where = str(wdir) if wdir is not None else f"a directory named by ${ENV_VAR} (or pass weights_dir=)"
        raise FileNotFoundError(
            f"pretrained {name!r} tag {tag!r} needs the file {row.file!r} in {where}; download it from the model's "
            "official release and put it there, or pass its path as pretrained="
        )
    return path


def _none_shipped(entry: ModelEntry) -> str:
    official = sorted(t for t, p in entry.pretrained.items() if not p.shipped)
    also = f" or an official tag of {official} (file in $SEMPRIOR_WEIGHTS)" if official else ""
    return (
        f"no weights for {entry.name!r} ship with semprior; train one (`semprior train --config ...`) and pass "
        f"--checkpoint runs/.../best.pt, or load a file with create_model(name, pretrained=PATH){also}"
    )


def _pretrained(entry: ModelEntry, pretrained: str | os.PathLike, weights_dir: Any) -> tuple[Path, str | None]:
    if isinstance(pretrained, str) and pretrained in entry.pretrained:
        return pretrained_path(entry.name, pretrained, weights_dir), pretrained
    if isinstance(pretrained, str) and pretrained.startswith(HUB_PREFIX):
        return local_model_path(pretrained), None
    p = Path(pretrained).expanduser()
    if not p.exists():
        tags = f" or a tag of {sorted(entry.pretrained)}" if entry.pretrained else ""
        raise FileNotFoundError(f"pretrained={str(pretrained)!r} is neither an existing path{tags} nor hf://org/name")
    return p, None


def create_model(
    name: str,
    pretrained: str | os.PathLike | bool | None = None,
    *,
    prior: str | nn.Module | None = None,
    weights_dir: str | os.PathLike | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model, optionally with pretrained weights.

    Args:
        name: a name from [`list_models`][semprior.models.registry.list_models].
        pretrained: ``None``/``False`` (random init), ``True`` (the default shipped weights; an
            error naming the alternatives when none ship), a tag of the entry's pretrained table
            (e.g. ``"lolv1-cpu"``; an official release file is looked up in ``weights_dir`` or
            ``$SEMPRIOR_WEIGHTS``), a path (a ``save_pretrained`` folder / ``model.safetensors``, a
            trainer checkpoint ``.pt``, an official state-dict file) or ``hf://org/name``.
        prior: a [`PRIORS`][semprior.priors.registry.PRIORS] name or a frozen prior module (default: the
            entry's prior when building, the recorded one when loading). The one prior switch:
            a model's config fields that record it (DeepSPG's ``image_prior``) follow it.
        weights_dir: where named weights (priors, official files) are found.
        **overrides: config fields (e.g. ``width=16``); strict.

    Returns the model in eval mode when weights were loaded (with ``model.pretrained_cfg``: tag,
    dataset, source, file), else in training mode (as built).
    """
    entry = get_model_entry(name)
    if pretrained is False or pretrained is None:
        return build_entry(entry, overrides, prior, weights_dir)
    if pretrained is True:  # timm's spelling: the default weights, here the first shipped tag
        if not entry.shipped_tags:
            raise ValueError(_none_shipped(entry))
        pretrained = entry.shipped_tags[0]
    path, tag = _pretrained(entry, pretrained, weights_dir)
    model = load_model(path, name=name, prior=prior, weights_dir=weights_dir, **overrides)
    row = entry.pretrained.get(tag) if tag is not None else None
    model.pretrained_cfg = {
        "model": name,
        "tag": tag,
        "file": str(path),
        "dataset": row.dataset if row else "",
        "source": row.source if row else str(pretrained),
    }
    return model


def create_model_for_inference(
    name: str, prior: str | None = None, weights_dir: str | os.PathLike | None = None, **overrides: Any
) -> nn.Module:
    """A registered model ready to enhance: models without trainable parameters as they are, learned ones with
    their default shipped weights; a learned model without shipped weights is an error that says what to pass
    instead (never random weights)."""
    entry = get_model_entry(name)
    if entry.training_loss is None:  # nothing to learn, nothing to load
        return create_model(name, **overrides).eval()
    return create_model(name, pretrained=True, prior=prior, weights_dir=weights_dir, **overrides)
