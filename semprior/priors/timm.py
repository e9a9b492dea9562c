"""Any timm ``features_only`` backbone as a (class-agnostic) prior."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from semprior._optional import require
from semprior.priors.base import PriorOutput, PriorSpec, SegPrior, crop_to_strides, pad_to_multiple
from semprior.weights import LoadReport, load_checkpoint, load_mapped

__all__ = ["TimmPrior"]


class TimmPrior(SegPrior):
    """A timm backbone in ``features_only`` mode; the spec comes from its ``feature_info``.

    The input is normalised with the model's pretrained config mean/std (ImageNet by default),
    padded (replicate) to a multiple of the coarsest stride (some backbones, e.g. HRNet, fail
    otherwise) and features are cropped back to ``ceil(H / stride)``.

    Args:
        model_name: any timm model name that supports ``features_only``.
        pretrained: let timm load its pretrained weights (timm may download; opt-in).
        weights: a local checkpoint of the *full* timm model (``model.state_dict()`` layout);
            loaded strictly: every backbone tensor must be present; keys of the parts
            ``features_only`` drops (classifier, head) are ignored and counted.
        out_indices: which feature levels to return (timm's ``out_indices``).
        **kwargs: passed to ``timm.create_model``.

    Shape:
        - Input: ``(B, 3, H, W)`` in ``[0, 1]``
        - features[i]: ``(B, feature_info.channels()[i], ceil(H / s_i), ceil(W / s_i))``
        - logits: ``None``

    Examples:
        >>> prior = TimmPrior("resnet18", out_indices=(1, 2))
        >>> prior.spec.channels, prior.spec.strides
        ((64, 128), (4, 8))
        >>> [tuple(f.shape[-2:]) for f in prior(torch.rand(1, 3, 97, 131)).features]
        [(25, 33), (13, 17)]
    """

    mean: Tensor  # buffers, declared for the type checker
    std: Tensor

    def __init__(
        self,
        model_name: str,
        pretrained: bool = False,
        weights: str | os.PathLike | None = None,
        out_indices: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        timm = require("timm", purpose="TimmPrior")
        if pretrained and weights is not None:
            raise ValueError("pass either pretrained=True (timm's weights) or weights=path, not both")
        if out_indices is not None:
            kwargs["out_indices"] = tuple(out_indices)
        model = timm.create_model(model_name, pretrained=pretrained, features_only=True, **kwargs)
        info = model.feature_info
        super().__init__(
            PriorSpec(
                f"timm-{model_name}", channels=tuple(info.channels()), strides=tuple(info.reduction()), num_classes=0
            )
        )
        self.model = model
        cfg = getattr(model, "pretrained_cfg", None) or {}
        mean, std = cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225))
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"{model_name}: expects {len(mean)}-channel input; priors take RGB")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.pad_multiple = max(self.spec.strides)
        self.load_report: LoadReport | None = None
        if weights is not None:
            self.load_report = self._load(weights)
        self.freeze()

    def _load(self, weights: str | os.PathLike) -> LoadReport:
        state = load_checkpoint(weights)
        own = set(self.model.state_dict())

        # timm's FeatureListNet keeps module names but flattens a nested top-level path's first
        # '.' to '_' (e.g. 'stages.0' -> 'stages_0'); try both spellings explicitly.
        def kmap(k: str) -> str | None:
            if k in own:
                return "model." + k
            alt = k.replace(".", "_", 1)
            if alt in own:
                return "model." + alt
            return None

        return load_mapped(self, state, kmap, source=str(weights), ignore=lambda k: kmap(k) is None)

    def _forward(self, img: Tensor) -> PriorOutput:
        h, w = img.shape[-2:]
        x = (pad_to_multiple(img, self.pad_multiple) - self.mean) / self.std
        feats = self.model(x)
        return PriorOutput(features=crop_to_strides(list(feats), self.spec.strides, h, w))
