"""semprior: semantic-prior low-light image enhancement components for PyTorch.

Images are ``(B, 3, H, W)`` float RGB in ``[0, 1]`` everywhere in the library.

Public names are resolved lazily (PEP 562), so ``import semprior`` is cheap and imports no
optional dependency (timm, open_clip, segment_anything, triton): a name is imported from its
module on first use. ``__all__`` is the curated public API; ``tests/test_api_surface.py`` pins it.
"""

from __future__ import annotations

from typing import Any

from semprior._lazy import lazy_attribute, lazy_dir
from semprior._version import __version__  # the one version source (pyproject.toml reads it)

# One line per public name: name -> module that defines it. Keep sorted within each group.
_EXPORTS: dict[str, str] = {
    # retinex
    "IlluminationEstimator": "semprior.retinex.illumination",
    "RetinexDecomposer": "semprior.retinex.decomposer",
    "RetinexOutput": "semprior.retinex.decomposer",
    "classical_decompose": "semprior.retinex.classical",
    # attention blocks
    "SEM": "semprior.attention.sem",
    "CUIEBlock": "semprior.attention.cuie",
    "IGAttentionBlock": "semprior.attention.ig",
    # kernels
    "channel_attention": "semprior.kernels.dispatch",
    # losses
    "PixelLoss": "semprior.losses.pixel",
    "pixel_loss": "semprior.losses.pixel",
    "EdgeLoss": "semprior.losses.edge",
    "edge_loss": "semprior.losses.edge",
    "SemanticKLLoss": "semprior.losses.semantic_kl",
    "semantic_kl_loss": "semprior.losses.semantic_kl",
    "SSIMLoss": "semprior.losses.ssim",
    "SemanticContextLoss": "semprior.losses.context",
    "semantic_context_loss": "semprior.losses.context",
    "ssim_loss": "semprior.losses.ssim",
    "CLIPPromptLoss": "semprior.losses.clip_prompt",
    # priors
    "SegPrior": "semprior.priors.base",
    "PriorSpec": "semprior.priors.base",
    "PriorOutput": "semprior.priors.base",
    "HRNetPrior": "semprior.priors.hrnet",
    "SAMPrior": "semprior.priors.sam",
    "TimmPrior": "semprior.priors.timm",
    "RegionPrior": "semprior.priors.region",
    # metrics and I/O
    "MetricProtocol": "semprior.metrics.protocol",
    "psnr": "semprior.metrics.psnr",
    "ssim": "semprior.metrics.ssim",
    "niqe": "semprior.metrics.niqe",
    "evaluate_unpaired": "semprior.engine.evaluate_unpaired",
    "ImageReadError": "semprior.data.io",
    "list_images": "semprior.data.io",
    "read_image": "semprior.data.io",
    "write_image": "semprior.data.io",
    # data and training
    "LowLightConfig": "semprior.data.synthesis",
    "PairedFolder": "semprior.data.datasets",
    "SyntheticPairs": "semprior.data.synthesis",
    "synthesize_low_light": "semprior.data.synthesis",
    "TrainConfig": "semprior.engine.trainer",
    "Trainer": "semprior.engine.trainer",
    "Phase": "semprior.models.phases",
    "PhaseSchedule": "semprior.models.phases",
    # models
    "DeepSPG": "semprior.models.deepspg",
    "DeepSPGConfig": "semprior.models.deepspg",
    "LossWeights": "semprior.models.deepspg",
    "CUGD": "semprior.models.cugd",
    "CUGDConfig": "semprior.models.cugd",
    "Retinexformer": "semprior.models.retinexformer",
    "RetinexformerConfig": "semprior.models.retinexformer",
    "SLLEN": "semprior.models.sllen",
    "SLLENConfig": "semprior.models.sllen",
    "create_model": "semprior.models.factory",
    "enhance": "semprior.engine.photo",
    "list_models": "semprior.models.registry",
    "load_model": "semprior.models.io",
    "save_pretrained": "semprior.models.io",
    "from_pretrained": "semprior.models.io",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return lazy_dir(globals(), _EXPORTS)
