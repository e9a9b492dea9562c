"""The model registry: one [`ModelEntry`][semprior.models.registry.ModelEntry] per name, added by the model's own file.

A model file ends with its registration (timm-style)::

    register_model(ModelEntry("mymodel", MyConfig, "mymodel", build, training_loss=l1_training_loss,
                              pretrained={"lolv1": Pretrained("mymodel-lolv1", shipped=True)}))

and ``semprior/models/__init__.py`` imports the file; a model defined elsewhere (a test, a user
package) registers the same way. Everything a name stands for lives in the entry: the config
class and preset, the builder (``build(config, prior, text_loss)``, one signature for all), the
config rules that follow the prior switch, the training loss, the pretrained table (shipped
folders and official release files) and a tiny configuration for the conformance suite. The
factory ([`semprior.models.factory.create_model`][semprior.models.factory.create_model]) and the
loader ([`semprior.models.io.load_model`][semprior.models.io.load_model]) read entries; no other code
tests a model's name.

Examples:
    >>> from semprior.models import create_model, list_models
    >>> "retinexformer" in list_models()
    True
    >>> list_models("deepspg*")
    ['deepspg', 'deepspg-large']
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from semprior.models.protocol import config_from_dict

__all__ = [
    "MODELS",
    "PRETRAINED_DIR",
    "ModelEntry",
    "Pretrained",
    "get_model_entry",
    "l1_training_loss",
    "list_models",
    "register_model",
]

LossFn = Callable[[nn.Module, dict[str, Tensor]], tuple[Tensor, dict[str, Tensor]]]
#: ``rules(data, prior=..., text=..., saved=...) -> data``: a model's config fields that follow the prior switch
Rules = Callable[..., dict[str, Any]]

#: where shipped weights live (inside the installed package): one ``save_pretrained`` folder per entry
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


@dataclass(frozen=True)
class Pretrained:
    """One row of a model's pretrained table.

    Attributes:
        file: ``shipped=True``: a ``save_pretrained`` folder under
            ``PRETRAINED_DIR`` (``semprior/pretrained/``, with its ``MODEL_CARD.md``; an absolute folder of another
            package works too); otherwise the file name of an official release, looked up in the weights directory
            (``weights_dir`` or ``$SEMPRIOR_WEIGHTS``; never downloaded).
        shipped: the weights ship inside semprior.
        dataset: what they were trained on.
        source: where they come from (a project run, an official release URL).
    """

    file: str
    shipped: bool = False
    dataset: str = ""
    source: str = ""

    def path(self, weights_dir: Path | None = None) -> Path | None:
        """Where the weights are (``None``: an official file without a weights directory)."""
        if self.shipped:
            return PRETRAINED_DIR / self.file
        return None if weights_dir is None else weights_dir / self.file


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: registry name (``create_model(name)``).
        config_cls: the config dataclass (``preset``/``from_dict``/``to_dict``).
        preset: the preset of ``config_cls`` this name stands for.
        build: ``build(config, prior, text_loss) -> nn.Module`` (one signature for every model).
        prior: default prior name ([`PRIORS`][semprior.priors.registry.PRIORS]); ``None``: the model takes no prior.
        text: the model takes a text loss (``text:`` in a run config).
        rules: ``rules(data, prior=bool, text=bool, saved=bool) -> data``: the config fields that
            follow the prior switch (given a prior / a text loss, building from a saved file).
        training_loss: ``loss_fn(model, batch) -> (total, terms)`` for
            [`semprior.engine.Trainer`][semprior.engine.trainer.Trainer]; ``None`` for models without trainable
            parameters.
        phases: for models trained on several data sources in alternation (SLLEN):
            ``phases(model, sources) -> PhaseSchedule`` given the built model and the datasets by
            source name (``"train"``: the paired data; others as the run config names them).
        pretrained: tag -> [`Pretrained`][semprior.models.registry.Pretrained]; the first shipped tag is the default.
        tiny: config overrides that make the model small enough for the conformance suite.
        description: one line for ``list_models(verbose=True)`` and the docs.
    """

    name: str
    config_cls: type[Any]
    preset: str | None
    build: Callable[..., nn.Module]
    prior: str | None = None
    text: bool = False
    rules: Rules | None = None
    training_loss: LossFn | None = None
    phases: Callable[[nn.Module, dict[str, Any]], Any] | None = None
    pretrained: dict[str, Pretrained] = field(default_factory=dict)
    tiny: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def config(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        prior: bool = False,
        text: bool = False,
        saved: bool = False,
        where: str = "",
    ) -> Any:
        """The config of this entry: its preset (not for ``saved`` files, which hold every field), then ``overrides``.

        ``prior`` / ``text`` say whether the model is built with a prior / a text loss: the one
        switch; ``rules`` set the config fields that record it. Unknown keys are an error.
        """
        data = dict(overrides or {})
        if self.rules is not None:
            data = self.rules(data, prior=prior, text=text, saved=saved)
        base = {}
        if not saved and self.preset is not None and hasattr(self.config_cls, "preset"):
            base = self.config_cls.preset(self.preset).to_dict()
        return config_from_dict(self.config_cls, {**base, **data}, where or f"{self.name} config")

    @property
    def shipped_tags(self) -> list[str]:
        """Tags of the weights shipped inside semprior that are present (default first)."""
        return [
            t for t, p in self.pretrained.items() if p.shipped and (PRETRAINED_DIR / p.file / "config.json").is_file()
        ]


#: registry name -> entry (one table; `register_model` adds to it)
MODELS: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to `MODELS` (a name can be registered once)."""
    if entry.name in MODELS:
        raise ValueError(f"model {entry.name!r} is already registered")
    MODELS[entry.name] = entry
    return entry


def list_models(filter: str = "", pretrained: bool = False, verbose: bool = False) -> list[str] | dict[str, str]:
    """Registered names, sorted; ``filter`` is a shell pattern (``"deep*"``), ``pretrained=True``
    keeps names with shipped weights; ``verbose=True`` gives ``{name: description}``.

    Examples:
        >>> list_models("retinex*", pretrained=True)
        ['retinexformer']
    """
    names = [n for n in sorted(MODELS) if not filter or fnmatch.fnmatchcase(n, filter)]
    if pretrained:
        names = [n for n in names if MODELS[n].shipped_tags]
    if verbose:
        return {n: MODELS[n].description for n in names}
    return names


def get_model_entry(name: str) -> ModelEntry:
    """The [`ModelEntry`][semprior.models.registry.ModelEntry] of ``name``; an unknown name lists the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}") from None


def l1_training_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """``loss_fn`` for enhancers trained with L1 (Retinexformer, SLLEN's LLE steps): ``|model(low) - high|``.

    Calls ``model`` itself (not an unwrapped module), so DistributedDataParallel synchronises
    the gradients; the same value as ``model.loss(low, high)``.
    """
    from semprior.losses.pixel import pixel_loss
    from semprior.losses.precision import fp32_loss

    l1 = fp32_loss(lambda out, high: pixel_loss(out, high, "l1"), model(batch["low"]), batch["high"])
    return l1, {"l1": l1.detach()}
