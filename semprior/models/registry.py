"""The model registry: ``create_model(name, pretrained=..., **overrides)`` and ``list_models()``.

One table (`MODELS`) maps a name to a [`ModelEntry`][semprior.models.registry.ModelEntry]: the config class and preset, how
to build the model from a config (and a frozen prior), the training loss, the pretrained tags and
a tiny configuration for the conformance suite. The priors a model can take are named in
[`PRIORS`][semprior.models.registry.PRIORS] (the same names a checkpoint's ``config.json`` records).

Adding a model is one file (``semprior/models/mymodel.py``: an ``nn.Module`` following
`semprior.models.protocol`, with a config dataclass) plus one `register_model` line at
the bottom of this file; ``tests/models/test_conformance.py`` then runs it through every check.

Examples:
    >>> from semprior.models.registry import create_model, list_models
    >>> "retinexformer" in list_models()
    True
    >>> model = create_model("retinexformer", width=8, blocks=(1, 1, 1))
    >>> model(torch.rand(1, 3, 13, 18)).shape
    torch.Size([1, 3, 13, 18])
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from semprior._config import rename_fields
from semprior.models.protocol import config_from_dict

__all__ = [
    "MODELS",
    "PRIORS",
    "ModelEntry",
    "PriorEntry",
    "build_prior",
    "create_model",
    "get_model_entry",
    "list_models",
    "prior_record",
    "forward_training_loss",
    "l1_training_loss",
    "register_model",
]

LossFn = Callable[[nn.Module, dict[str, Tensor]], tuple[Tensor, dict[str, Tensor]]]


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


# ---------------------------------------------------------------------------------------- priors
@dataclass(frozen=True)
class PriorEntry:
    """A named frozen prior: ``cls(**kwargs, <weights_dir>)``; ``weights`` names the file it needs."""

    name: str
    cls: str  # "module:Class", imported on use
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None  # semprior.weights name, or None for weight-free priors
    description: str = ""


#: prior name -> entry; ``"none"`` means no prior. The names a ``config.json`` records.
PRIORS: dict[str, PriorEntry | None] = {
    "none": None,
    "region": PriorEntry("region", "semprior.priors.region:RegionPrior", {},
                         description="weight-free RegionPrior (colour/texture statistics + soft superpixels)"),
    "hrnet": PriorEntry("hrnet", "semprior.priors.hrnet:HRNetPrior", {"variant": "w48", "dataset": "ade20k"},
                        weights="auto", description="HRNet-W48 ADE20K (DeepSPG's prior); needs its checkpoint"),
    "sam": PriorEntry("sam", "semprior.priors.sam:SAMPrior", {"model_type": "vit_b"},
                      weights="auto", description="SAM ViT-B image encoder (CUGD's prior); needs sam_vit_b"),
}


def build_prior(name: str, weights_dir: str | os.PathLike | None = None) -> nn.Module | None:
    """Build a prior by its [`PRIORS`][semprior.models.registry.PRIORS] name (``"none"`` -> ``None``); weights resolved via `semprior.weights`."""
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; choose one of {sorted(PRIORS)} or pass a prior object")
    entry = PRIORS[name]
    if entry is None:
        return None
    cls = _load(entry.cls)
    kwargs = dict(entry.kwargs)
    if entry.weights is not None:
        key = "checkpoint" if name == "sam" else "weights"
        kwargs.update({key: entry.weights, "weights_dir": weights_dir})
    return cls(**kwargs)


def _spec_dict(prior: nn.Module) -> dict[str, Any] | None:
    spec = getattr(prior, "spec", None)
    if spec is None:
        return None
    return {"name": spec.name, "channels": list(spec.channels), "strides": list(spec.strides),
            "num_classes": int(spec.num_classes)}


def _prior_name(prior: nn.Module) -> str | None:
    """The [`PRIORS`][semprior.models.registry.PRIORS] name that rebuilds ``prior`` exactly, or ``None``."""
    from semprior.priors.region import RegionPrior

    if type(prior) is RegionPrior:
        ref = RegionPrior()
        same = all(getattr(prior, a) == getattr(ref, a)
                   for a in ("grid", "iterations", "temperature", "position_weight", "chroma_weight"))
        return "region" if same and prior.spec == ref.spec else None
    spec_name = getattr(getattr(prior, "spec", None), "name", None)
    loaded = getattr(prior, "load_report", None) is not None  # random-init weights cannot be rebuilt
    if type(prior).__name__ == "HRNetPrior" and spec_name == "hrnet_w48-ade20k" and loaded:
        return "hrnet"
    if type(prior).__name__ == "SAMPrior" and spec_name == "sam_vit_b" and loaded and not prior.region_map:
        return "sam"
    return None


def prior_record(prior: nn.Module | None) -> dict[str, Any] | None:
    """What a checkpoint records about a frozen prior: ``{"name", "spec", "weights"}`` (``None``: no prior).

    ``name`` is ``None`` when the prior cannot be rebuilt from a name (a custom module, random
    weights): loading then needs the prior passed explicitly, checked against ``spec``.
    """
    if prior is None:
        return None
    name = _prior_name(prior)
    entry = PRIORS.get(name) if name else None
    return {"name": name, "class": type(prior).__name__, "spec": _spec_dict(prior),
            "weights": entry.weights if entry is not None else None}


# ---------------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: registry name (``create_model(name)``).
        config_cls: the config dataclass (``preset``/``from_dict``/``to_dict``).
        preset: the preset of ``config_cls`` this name stands for.
        build: ``build(config, prior) -> nn.Module``.
        prior: default prior name ([`PRIORS`][semprior.models.registry.PRIORS]), or ``None`` when the model takes no prior.
        training_loss: ``loss_fn(model, batch) -> (total, terms)`` for [`semprior.engine.Trainer`][semprior.engine.trainer.Trainer];
            ``None`` for models without trainable parameters.
        phases: for models trained on several data sources in alternation (SLLEN):
            ``phases(model, sources) -> PhaseSchedule`` ([`semprior.models.phases.PhaseSchedule`][semprior.models.phases.PhaseSchedule]),
            given the built model and the datasets by source name (``"train"``: the paired data;
            others as the run config names them, e.g. ``"segmentation"``). ``semprior train`` then
            trains with that schedule instead of ``training_loss`` alone.
        pretrained: tag -> file name in the weights directory (``create_model(name, pretrained=tag)``).
        tiny: config overrides that make the model small enough for the conformance suite.
        description: one line for ``list_models(verbose=True)`` and the docs.
    """

    name: str
    config_cls: type
    preset: str | None
    build: Callable[[Any, nn.Module | None], nn.Module]
    prior: str | None = None
    training_loss: LossFn | None = None
    phases: Callable[[nn.Module, dict[str, Any]], Any] | None = None
    pretrained: dict[str, str] = field(default_factory=dict)
    tiny: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def config(self, prior: str | None = None, **overrides: Any) -> Any:
        """The config of this entry with ``overrides`` (strict: unknown keys are an error; old field
        names are mapped with a ``DeprecationWarning``, see `semprior._config.rename_fields`)."""
        overrides = rename_fields(self.config_cls, overrides, f"{self.name} config")
        if self.name.startswith("deepspg"):
            overrides = {"image_prior": prior not in (None, "none"), "text_prior": False, **overrides}
        if self.preset is not None and hasattr(self.config_cls, "preset"):
            base = self.config_cls.preset(self.preset).to_dict()
        else:
            base = {}
        return config_from_dict(self.config_cls, {**base, **overrides}, f"{self.name} config")


#: registry name -> entry (one table; `register_model` adds to it)
MODELS: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to `MODELS` (a name can be registered once)."""
    if entry.name in MODELS:
        raise ValueError(f"model {entry.name!r} is already registered")
    MODELS[entry.name] = entry
    return entry


def list_models(verbose: bool = False) -> list[str] | dict[str, str]:
    """Registered names, sorted; ``verbose=True`` gives ``{name: description}``."""
    if verbose:
        return {n: MODELS[n].description for n in sorted(MODELS)}
    return sorted(MODELS)


def get_model_entry(name: str) -> ModelEntry:
    """The [`ModelEntry`][semprior.models.registry.ModelEntry] of ``name``; an unknown name lists the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}") from None


def _resolve_prior(entry: ModelEntry, prior: str | nn.Module | None, weights_dir: Any) -> tuple[str | None, nn.Module | None]:
    if entry.prior is None:
        if prior not in (None, "none"):
            raise ValueError(f"model {entry.name!r} takes no prior; drop prior=")
        return None, None
    if prior is None:
        prior = entry.prior
    if isinstance(prior, str):
        return prior, build_prior(prior, weights_dir)
    if not isinstance(prior, nn.Module):
        raise TypeError(f"prior must be a name from {sorted(PRIORS)} or an nn.Module, got {type(prior).__name__}")
    return "custom", prior


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
        pretrained: ``None``/``False`` (random init), ``True`` (the default shipped weights; an error
            naming the alternatives when none ship), a tag of weights shipped inside semprior
            ([`semprior.models.shipped.SHIPPED`][semprior.models.shipped.SHIPPED], e.g. ``"lolv1-cpu"`` for DeepSPG), a tag of the
            entry's ``pretrained`` table (the file is looked up in the weights directory:
            ``weights_dir`` or ``$SEMPRIOR_WEIGHTS``), or a
            path: a ``save_pretrained`` folder / ``model.safetensors``, a trainer checkpoint
            ``.pt``, or an official state-dict file (Retinexformer's BasicSR ``{'params': ...}``).
        prior: a [`PRIORS`][semprior.models.registry.PRIORS] name or a frozen prior module (default: the entry's prior).
        weights_dir: where named weights (priors, tags) are found.
        **overrides: config fields (e.g. ``width=16``); strict.

    Returns the model in eval mode when weights were loaded, else in training mode (as built).
    """
    entry = get_model_entry(name)
    if pretrained is False:
        pretrained = None
    elif pretrained is True:  # timm's spelling: the default weights, here the first shipped tag
        from semprior.models.shipped import SHIPPED

        if not SHIPPED.get(name):
            official = f" or an official tag of {sorted(entry.pretrained)} (file in $SEMPRIOR_WEIGHTS)" if entry.pretrained else ""
            raise ValueError(f"no weights for {name!r} ship with semprior, so pretrained=True has nothing to load; "
                             f"pass pretrained=PATH (a save_pretrained folder or a checkpoint){official}")
        pretrained = next(iter(SHIPPED[name]))
    if pretrained is not None:
        from semprior.hub import load_model

        path = _pretrained_path(entry, pretrained, weights_dir)
        return load_model(path, name=name, prior=prior, weights_dir=weights_dir, **overrides)
    prior_name, prior_obj = _resolve_prior(entry, prior, weights_dir)
    cfg = entry.config(prior_name, **overrides)
    return entry.build(cfg, prior_obj)


def _pretrained_path(entry: ModelEntry, pretrained: str | os.PathLike, weights_dir: Any) -> Path:
    from semprior.models.shipped import SHIPPED, shipped_path

    if isinstance(pretrained, str) and pretrained in SHIPPED.get(entry.name, {}):  # weights inside the package
        return shipped_path(entry.name, pretrained)
    if isinstance(pretrained, str) and pretrained in entry.pretrained:
        from semprior.weights import ENV_VAR, default_weights_dir

        wdir = default_weights_dir(weights_dir)
        filename = entry.pretrained[pretrained]
        if wdir is None or not (wdir / filename).is_file():
            where = str(wdir) if wdir is not None else f"a directory named by ${ENV_VAR} (or pass weights_dir=)"
            raise FileNotFoundError(
                f"pretrained {entry.name!r} tag {pretrained!r} needs the file {filename!r} in {where}; download "
                "it from the model's official release and put it there, or pass its path as pretrained="
            )
        return wdir / filename
    p = Path(pretrained).expanduser()
    if not p.exists():
        known = sorted({*entry.pretrained, *SHIPPED.get(entry.name, {})})
        tags = f" or a tag of {known}" if known else ""
        raise FileNotFoundError(f"pretrained={str(pretrained)!r} is neither an existing path{tags}")
    return p


def l1_training_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """``loss_fn`` for enhancers trained with L1 (Retinexformer, SLLEN's LLE steps): ``|model(low) - high|``.

    Calls ``model`` itself (not an unwrapped module), so DistributedDataParallel synchronises
    the gradients; the same value as ``model.loss(low, high)``.
    """
    from semprior.losses.pixel import pixel_loss
    from semprior.losses.precision import fp32_loss

    l1 = fp32_loss(lambda out, high: pixel_loss(out, high, "l1"), model(batch["low"]), batch["high"])
    return l1, {"l1": l1.detach()}


def forward_training_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """``loss_fn`` for models whose ``forward(low, high)`` returns ``(total, terms)`` (CUGD); DDP-safe."""
    return model(batch["low"], batch["high"])


# ---------------------------------------------------------------------------------------- entries
def _deepspg_build(cfg: Any, prior: nn.Module | None) -> nn.Module:
    return _load("semprior.models.deepspg:DeepSPG")(cfg, prior=prior)


def _deepspg_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    return _load("semprior.models.deepspg:deepspg_training_loss")(model, batch)


def _sllen_phases(model: nn.Module, sources: dict[str, Any]) -> Any:
    """SLLEN's recipe: `semprior.models.sllen.sllen_phases` over the paired data and a segmentation source."""
    seg = sources.get("segmentation")
    if seg is None:
        raise ValueError("sllen trains in alternation on paired images and a segmentation data set: add a "
                         "`segmentation:` section to the config (kind: folder with image_dir / mask_dir, or kind: synthetic)")
    if seg.num_classes != model.config.num_classes:
        raise ValueError(f"the segmentation data has num_classes={seg.num_classes} but the model has "
                         f"num_classes={model.config.num_classes}; set model.num_classes to match")
    return _load("semprior.models.sllen:sllen_phases")(ignore_index=seg.ignore_index)


def _classical_build(cls_path: str) -> Callable[[Any, Any], nn.Module]:
    def build(cfg: Any, prior: Any) -> nn.Module:
        return _load(cls_path)(**cfg.to_dict())

    return build


def _register_defaults() -> None:
    from semprior.models.cugd import CUGD, CUGDConfig
    from semprior.models.deepspg import DeepSPGConfig
    from semprior.models.retinexformer import RETINEXFORMER_RELEASES, Retinexformer, RetinexformerConfig
    from semprior.models.sllen import SLLEN, SLLENConfig

    tiny_deepspg = {"width": 8, "heads": (1, 1, 1), "retinex_width": 4, "illum_width": 4}
    register_model(ModelEntry("deepspg", DeepSPGConfig, "deepspg", _deepspg_build, prior="region",
                              training_loss=_deepspg_loss, tiny=tiny_deepspg,
                              description="DeepSPG (0.55 M), Retinex + SEM U-Net guided by a frozen prior"))
    register_model(ModelEntry("deepspg-large", DeepSPGConfig, "deepspg-large", _deepspg_build, prior="region",
                              training_loss=_deepspg_loss, tiny=tiny_deepspg,
                              description="DeepSPG large (2.13 M)"))
    register_model(ModelEntry("retinexformer", RetinexformerConfig, "lol-v1", lambda c, p: Retinexformer(c),
                              training_loss=l1_training_loss, pretrained=dict(RETINEXFORMER_RELEASES),
                              tiny={"width": 4, "blocks": (1, 1, 1)},
                              description="Retinexformer (1.61 M), official architecture; loads official checkpoints"))
    register_model(ModelEntry("sllen", SLLENConfig, "sllen", lambda c, p: SLLEN(c), training_loss=l1_training_loss,
                              phases=_sllen_phases,
                              tiny={"width": 4, "depth": 2, "num_classes": 3},
                              description="SLLEN, LLE network with a segmentation auxiliary branch"))
    register_model(ModelEntry("cugd", CUGDConfig, "cugd", lambda c, p: CUGD(p, c), prior="region",
                              training_loss=forward_training_loss,
                              tiny={"width": 4, "depth": 1, "heads": 2, "timesteps": 20, "sampling_steps": 2},
                              description="CUGD, conditional diffusion guided by a frozen prior's context"))
    for name, cls, desc in (
        ("identity", "Identity", "the input unchanged"),
        ("gamma", "Gamma", "gamma curve (0.4)"),
        ("he", "HistogramEqualization", "global histogram equalisation of the HSV value"),
        ("clahe", "CLAHE", "CLAHE on Lab lightness"),
        ("lime", "LIMERetinex", "LIME-style Retinex (max-RGB illumination)"),
    ):
        path = f"semprior.models.classical:{cls}"
        register_model(ModelEntry(name, _load(f"{path}Config"), None, _classical_build(path),
                                  description=f"classical: {desc}"))


_register_defaults()
