"""Build a registered model from its config and load weights into it, strictly: what every loader ends with.

[`load_model`][semprior.models.io.load_model], [`from_pretrained`][semprior.models.io.from_pretrained],
the readers of torch files (`semprior.models.torch_files`), [`create_model`][semprior.models.factory.create_model]
and the training recipe build models here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from semprior._config import ConfigError
from semprior.models.registry import ModelEntry
from semprior.priors.registry import build_prior

__all__ = ["build_entry", "build_from_config", "config_from_file", "load_weights", "resolve_prior"]


def config_from_file(
    entry: ModelEntry, saved: Mapping[str, Any], overrides: Mapping[str, Any], prior: nn.Module | None, source: str
) -> Any:
    """The model config from a file's ``saved`` dict plus the caller's ``overrides`` (the entry's rules applied)."""
    try:
        return entry.config({**saved, **overrides}, prior=prior is not None, saved=True, where=f"{entry.name} config")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc


def build_from_config(
    entry: ModelEntry,
    cfg: Any,
    prior: nn.Module | None,
    source: str,
    text_loss: Any = None,
    *,
    copies: int = 1,
    what: str = "weights",
) -> nn.Module:
    """``entry.build(cfg, prior, text_loss)``, after checking on the meta device that ``copies`` of its weights fit in
    memory."""
    from semprior._memory import check_model_fits

    check_model_fits(lambda c: entry.build(c, prior, text_loss), cfg, source, copies=copies, what=what)
    return entry.build(cfg, prior, text_loss)


def load_weights(model: nn.Module, state: Mapping[str, Tensor], source: str, device: Any) -> nn.Module:
    """``state`` into ``model`` strictly (NaN/Inf weights and key mismatches refused, naming ``source``); eval mode
    on ``device``."""
    for key, tensor in state.items():  # every load_model path ends here: damaged weights stop at load
        if isinstance(tensor, Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(
                f"{source}: tensor {key!r} holds {bad} NaN/Inf value(s) of {tensor.numel()}; the weights are "
                "damaged (a diverged run, or a broken file): load an earlier checkpoint"
            )
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        detail = " ".join(line.strip() for line in first[1:3])[:400]
        raise ValueError(f"{source} does not match the {type(model).__name__} built for it: {detail}") from exc
    return model.to(device).eval()


def resolve_prior(entry: ModelEntry, prior: str | nn.Module | None, weights_dir: Any) -> nn.Module | None:
    """The prior object for ``entry``: a name is built, ``None`` means the entry's default; a model without prior
    refuses one."""
    if entry.prior is None:
        if prior not in (None, "none"):
            raise ValueError(f"model {entry.name!r} takes no prior; drop prior=")
        return None
    if prior is None:
        prior = entry.prior
    if isinstance(prior, str):
        return build_prior(prior, weights_dir)
    if not isinstance(prior, nn.Module):
        raise TypeError(
            f"prior must be a name from semprior.priors.registry.PRIORS or an nn.Module, got {type(prior).__name__}"
        )
    return prior


def build_entry(
    entry: ModelEntry,
    overrides: Mapping[str, Any],
    prior: str | nn.Module | None = None,
    weights_dir: Any = None,
    text_loss: Any = None,
    source: str = "model",
) -> nn.Module:
    """Build ``entry``'s model from its preset and ``overrides`` with ``prior`` (a name, a module; ``None``: the
    default)."""
    prior_obj = resolve_prior(entry, prior, weights_dir)
    cfg = entry.config(overrides, prior=prior_obj is not None, text=text_loss is not None)
    return build_from_config(entry, cfg, prior_obj, source, text_loss)
