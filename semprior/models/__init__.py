"""Enhancement models, their registry, their protocol and their saved-model format.

``create_model(name, pretrained=..., **overrides)`` (`semprior.models.factory`) builds any
registered model; ``list_models()`` names them. Each model file registers itself
(`semprior.models.registry`); importing this package imports them, so the registry is complete
(timm's way). Every model follows `semprior.models.protocol`; the one checkpoint format and
loader live in `semprior.models.io`. ``__all__`` is this subpackage's public API.
"""

from __future__ import annotations

from typing import Any

from semprior._lazy import lazy_attribute, lazy_dir

# the model files register themselves (semprior.models.registry.register_model) when imported
from semprior.models import classical, cugd, deepspg, retinexformer, sllen  # noqa: F401

_EXPORTS: dict[str, str] = {
    "CLASSICAL": "semprior.models.classical",
    "CUGD": "semprior.models.cugd",
    "CUGDConfig": "semprior.models.cugd",
    "DeepSPG": "semprior.models.deepspg",
    "DeepSPGConfig": "semprior.models.deepspg",
    "Enhancer": "semprior.models.protocol",
    "LossWeights": "semprior.models.deepspg",
    "MODELS": "semprior.models.registry",
    "PRIORS": "semprior.priors.registry",
    "Pretrained": "semprior.models.registry",
    "Phase": "semprior.models.phases",
    "PhaseSchedule": "semprior.models.phases",
    "Retinexformer": "semprior.models.retinexformer",
    "RetinexformerConfig": "semprior.models.retinexformer",
    "SLLEN": "semprior.models.sllen",
    "SLLENConfig": "semprior.models.sllen",
    "build_prior": "semprior.priors.registry",
    "create_model": "semprior.models.factory",
    "from_pretrained": "semprior.models.io",
    "get_model_entry": "semprior.models.registry",
    "is_enhancer": "semprior.models.protocol",
    "list_models": "semprior.models.registry",
    "load_model": "semprior.models.io",
    "register_model": "semprior.models.registry",
    "save_pretrained": "semprior.models.io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return lazy_dir(globals(), _EXPORTS)
