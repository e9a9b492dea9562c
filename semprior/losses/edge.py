"""Edge loss: squared difference of image gradients (Sobel, via kornia)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from semprior._checks import check_image, check_reduction, check_same_shape, reduce

__all__ = ["EdgeLoss", "edge_loss", "image_gradients"]


def image_gradients(x: Tensor, mode: Literal["sobel", "diff"] = "sobel", normalized: bool = True) -> Tensor:
    """Horizontal and vertical first derivatives of every channel.

    Uses ``kornia.filters.spatial_gradient`` (replicate padding). ``normalized=True`` (default)
    divides the kernel by the sum of its absolute weights (8 for Sobel, 2 for central differences),
    so a unit ramp has derivative 1; ``normalized=False`` uses the textbook kernel (Sobel
    ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``), 8 times larger for Sobel.

    Shape:
        - Input: `(B, C, H, W)`
        - Output: `(B, C, 2, H, W)` with ``[:, :, 0]`` = d/dx, ``[:, :, 1]`` = d/dy

    Examples:
        >>> image_gradients(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 2, 8, 8])
    """
    import kornia

    if mode not in ("sobel", "diff"):
        raise ValueError(f"mode must be 'sobel' or 'diff', got {mode!r}")
    return kornia.filters.spatial_gradient(x, mode=mode, order=1, normalized=normalized)


def edge_loss(
    input: Tensor,
    target: Tensor,
    mode: Literal["sobel", "diff"] = "sobel",
    reduction: Literal["mean", "sum", "none"] = "mean",
    normalized: bool = True,
) -> Tensor:
    r"""Mean squared difference of the image gradients, per sample, then reduced.

    $$
    \frac{1}{2CHW}\sum \big(\nabla x - \nabla y\big)^2
    $$

    with $\nabla$ the Sobel (default) or central-difference derivative in x and y.

    Args:
        input: `(B, C, H, W)` prediction.
        target: `(B, C, H, W)` reference.
        mode: ``"sobel"`` or ``"diff"`` (kornia ``spatial_gradient`` modes).
        reduction: ``"mean"`` / ``"sum"`` over the batch or ``"none"`` for `(B,)`.
        normalized: normalised derivative kernels (default) or the textbook ones (a Sobel loss
            64 times larger); see [`image_gradients`][semprior.losses.edge.image_gradients].

    Shape:
        - Input: `(B, C, H, W)` twice
        - Output: scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> round(edge_loss(x, x + 0.3).item(), 6)  # a constant shift has the same edges
        0.0
    """
    check_image(input, "input", channels=None)
    check_image(target, "target", channels=None)
    check_same_shape(input, target)
    check_reduction(reduction)
    d = image_gradients(input, mode, normalized) - image_gradients(target, mode, normalized)
    return reduce(d.square().flatten(1).mean(dim=1), reduction)


class EdgeLoss(nn.Module):
    """Module form of [`edge_loss`][semprior.losses.edge.edge_loss].

    Shape:
        - Input: `(B, C, H, W)` twice
        - Output: scalar, or `(B,)` with ``reduction="none"``

    Examples:
        >>> EdgeLoss()(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)).shape
        torch.Size([])
    """

    def __init__(
        self,
        mode: Literal["sobel", "diff"] = "sobel",
        reduction: Literal["mean", "sum", "none"] = "mean",
        normalized: bool = True,
    ) -> None:
        super().__init__()
        if mode not in ("sobel", "diff"):
            raise ValueError(f"mode must be 'sobel' or 'diff', got {mode!r}")
        self.mode = mode
        self.reduction = check_reduction(reduction)
        self.normalized = bool(normalized)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return edge_loss(input, target, self.mode, self.reduction, self.normalized)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, reduction={self.reduction!r}, normalized={self.normalized}"
