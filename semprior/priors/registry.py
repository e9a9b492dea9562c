"""The priors' table: a prior by name (the names a checkpoint's ``config.json`` records).

[`PRIORS`][semprior.priors.registry.PRIORS] maps a name to a [`PriorEntry`][semprior.priors.registry.PriorEntry];
[`build_prior`][semprior.priors.registry.build_prior] builds one,
[`prior_record`][semprior.priors.registry.prior_record] says what a saved model records about the prior it was built
with. Python users pass prior objects directly; names are for configs, checkpoints and the command line.

Examples:
    >>> sorted(PRIORS)
    ['hrnet', 'none', 'region', 'sam']
    >>> type(build_prior("region")).__name__
    'RegionPrior'
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["PRIORS", "PriorEntry", "build_prior", "prior_name", "prior_record", "spec_dict"]


@dataclass(frozen=True)
class PriorEntry:
    """A named frozen prior: ``cls(**kwargs, <weights_key>=weights, weights_dir=...)``.

    Attributes:
        name: the table key.
        cls: ``"module:Class"``, imported on use.
        kwargs: constructor arguments.
        weights: the `semprior.weights` name of the file it needs (``"auto"``: the class picks), or
            ``None`` for a weight-free prior.
        weights_key: the constructor argument that takes ``weights``.
        description: one line for the docs and ``semprior models``.
    """

    name: str
    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    weights_key: str = "weights"
    description: str = ""


#: prior name -> entry; ``"none"`` means no prior. The names a ``config.json`` records.
PRIORS: dict[str, PriorEntry | None] = {
    "none": None,
    "region": PriorEntry(
        "region",
        "semprior.priors.region:RegionPrior",
        {},
        description="weight-free RegionPrior (colour/texture statistics + soft superpixels)",
    ),
    "hrnet": PriorEntry(
        "hrnet",
        "semprior.priors.hrnet:HRNetPrior",
        {"variant": "w48", "dataset": "ade20k"},
        weights="auto",
        description="HRNet-W48 ADE20K (DeepSPG's prior); needs its checkpoint",
    ),
    "sam": PriorEntry(
        "sam",
        "semprior.priors.sam:SAMPrior",
        {"model_type": "vit_b"},
        weights="auto",
        weights_key="checkpoint",
        description="SAM ViT-B image encoder (CUGD's prior); needs sam_vit_b",
    ),
}


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_prior(name: str, weights_dir: str | os.PathLike | None = None) -> nn.Module | None:
    """Build a prior by its [`PRIORS`][semprior.priors.registry.PRIORS] name (``"none"`` -> ``None``); weights resolved
    via `semprior.weights`."""
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; choose one of {sorted(PRIORS)} or pass a prior object")
    entry = PRIORS[name]
    if entry is None:
        return None
    kwargs = dict(entry.kwargs)
    if entry.weights is not None:
        kwargs.update({entry.weights_key: entry.weights, "weights_dir": weights_dir})
    return _load(entry.cls)(**kwargs)


def spec_dict(prior: nn.Module | None) -> dict[str, Any] | None:
    """The prior's ``spec`` as JSON-able data (``None`` for no prior or a module without one)."""
    spec = getattr(prior, "spec", None)
    if spec is None:
        return None
    return {
        "name": spec.name,
        "channels": list(spec.channels),
        "strides": list(spec.strides),
        "num_classes": int(spec.num_classes),
    }


def prior_name(prior: nn.Module) -> str | None:
    """The [`PRIORS`][semprior.priors.registry.PRIORS] name that rebuilds ``prior`` exactly, or ``None``."""
    from semprior.priors.region import RegionPrior

    if type(prior) is RegionPrior:
        ref = RegionPrior()
        same = all(
            getattr(prior, a) == getattr(ref, a)
            for a in ("grid", "iterations", "temperature", "position_weight", "chroma_weight")
        )
        return "region" if same and prior.spec == ref.spec else None
    spec_name = getattr(getattr(prior, "spec", None), "name", None)
    loaded = getattr(prior, "load_report", None) is not None  # random-init weights cannot be rebuilt
    if type(prior).__name__ == "HRNetPrior" and spec_name == "hrnet_w48-ade20k" and loaded:
        return "hrnet"
    if type(prior).__name__ == "SAMPrior" and spec_name == "sam_vit_b" and loaded and not prior.region_map:
        return "sam"
    return None


def prior_record(prior: nn.Module | None) -> dict[str, Any] | None:
    """What a saved model records about a frozen prior: ``{"name", "class", "spec", "weights"}`` (``None``: no prior).

    ``name`` is ``None`` when the prior cannot be rebuilt from a name (a custom module, random
    weights): loading then needs the prior passed explicitly, checked against ``spec``.
    """
    if prior is None:
        return None
    name = prior_name(prior)
    entry = PRIORS.get(name) if name else None
    return {
        "name": name,
        "class": type(prior).__name__,
        "spec": spec_dict(prior),
        "weights": entry.weights if entry is not None else None,
    }
