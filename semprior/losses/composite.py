"""DeepSPG's total loss: a weighted sum of unweighted library losses, weights in
[`LossWeights`][semprior.losses.composite.LossWeights].

$$
\\mathcal{L} = \\lambda_1\\,\\mathrm{MSE}(\\hat y, y) + \\lambda_2\\,\\mathcal{L}_{edge}(\\hat y, y)
  + \\lambda_3\\,\\mathrm{KL}\\big(s(y) \\,\\|\\, s(\\hat y)\\big)
  + \\lambda_4\\,\\big(\\cos(\\hat y, t_{low}) - \\cos(\\hat y, t_{high})\\big)
$$

with ``s`` the frozen prior's segmentation logits (gradients flow through the prior into
``\\hat y``; the prior's weights stay frozen) and ``t`` CLIP text embeddings of the prompts
([`semprior.losses.clip_prompt.CLIPPromptLoss`][semprior.losses.clip_prompt.CLIPPromptLoss]). An optional SSIM term
(``ssim``, not in the paper, default 0) is available as a lever for small-data training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from semprior._checks import check_image, check_same_shape
from semprior.losses.edge import edge_loss
from semprior.losses.exposure import exposure_loss, gtmean_loss
from semprior.losses.pixel import pixel_loss
from semprior.losses.semantic_kl import semantic_kl_loss
from semprior.losses.ssim import ssim_loss

__all__ = ["LossWeights", "DeepSPGLoss", "deepspg_loss"]


@dataclass(frozen=True)
class LossWeights:
    """λ1..λ4 of the DeepSPG loss (the paper does not print its values; these are our choices).

    Attributes:
        pixel: λ1, weight of the MSE.
        edge: λ2, weight of the Sobel-gradient MSE ([`semprior.losses.edge.edge_loss`][semprior.losses.edge.edge_loss]).
        semantic_kl: λ3, weight of KL(prior(gt) || prior(output)) on segmentation logits.
        text: λ4, weight of the CLIP prompt term cos(out, "low-light") - cos(out, "high-light").
        ssim: extra ``1 - SSIM`` term (not in the paper; default off).
        exposure: extra global-brightness term ([`exposure_loss`][semprior.losses.exposure.exposure_loss];
            not in the paper; default off).
        gtmean: extra GT-mean-corrected MSE ([`gtmean_loss`][semprior.losses.exposure.gtmean_loss]): structure
            and colour, blind to brightness (not in the paper; default off). With ``pixel: 0`` and
            ``exposure`` + ``gtmean``, brightness and structure are learnt apart.

    Examples:
        >>> LossWeights(text=0.0).text
        0.0
    """

    pixel: float = 1.0
    edge: float = 0.5
    semantic_kl: float = 0.01
    text: float = 0.01
    ssim: float = 0.0
    exposure: float = 0.0
    gtmean: float = 0.0

    def __post_init__(self) -> None:
        for name in ("pixel", "edge", "semantic_kl", "text", "ssim", "exposure", "gtmean"):
            v = float(getattr(self, name))
            if not v >= 0:
                raise ValueError(f"LossWeights.{name} must be >= 0, got {getattr(self, name)}")
            object.__setattr__(self, name, v)


def deepspg_loss(
    output: Tensor,
    target: Tensor,
    weights: LossWeights,
    prior: Callable | None = None,
    text_loss: Callable[[Tensor], Tensor] | None = None,
    kl_reverse: bool = False,
    edge_normalized: bool = True,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Total DeepSPG loss and the dict of unweighted terms (detached) that made it.

    A term whose weight is 0 is neither computed nor reported. A positive ``semantic_kl`` needs a
    ``prior`` with segmentation logits; a positive ``text`` needs ``text_loss``. The semantic KL
    is KL(seg(target) ‖ seg(output)), or KL(seg(output) ‖ seg(target)) with ``kl_reverse=True``;
    the edge term uses normalised Sobel kernels unless ``edge_normalized=False``
    ([`semprior.losses.edge.edge_loss`][semprior.losses.edge.edge_loss]).

    Shape:
        - output, target: `(B, 3, H, W)` -> total: scalar

    Examples:
        >>> out, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
        >>> total, terms = deepspg_loss(out, gt, LossWeights(semantic_kl=0, text=0))
        >>> sorted(terms)
        ['edge', 'pixel']
    """
    check_image(output, "output", finite=False)
    check_image(target, "target")
    check_same_shape(output, target, ("output", "target"))
    terms: dict[str, Tensor] = {}
    total = output.new_zeros(())
    if weights.pixel:
        terms["pixel"] = pixel_loss(output, target, "mse")
        total = total + weights.pixel * terms["pixel"]
    if weights.edge:
        terms["edge"] = edge_loss(output, target, normalized=edge_normalized)
        total = total + weights.edge * terms["edge"]
    if weights.ssim:
        terms["ssim"] = ssim_loss(output, target)
        total = total + weights.ssim * terms["ssim"]
    if weights.exposure:
        terms["exposure"] = exposure_loss(output, target)
        total = total + weights.exposure * terms["exposure"]
    if weights.gtmean:
        terms["gtmean"] = gtmean_loss(output, target)
        total = total + weights.gtmean * terms["gtmean"]
    if weights.semantic_kl:
        if prior is None:
            raise ValueError(
                "LossWeights.semantic_kl > 0 needs a prior with segmentation logits; pass prior= or set it to 0"
            )
        pred = prior(output, grad=True).logits
        with torch.no_grad():
            ref = prior(target).logits
        if pred is None or ref is None:
            raise ValueError(
                f"the prior {getattr(getattr(prior, 'spec', None), 'name', prior)!r} gives no segmentation logits "
                "(num_classes == 0); set LossWeights.semantic_kl = 0 or use a prior with logits"
            )
        terms["semantic_kl"] = semantic_kl_loss(pred, ref, reverse=kl_reverse)
        total = total + weights.semantic_kl * terms["semantic_kl"]
    if weights.text:
        if text_loss is None:
            raise ValueError("LossWeights.text > 0 needs text_loss= (e.g. CLIPPromptLoss); pass one or set it to 0")
        terms["text"] = text_loss(output)
        total = total + weights.text * terms["text"]
    return total, {k: v.detach() for k, v in terms.items()}


class DeepSPGLoss(nn.Module):
    """Module form of [`deepspg_loss`][semprior.losses.composite.deepspg_loss]; holds the weights, the prior and the
    text loss.

    Shape:
        - output, target: `(B, 3, H, W)` -> ``(total scalar, {term: scalar})``

    Examples:
        >>> loss = DeepSPGLoss(LossWeights(semantic_kl=0, text=0))
        >>> total, terms = loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
        >>> total.dim()
        0
    """

    def __init__(
        self,
        weights: LossWeights | None = None,
        prior: nn.Module | None = None,
        text_loss: nn.Module | None = None,
        kl_reverse: bool = False,
        edge_normalized: bool = True,
    ) -> None:
        super().__init__()
        self.weights = weights or LossWeights()
        self.kl_reverse, self.edge_normalized = bool(kl_reverse), bool(edge_normalized)
        if self.weights.semantic_kl and prior is None:
            raise ValueError("LossWeights.semantic_kl > 0 needs a prior; pass prior= or set semantic_kl=0")
        if self.weights.semantic_kl and getattr(getattr(prior, "spec", None), "num_classes", 1) == 0:
            raise ValueError(
                f"LossWeights.semantic_kl > 0 but the prior {prior.spec.name!r} has no segmentation logits "  # type: ignore[union-attr]
                "(spec.num_classes == 0); set semantic_kl=0 or use a prior with logits"
            )
        if self.weights.text and text_loss is None:
            raise ValueError("LossWeights.text > 0 needs text_loss= (e.g. CLIPPromptLoss); pass one or set text=0")
        # frozen helpers kept out of the module tree: no state_dict entries, no parameters counted;
        # priors follow the input's device by themselves (SegPrior protocol)
        self._frozen = (prior, text_loss)

    @property
    def prior(self) -> nn.Module | None:
        return self._frozen[0]

    @property
    def text_loss(self) -> nn.Module | None:
        return self._frozen[1]

    def forward(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return deepspg_loss(
            output, target, self.weights, self.prior, self.text_loss, self.kl_reverse, self.edge_normalized
        )

    def extra_repr(self) -> str:
        kl = "output||target" if self.kl_reverse else "target||output"
        return f"weights={self.weights}, kl={kl!r}, edge_normalized={self.edge_normalized}"
