"""The torch files [`load_model`][semprior.models.io.load_model] reads: trainer checkpoints, official
BasicSR releases and bare state dicts (``torch.load(weights_only=True)``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from semprior.models.build import build_entry, build_from_config, config_from_file, load_weights, resolve_prior
from semprior.models.registry import MODELS, get_model_entry, list_models

__all__ = ["load_torch_file"]


def load_torch_file(
    path: Path,
    name: str | None,
    prior: str | nn.Module | None,
    weights_dir: Any,
    device: Any,
    param_key: str | None,
    overrides: dict[str, Any],
) -> nn.Module:
    """The model in a ``.pt``/``.pth`` file: a trainer checkpoint, a BasicSR file or a bare state dict."""
    obj = _torch_file(path)
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    if "model" in obj and isinstance(obj["model"], Mapping):
        state = obj["model"]
        if param_key not in (None, "model", "ema"):
            raise ValueError(f"param_key for a trainer checkpoint is 'model' or 'ema', got {param_key!r}")
        if param_key == "ema":  # last.pt: the weight average beside the raw weights (floating tensors only)
            if not isinstance(obj.get("ema"), Mapping):
                raise ValueError(
                    f"{path} has no weight average ('ema'); it was trained with ema_decay=0, or it is "
                    "a best.pt (which already holds the average in 'model')"
                )
            state = {**state, **obj["ema"]}
        return _from_trainer(path, obj, state, name, prior, weights_dir, device, overrides)
    if "params" in obj or "params_ema" in obj:
        key = param_key or ("params" if "params" in obj else "params_ema")
        if key not in obj:
            raise ValueError(f"{path} has no {key!r} entry (has {sorted(obj)})")
        name = name or _official_format_model(path)
        return _from_state(path, _strip_module(obj[key]), name, prior, weights_dir, device, overrides)
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        if name is None:
            raise ValueError(f"{path} is a bare state dict; pass name= (one of {list_models()})")
        return _from_state(path, _strip_module(obj), name, prior, weights_dir, device, overrides)
    raise ValueError(f"{path} is not a model file semprior knows (keys {sorted(obj)[:8]}); see semprior.models.io")


def _torch_file(path: Path) -> Any:
    from semprior._torch_io import safe_torch_load

    return safe_torch_load(path, map_location="cpu")


def _strip_module(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _official_format_model(path: Path) -> str:
    """The one registered model whose pretrained table lists official release files (their BasicSR layout)."""
    names = [n for n in list_models() if any(not p.shipped for p in MODELS[n].pretrained.values())]
    if len(names) != 1:
        raise ValueError(f"{path} is an official BasicSR file; pass name= (one of {names})")
    return names[0]


def _model_from_config(path: Path, cfg: Any) -> str:
    """The registered model whose config class has every key of ``cfg`` (a checkpoint without ``model_name``)."""
    import dataclasses

    keys = set(cfg) if isinstance(cfg, Mapping) else None
    classes = {
        MODELS[n].config_cls: n
        for n in reversed(list_models())  # the first name of each class
        if keys and keys <= {f.name for f in dataclasses.fields(MODELS[n].config_cls)}
    }
    if len(classes) != 1:
        raise ValueError(
            f"{path} records no model name and its model_config does not tell one model apart; "
            f"pass name= (one of {list_models()})"
        )
    return next(iter(classes.values()))


def _from_state(
    path: Path,
    state: dict[str, Tensor],
    name: str,
    prior: Any,
    weights_dir: Any,
    device: Any,
    overrides: dict[str, Any],
) -> nn.Module:
    return load_weights(
        build_entry(get_model_entry(name), overrides, prior, weights_dir, source=str(path)), state, str(path), device
    )


def _from_trainer(
    path: Path,
    ckpt: Mapping[str, Any],
    state: Mapping[str, Tensor],
    name: str | None,
    prior: Any,
    weights_dir: Any,
    device: Any,
    overrides: dict[str, Any],
) -> nn.Module:
    recorded = ckpt.get("model_name")
    if name is not None and recorded is not None and name != recorded:
        raise ValueError(f"{path} holds a {recorded!r} model, not {name!r}")
    name = recorded or name or _model_from_config(path, ckpt.get("model_config"))
    entry = get_model_entry(name)
    rec_prior = ckpt.get("prior")
    if prior is None and isinstance(rec_prior, str):
        prior = rec_prior
    prior_obj = resolve_prior(entry, prior if prior is not None else "none", weights_dir)
    cfg_dict = ckpt.get("model_config")
    if not isinstance(cfg_dict, Mapping):
        return _from_state(path, dict(state), name, prior_obj, weights_dir, device, overrides)
    cfg = config_from_file(entry, cfg_dict, overrides, prior_obj, str(path))
    return load_weights(build_from_config(entry, cfg, prior_obj, str(path)), state, str(path), device)
