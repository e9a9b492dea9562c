"""YAML <-> frozen dataclasses (re-exported from `semprior._config`, the low-layer home), and the shipped recipes.

Kept so ``from semprior.engine.config import from_dict, load_yaml`` goes on working.

The training recipes ship inside the package (``semprior/configs/``; the repository's ``configs/``
is a link to it), so ``semprior train --config deepspg_lolv1`` works from a wheel as well as from a
clone. [`resolve_config`][semprior.engine.config.resolve_config] turns what the user typed into a file.

Examples:
    >>> from semprior.engine.config import resolve_config, shipped_recipes
    >>> "deepspg_lolv1" in shipped_recipes()
    True
    >>> resolve_config("deepspg_lolv1").name
    'deepspg_lolv1.yaml'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from semprior._config import from_dict, load_yaml

__all__ = ["RECIPES_DIR", "apply_overrides", "from_dict", "load_yaml", "resolve_config", "shipped_recipes"]

#: where the shipped training recipes live (inside the installed package)
RECIPES_DIR = Path(__file__).resolve().parent.parent / "configs"


def shipped_recipes() -> list[str]:
    """Names of the shipped recipes (``"deepspg_lolv1"``, ``"cpu/retinexformer_lolv1"``, ...), sorted."""
    return sorted(p.relative_to(RECIPES_DIR).with_suffix("").as_posix() for p in RECIPES_DIR.rglob("*.yaml"))


def resolve_config(name: str | Path) -> Path:
    """A YAML file from a path, or from the name of a shipped recipe (with or without ``.yaml``/``configs/``).

    An existing file wins; otherwise the name is looked up among [`shipped_recipes`][semprior.engine.config.shipped_recipes].
    Neither is an error that lists the shipped names.
    """
    path = Path(name).expanduser()
    if path.is_file():
        return path
    key = Path(name).as_posix()
    for prefix in ("semprior/configs/", "configs/"):
        key = key.removeprefix(prefix)
    key = key.removesuffix(".yaml").removesuffix(".yml")
    if key in shipped_recipes():
        return RECIPES_DIR / f"{key}.yaml"
    raise FileNotFoundError(
        f"config file not found: {name} (nor a shipped recipe of that name); give a YAML path or a shipped recipe: "
        + ", ".join(shipped_recipes())
    )


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of the YAML mapping ``raw`` with ``key.sub=value`` overrides applied (``semprior train --set``).

    Values are parsed as YAML (``train.lr=2e-4`` is a float, ``train.patch_stages=[[0,128]]`` a
    list, ``prior=none`` a string). Unknown keys are caught afterwards by ``from_dict``, which names
    the valid ones.

    Examples:
        >>> apply_overrides({"train": {"lr": 1e-3}}, ["train.lr=2e-4", "train.steps=10"])
        {'train': {'lr': 0.0002, 'steps': 10}}
    """
    import copy

    import yaml

    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or any(not k for k in key.strip().split(".")):
            raise ValueError(f"--set {item!r}: write KEY=VALUE with a dotted KEY, e.g. --set train.lr=2e-4")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ValueError(f"--set {item!r}: the value is not valid YAML ({type(exc).__name__}); quote it") from None
        if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
            value = float(value)  # YAML 1.1 reads 2e-4 (no dot) as a string
        *parents, last = key.strip().split(".")
        node = out
        for i, k in enumerate(parents):
            child = node.setdefault(k, {})
            if not isinstance(child, dict):
                raise ValueError(f"--set {item!r}: {'.'.join(parents[: i + 1])} is {child!r}, not a section")
            node = child
        node[last] = value
    return out
