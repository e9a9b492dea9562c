"""KL divergence between two segmentation distributions given as logits."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from semprior._checks import check_image, check_reduction, reduce

__all__ = ["SemanticKLLoss", "semantic_kl_loss"]


def semantic_kl_loss(
    input: Tensor,
    target: Tensor,
    temperature: float = 1.0,
    reverse: bool = False,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> Tensor:
    r"""Pixel-wise KL divergence between class distributions, averaged over pixels.

    With $p = \mathrm{softmax}(\text{target}/T)$ and $q = \mathrm{softmax}(\text{input}/T)$
    over the class dimension ``K``, the default direction is

    $$
    \mathrm{KL}(p \,\|\, q) = \sum_k p_k (\log p_k - \log q_k)
    $$

    i.e. **KL(target || input)**, the usual distillation direction: ``target`` is the reference
    (e.g. the prior's segmentation of the ground truth, typically detached) and ``input`` is
    pushed to cover it. ``reverse=True`` computes **KL(input || target)** instead. Both use
    ``log_softmax`` for both sides, so saturated logits (e.g. ``±1e4``) give finite values and
    gradients. The value is summed over ``K`` and averaged over pixels; it is not multiplied by
    ``T**2`` (losses here are unweighted).

    If the spatial sizes differ, ``target`` logits are resized bilinearly to ``input``'s size
    before the softmax.

    Args:
        input: `(B, K, H, W)` logits of the prediction.
        target: `(B, K, H', W')` logits of the reference.
        temperature: softmax temperature ``T > 0``.
        reverse: compute KL(input || target) instead of KL(target || input).
        reduction: ``"mean"`` / ``"sum"`` over the batch or ``"none"`` for `(B,)`.

    Shape:
        - Input: `(B, K, H, W)` and `(B, K, H', W')`
        - Output: scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> a = torch.randn(2, 5, 8, 8)
        >>> semantic_kl_loss(a, a).item()
        0.0
        >>> semantic_kl_loss(a, torch.randn(2, 5, 4, 4)).item() > 0
        True
    """
    check_image(input, "input", channels=None)
    check_image(target, "target", channels=None)
    check_reduction(reduction)
    if input.shape[:2] != target.shape[:2]:
        raise ValueError(
            f"input and target must have the same batch size and number of classes K, got "
            f"{tuple(input.shape)} and {tuple(target.shape)}; both must be (B, K, H, W) logits from the same label set"
        )
    if input.shape[1] < 2:
        raise ValueError(f"need at least 2 classes for a distribution over K, got K={input.shape[1]}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if input.shape[-2:] != target.shape[-2:]:
        target = F.interpolate(target, size=input.shape[-2:], mode="bilinear", align_corners=False)
    log_q = F.log_softmax(input / temperature, dim=1)
    log_p = F.log_softmax(target / temperature, dim=1)
    if reverse:
        log_p, log_q = log_q, log_p
    # kl_div(a, b, log_target=True) = exp(b) * (b - a) elementwise = p * (log p - log q)
    kl = F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(dim=1)
    return reduce(kl.flatten(1).mean(dim=1), reduction)


class SemanticKLLoss(nn.Module):
    """Module form of [`semantic_kl_loss`][semprior.losses.semantic_kl.semantic_kl_loss] (default direction
    KL(target || input)).

    Shape:
        - Input: `(B, K, H, W)` and `(B, K, H', W')` logits
        - Output: scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> SemanticKLLoss(temperature=2.0)(torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)).shape
        torch.Size([])
    """

    def __init__(
        self, temperature: float = 1.0, reverse: bool = False, reduction: Literal["mean", "sum", "none"] = "mean"
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.reverse = bool(reverse)
        self.reduction = check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return semantic_kl_loss(input, target, self.temperature, self.reverse, self.reduction)

    def extra_repr(self) -> str:
        direction = "input||target" if self.reverse else "target||input"
        return f"temperature={self.temperature}, direction={direction!r}, reduction={self.reduction!r}"
