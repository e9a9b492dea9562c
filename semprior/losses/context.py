"""Semantic context regularisation (CUGD): match the result's segmentation features to the reference's.

The extractor is a frozen segmentation network (a [`semprior.priors.base.SegPrior`][semprior.priors.base.SegPrior], e.g.
SAM's image encoder, or any module returning features). The reference's features are constants;
the result's features carry gradients *to the image* (a ``SegPrior`` is called with
``grad=True``; its own parameters stay frozen). Per level, features are L2-normalised over
channels and compared with L1 or cosine distance; levels are averaged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._checks import check_image, check_reduction, check_same_shape, reduce

__all__ = ["SemanticContextLoss", "semantic_context_loss"]

_DISTANCES = ("l1", "cosine")


def _as_levels(out: Any) -> list[Tensor]:
    feats = getattr(out, "features", out)
    if isinstance(feats, Tensor):
        feats = [feats]
    if not isinstance(feats, Sequence) or not feats or not all(isinstance(f, Tensor) and f.dim() == 4 for f in feats):
        raise TypeError(
            "the extractor must return a (B, C, h, w) tensor, a list of them, or an object with a .features list "
            f"(a PriorOutput); got {type(out).__name__}"
        )
    return list(feats)


def _extract(extractor: Callable[..., Any], img: Tensor, grad: bool) -> list[Tensor]:
    from semprior.priors.base import SegPrior  # light module, no optional dependency

    if isinstance(extractor, SegPrior):
        return _as_levels(extractor(img, grad=grad))
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        return _as_levels(extractor(img))


def semantic_context_loss(
    output: Tensor,
    reference: Tensor,
    extractor: Callable[..., Any],
    *,
    distance: Literal["l1", "cosine"] = "l1",
    levels: Sequence[int] | None = None,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> Tensor:
    """Distance between the segmentation features of ``output`` and of ``reference``.

    Args:
        output: enhanced images (gradients flow back to them).
        reference: normal-light references (treated as constants).
        extractor: frozen feature network; a ``SegPrior`` or ``f(img) -> Tensor | list | PriorOutput``.
        distance: ``"l1"`` between channel-normalised features, or ``"cosine"`` (``1 - cos``).
        levels: which feature levels to compare (all when ``None``).
        reduction: over the batch.

    Raises:
        RuntimeError: when ``output`` requires grad but the extractor's features do not (an
            extractor that runs under ``torch.no_grad()`` would silently give no gradient).

    Shape:
        - output, reference: `(B, 3, H, W)` -> scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> net = torch.nn.Conv2d(3, 4, 3, padding=1).requires_grad_(False)
        >>> x = torch.rand(1, 3, 8, 8)
        >>> float(semantic_context_loss(x, x, net))
        0.0
    """
    check_image(output, "output")
    check_image(reference, "reference")
    check_same_shape(output, reference, ("output", "reference"))
    check_reduction(reduction)
    if distance not in _DISTANCES:
        raise ValueError(f"distance must be one of {_DISTANCES}, got {distance!r}")
    want_grad = output.requires_grad and torch.is_grad_enabled()
    out_f = _extract(extractor, output, grad=want_grad)
    ref_f = [f.detach() for f in _extract(extractor, reference.detach(), grad=False)]
    if len(out_f) != len(ref_f):
        raise RuntimeError(f"the extractor returned {len(out_f)} levels for output but {len(ref_f)} for reference")
    idx = range(len(out_f)) if levels is None else levels
    for i in idx:
        if not -len(out_f) <= i < len(out_f):
            raise ValueError(f"level {i} does not exist; the extractor returns {len(out_f)} levels")
    if want_grad and not any(out_f[i].requires_grad for i in idx):
        raise RuntimeError(
            "the extractor's features carry no gradient to the output image (it probably runs under torch.no_grad()); "
            "pass a SegPrior (called with grad=True) or a differentiable feature function"
        )
    per_level = []
    for i in idx:
        a, b = F.normalize(out_f[i], dim=1), F.normalize(ref_f[i], dim=1)
        if distance == "l1":
            d = (a - b).abs().sum(dim=1)
        else:
            d = 1.0 - (a * b).sum(dim=1)
        per_level.append(d.flatten(1).mean(dim=1))
    return reduce(torch.stack(per_level).mean(dim=0), reduction)


class SemanticContextLoss(nn.Module):
    """Module form of [`semantic_context_loss`][semprior.losses.context.semantic_context_loss]; the extractor is frozen
    on construction.

    Shape:
        - output, reference: `(B, 3, H, W)` -> scalar

    Examples:
        >>> loss = SemanticContextLoss(torch.nn.Conv2d(3, 4, 3, padding=1))
        >>> x = torch.rand(1, 3, 8, 8, requires_grad=True)
        >>> loss(x, torch.rand(1, 3, 8, 8)).requires_grad
        True
    """

    def __init__(
        self,
        extractor: Callable[..., Any],
        distance: Literal["l1", "cosine"] = "l1",
        levels: Sequence[int] | None = None,
        reduction: Literal["mean", "sum", "none"] = "mean",
    ) -> None:
        super().__init__()
        if distance not in _DISTANCES:
            raise ValueError(f"distance must be one of {_DISTANCES}, got {distance!r}")
        check_reduction(reduction)
        if isinstance(extractor, nn.Module):
            extractor.requires_grad_(False).eval()
        self.extractor = extractor
        self.distance, self.levels, self.reduction = distance, levels, reduction

    def train(self, mode: bool = True) -> SemanticContextLoss:
        super().train(mode)
        if isinstance(self.extractor, nn.Module):
            self.extractor.eval()  # the extractor is frozen: its BatchNorm/Dropout never switch to training
        return self

    def forward(self, output: Tensor, reference: Tensor) -> Tensor:
        return semantic_context_loss(
            output, reference, self.extractor, distance=self.distance, levels=self.levels, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"distance={self.distance!r}, levels={self.levels}, reduction={self.reduction!r}"
