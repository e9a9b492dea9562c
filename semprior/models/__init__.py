"""Enhancement models, their registry and their protocol.

``create_model(name, pretrained=..., **overrides)`` builds any registered model;
``list_models()`` names them. Every model follows `semprior.models.protocol`; the one
checkpoint format and loader live in `semprior.hub`.

Names are resolved lazily (PEP 562): ``import semprior.models.diffusion`` does not import every
model. ``__all__`` is this subpackage's public API.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "CLASSICAL": "semprior.models.classical",
    "CUGD": "semprior.models.cugd",
    "CUGDConfig": "semprior.models.cugd",
    "DeepSPG": "semprior.models.deepspg",
    "DeepSPGConfig": "semprior.models.deepspg",
    "Enhancer": "semprior.models.protocol",
    "LossWeights": "semprior.models.deepspg",
    "MODELS": "semprior.models.registry",
    "PRIORS": "semprior.models.registry",
    "Phase": "semprior.models.phases",
    "PhaseSchedule": "semprior.models.phases",
    "Retinexformer": "semprior.models.retinexformer",
    "RetinexformerConfig": "semprior.models.retinexformer",
    "SLLEN": "semprior.models.sllen",
    "SLLENConfig": "semprior.models.sllen",
    "build_prior": "semprior.models.registry",
    "create_model": "semprior.models.registry",
    "get_model_entry": "semprior.models.registry",
    "is_enhancer": "semprior.models.protocol",
    "list_models": "semprior.models.registry",
    "register_model": "semprior.models.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'semprior.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
