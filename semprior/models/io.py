"""One checkpoint format and one loader for every registered model.

**Format** (``save_pretrained(model, folder)``; open it anywhere with ``safetensors`` + ``json``):

- ``model.safetensors``: the model's ``state_dict`` (frozen priors are never in it);
- ``config.json``::

    {"format": "semprior-model", "format_version": 1,
     "model": "deepspg",                       # registry name (semprior.list_models())
     "config": {...},                          # the model config, to_dict()
     "prior": {"name": "region", "class": "RegionPrior", "spec": {...}, "weights": null} | null,
     "semprior_version": "0.1.0"}

  The prior is rebuilt from its name ([`semprior.priors.registry.PRIORS`][semprior.priors.registry.PRIORS]):
  ``"region"`` needs no file, ``"hrnet"`` / ``"sam"`` resolve their weights through `semprior.weights`
  (``weights_dir`` or ``$SEMPRIOR_WEIGHTS``). A prior without a name (custom module, random
  weights) must be passed as ``prior=`` when loading; it is checked against the recorded spec.

**One loader**, [`load_model`][semprior.models.io.load_model], opens every kind of file a user has:

- a ``save_pretrained`` folder, its ``model.safetensors`` or its ``config.json``;
- a trainer checkpoint ``.pt`` (``semprior train``: keys ``"model"``, ``"model_config"``,
  ``"prior"``, ``"text"``, ``"model_name"``: the registry entry; without it, the one model whose
  config class has every key of ``"model_config"``);
- an official BasicSR file (``{"params": ...}`` / ``{"params_ema": ...}``: the releases a model's pretrained
  table lists, e.g. Retinexformer's);
- a bare state dict (``torch.save(model.state_dict())``) when ``name`` is given.

(The torch files, the last three, are read in `semprior.models.torch_files`; every path builds the
model and loads its weights with `semprior.models.build`.)

Every load is strict (``strict=True``; a mismatch names the missing and unexpected keys) and
reads ``.pt`` files with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from semprior._atomic import atomic_write_bytes, atomic_write_text
from semprior._config import ConfigError
from semprior._version import __version__
from semprior.models.build import build_from_config, config_from_file, load_weights
from semprior.models.registry import MODELS, get_model_entry, list_models
from semprior.models.torch_files import load_torch_file
from semprior.priors.registry import build_prior, prior_record, spec_dict

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "HUB_PREFIX",
    "WEIGHTS_NAME",
    "hub_download",
    "local_model_path",
    "from_pretrained",
    "load_model",
    "model_name",
    "read_config_json",
    "save_pretrained",
]

FORMAT = "semprior-model"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: ``hf://org/name``: a Hugging Face Hub model repository (``semprior[hub]``), accepted wherever a model path is
HUB_PREFIX = "hf://"


def hub_download(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | None = None,
) -> Path:
    """Fetch ``config.json`` + ``model.safetensors`` of ``"org/name"`` / ``"hf://org/name"`` into the Hugging
    Face cache (a file already there is not fetched again) and return the folder.

    ``local_files_only=True`` (or ``HF_HUB_OFFLINE=1``) reads the cache only and never opens a connection.

    Raises:
        ImportError: huggingface_hub is not installed (``pip install 'semprior[hub]'``).
        FileNotFoundError: offline and the files are not in the cache.
    """
    from semprior._optional import require

    hf = require("huggingface_hub", extra="hub", purpose="hf:// model paths")
    repo_id = repo_id.removeprefix(HUB_PREFIX)
    try:
        folder = hf.snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME],
            library_name="semprior",
            library_version=__version__,
        )
    except FileNotFoundError as exc:  # huggingface_hub's LocalEntryNotFoundError (>= 0.24 and 2.x)
        raise FileNotFoundError(
            f"{repo_id} was not fetched from the Hub and is not in the Hugging Face cache "
            f"({cache_dir or 'default cache'}): {exc}. Offline (local_files_only=True or HF_HUB_OFFLINE=1) only the "
            "cache is read: download it once online, or pass a local save_pretrained folder to from_pretrained"
        ) from exc
    return Path(folder)


def local_model_path(path: str | os.PathLike) -> Path:
    """``path`` as a local path: ``hf://org/name`` is fetched with [`hub_download`][semprior.models.io.hub_download]."""
    if isinstance(path, str) and path.startswith(HUB_PREFIX):
        return hub_download(path)
    return Path(path).expanduser()


def model_name(model: nn.Module) -> str:
    """The registry name whose config class is ``type(model.config)`` (first in sorted order)."""
    cfg = getattr(model, "config", None)
    for name in list_models():
        if type(cfg) is MODELS[name].config_cls:
            return name
    raise ValueError(
        f"{type(model).__name__} is not a registered model (its config {type(cfg).__name__} matches no entry of "
        "semprior.list_models()); register it (docs/models.md) or pass name="
    )


def save_pretrained(model: nn.Module, directory: str | os.PathLike, *, name: str | None = None) -> Path:
    """Write ``model`` as ``directory/model.safetensors`` + ``directory/config.json`` (atomically).

    The frozen prior (``model.prior``) is recorded by name, never stored; a prior that shares a
    tensor with the state dict is refused (it would be stored twice).

    Examples:
        >>> import tempfile, semprior
        >>> net = semprior.create_model("retinexformer", width=4, blocks=(1, 1, 1))
        >>> d = save_pretrained(net, tempfile.mkdtemp())
        >>> sorted(p.name for p in d.iterdir())
        ['config.json', 'model.safetensors']
        >>> type(from_pretrained(d)).__name__
        'Retinexformer'
    """
    from safetensors.torch import save as safetensors_bytes  # serialises to bytes; no file is opened

    name = name or model_name(model)
    entry = get_model_entry(name)
    cfg: Any = getattr(model, "config", None)
    if type(cfg) is not entry.config_cls:
        raise TypeError(f"model config {type(cfg).__name__} is not {entry.name!r}'s {entry.config_cls.__name__}")
    prior = getattr(model, "prior", None)
    state = model.state_dict()
    if prior is not None:
        frozen = {t.data_ptr() for t in [*prior.parameters(), *prior.buffers()] if t.numel()}
        inside = [k for k, v in state.items() if v.numel() and v.data_ptr() in frozen]
        if inside:
            raise ValueError(
                f"the frozen prior's tensors are in the state dict ({inside[:3]} ...); keep the prior "
                "out of the model's submodules (see docs/models.md)"
            )
    tensors: dict[str, Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for k, v in state.items():
        v = v.detach().cpu()
        key = (v.untyped_storage().data_ptr(), v.storage_offset())
        tensors[k] = v.clone().contiguous() if key in seen or not v.is_contiguous() else v
        seen.add(key)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": name,
        "config": cfg.to_dict(),
        "prior": prior_record(prior),
        "semprior_version": __version__,
    }
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / WEIGHTS_NAME, safetensors_bytes(tensors, metadata={"format": "pt"}))
    atomic_write_text(out / CONFIG_NAME, json.dumps(record, indent=2, default=_json_default) + "\n")
    return out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"config value {obj!r} ({type(obj).__name__}) is not JSON-serialisable")


def _pretrained_files(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        cfg, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
    elif path.name == CONFIG_NAME:
        cfg, weights = path, path.parent / WEIGHTS_NAME
    else:
        cfg, weights = path.parent / CONFIG_NAME, path
    for p in (cfg, weights):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; a save_pretrained folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    return cfg, weights


def _names_the_file(load: Any) -> Any:
    """A loader whose ``ValueError`` (bad config value, refused build) names the file it was loading."""
    import copy
    import functools

    @functools.wraps(load)
    def wrapper(path: Any, *args: Any, **kwargs: Any) -> nn.Module:
        try:
            return load(path, *args, **kwargs)
        except ValueError as exc:
            if str(path) in str(exc) or not exc.args:
                raise
            named = copy.copy(exc)
            named.args = (f"{path}: {exc.args[0]}", *exc.args[1:])
            raise named from exc

    return wrapper


@_names_the_file
def from_pretrained(
    path: str | os.PathLike,
    *,
    prior: nn.Module | None = None,
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    **overrides: Any,
) -> nn.Module:
    """Load a [`save_pretrained`][semprior.models.io.save_pretrained] folder (or its ``model.safetensors`` /
    ``config.json``); eval mode.

    ``overrides`` change non-architectural config fields (e.g. ``backend="streaming"``); a
    change that alters the state dict fails the strict load.
    """
    import safetensors.torch

    cfg_path, weights = _pretrained_files(local_model_path(path))
    record = read_config_json(cfg_path)
    try:
        state = safetensors.torch.load_file(str(weights), device="cpu")
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"could not read {weights} as safetensors ({type(exc).__name__}: {exc})") from exc
    name: str = record["model"]  # read_config_json checked it is a registry name
    entry = get_model_entry(name)
    prior_obj = _prior_for(record.get("prior"), prior, weights_dir, str(cfg_path))
    cfg = config_from_file(entry, record.get("config", {}), overrides, prior_obj, str(cfg_path))
    return load_weights(build_from_config(entry, cfg, prior_obj, str(cfg_path)), state, str(weights), device)


def read_config_json(cfg_path: Path) -> dict[str, Any]:
    """The ``config.json`` record of a ``save_pretrained`` folder, every field's shape checked.

    Each problem is one ``ConfigError`` line naming the file and the key: invalid JSON (with its
    line and column), a top level that is not an object, a ``format_version`` that is not a
    whole number, a ``model`` that is not a string, a ``config`` or ``prior`` that is not an object.
    """
    try:
        record = json.loads(cfg_path.read_text(), parse_constant=lambda c: float(c))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{cfg_path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "re-save the model with save_pretrained"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{cfg_path} is not a UTF-8 JSON file ({exc.reason}); re-save the model with save_pretrained"
        ) from exc
    except RecursionError:
        raise ConfigError(f"{cfg_path} nests JSON too deeply; re-save the model with save_pretrained") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        got = type(record).__name__ if not isinstance(record, dict) else repr(record.get("format"))
        raise ConfigError(
            f'{cfg_path} is not a semprior model config (expected an object with "format": "{FORMAT}", got {got})'
        )
    version = record.get("format_version", 0)
    if (
        isinstance(version, bool)
        or not isinstance(version, (int, float))
        or not float(version).is_integer()
        or version != version
        or abs(version) == float("inf")
    ):
        raise ConfigError(f'{cfg_path}: "format_version" must be a whole number, got {str(version)[:40]}')
    if version > FORMAT_VERSION:
        raise ConfigError(
            f"{cfg_path} has format_version {int(version)}; this semprior reads up to "
            f"{FORMAT_VERSION}: upgrade semprior"
        )
    if not isinstance(record.get("model"), str) or record["model"] not in list_models():
        raise ConfigError(
            f'{cfg_path}: "model" must be a registry name (one of '
            f"{list_models()}), got {str(record.get('model'))[:40]!r}"
        )
    if not isinstance(record.get("config", {}), dict):
        raise ConfigError(
            f'{cfg_path}: "config" must be an object of model config fields, got {type(record["config"]).__name__}'
        )
    prior = record.get("prior")
    if prior is not None and not (
        isinstance(prior, dict)
        and isinstance(prior.get("name"), (str, type(None)))
        and isinstance(prior.get("spec", {}), (dict, type(None)))
    ):
        raise ConfigError(
            f'{cfg_path}: "prior" must be null or an object like {{"name": "region", "spec": '
            f"{{...}}}} (as save_pretrained writes it), got {str(prior)[:40]}"
        )
    return record


def _prior_for(rec: dict | None, given: nn.Module | None, weights_dir: Any, source: str) -> nn.Module | None:
    if rec is None:
        if given is not None:
            raise ValueError(f"{source} was saved without a prior; drop prior=")
        return None
    if given is None:
        if not rec.get("name"):
            raise ValueError(
                f"{source} records a {rec.get('class')} prior {rec.get('spec', {}).get('name')!r} that cannot be "
                "rebuilt by name (custom module or random weights); pass the same prior as prior="
            )
        given = build_prior(rec["name"], weights_dir)
    want = rec.get("spec")
    got = spec_dict(given)
    if (
        want is not None
        and got is not None
        and {k: want[k] for k in ("channels", "strides")} != {k: got[k] for k in ("channels", "strides")}
    ):
        raise ValueError(
            f"the prior's spec {got} differs from the one {source} was saved with ({want}); pass the "
            "prior the model was trained with"
        )
    return given


@_names_the_file
def load_model(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    prior: str | nn.Module | None = None,
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    param_key: str | None = None,
    **overrides: Any,
) -> nn.Module:
    """Load any model file for inference (see the module docstring); returns the model in eval mode on ``device``.

    Args:
        path: a ``save_pretrained`` folder/file, a trainer ``.pt``, a BasicSR ``.pth`` or a state dict.
        name: registry name; needed for bare state dicts, checked against what the file records.
        prior: a [`PRIORS`][semprior.priors.registry.PRIORS] name or module; default: what the file records.
        weights_dir: where named prior weights are found.
        device: where the model goes (``"cpu"``, ``"cuda"``, ...).
        param_key: BasicSR files: ``"params"`` or ``"params_ema"`` (default: ``"params"`` when
            present, as the official test script); trainer checkpoints: ``"model"`` (default; in
            ``best.pt`` the weight average when the run used ``ema_decay``) or ``"ema"`` (the
            average stored beside the raw weights in ``last.pt``).
        **overrides: config fields for files that carry no config (official/bare state dicts).
    """
    path = local_model_path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.is_dir() or path.suffix in (".safetensors", ".json"):
        rec_name = read_config_json(_pretrained_files(path)[0])["model"]
        if name is not None and get_model_entry(name).config_cls is not get_model_entry(rec_name).config_cls:
            raise ValueError(f"{path} holds a {rec_name!r} model, not {name!r}")
        if isinstance(prior, str):
            prior = build_prior(prior, weights_dir)
        return from_pretrained(path, prior=prior, weights_dir=weights_dir, device=device, **overrides)
    return load_torch_file(path, name, prior, weights_dir, device, param_key, overrides)
