"""The evaluation protocol: how an image pair is prepared before PSNR/SSIM are computed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from semprior._checks import check_image, check_same_shape

__all__ = ["MetricProtocol", "gray_mean", "prepare_image", "prepare_pair", "prepare_prediction", "rgb_to_y"]

# BT.601 luma weights (the grey used by cv2.COLOR_RGB2GRAY) for GT-mean correction
_GRAY = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class MetricProtocol:
    """How to prepare a pair before PSNR/SSIM: print it beside every number you report.

    LLIE papers differ in exactly these choices, and they move results by several dB; this
    object makes them explicit.

    Attributes:
        space: ``"rgb"`` (all three channels) or ``"y"`` (BT.601 luma as MATLAB ``rgb2ycbcr``:
            ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255`` on ``[0, 1]`` RGB).
        gt_mean: rescale the prediction so its mean grey level matches the target's
            (``pred * mean(gray(target)) / mean(gray(pred))``, clipped to ``[0, 1]``), as in
            the "GT-mean" rows of Retinexformer/LLFlow/KinD evaluations.
        data_range: dynamic range of the images (1.0 for ``[0, 1]`` images).
        crop_border: pixels removed from every side before computing.
        quantize: round both images to 8-bit levels (``round(x * 255) / 255``) first, as the
            MATLAB/uint8 evaluation scripts do (after GT-mean, before colour conversion).

    Examples:
        >>> print(MetricProtocol())
        PSNR/SSIM on RGB, uint8-quantised, data range 1, no border crop, no GT-mean
        >>> print(MetricProtocol(space="y", gt_mean=True, crop_border=4, quantize=False))
        PSNR/SSIM on Y (BT.601), float, data range 1, crop 4 px border, GT-mean corrected
    """

    space: Literal["rgb", "y"] = "rgb"
    gt_mean: bool = False
    data_range: float = 1.0
    crop_border: int = 0
    quantize: bool = True

    def __post_init__(self) -> None:
        if self.space not in ("rgb", "y"):
            raise ValueError(f"space must be 'rgb' or 'y', got {self.space!r}")
        if not self.data_range > 0:
            raise ValueError(f"data_range must be > 0, got {self.data_range}")
        if int(self.crop_border) != self.crop_border or self.crop_border < 0:
            raise ValueError(f"crop_border must be a non-negative integer, got {self.crop_border!r}")
        if not isinstance(self.gt_mean, bool) or not isinstance(self.quantize, bool):
            raise TypeError("gt_mean and quantize must be booleans (True/False)")

    def __str__(self) -> str:
        space = "RGB" if self.space == "rgb" else "Y (BT.601)"
        quant = "uint8-quantised" if self.quantize else "float"
        rng = f"{self.data_range:g}"
        crop = "no border crop" if self.crop_border == 0 else f"crop {self.crop_border} px border"
        gtm = "GT-mean corrected" if self.gt_mean else "no GT-mean"
        return f"PSNR/SSIM on {space}, {quant}, data range {rng}, {crop}, {gtm}"


def rgb_to_y(x: Tensor, data_range: float = 1.0) -> Tensor:
    """BT.601 luma as MATLAB ``rgb2ycbcr`` (offset 16/255 on a ``[0, data_range]`` scale).

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 1, H, W)`

    Examples:
        >>> round(rgb_to_y(torch.ones(1, 3, 2, 2))[0, 0, 0, 0].item() * 255, 4)
        235.0
    """
    w = x.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1) / 255.0
    return (x * w).sum(dim=1, keepdim=True) + 16.0 / 255.0 * data_range


def gray_mean(x: Tensor) -> Tensor:
    """Mean BT.601 grey level of each image (the quantity GT-mean matches), shape `(B,)`."""
    w = x.new_tensor(_GRAY).view(1, 3, 1, 1)
    return (x * w).sum(dim=1).flatten(1).mean(dim=1)


def prepare_pair(x: Tensor, y: Tensor, protocol: MetricProtocol) -> tuple[Tensor, Tensor]:
    """Apply a protocol to a prediction ``x`` and target ``y``: GT-mean, quantise, colour, crop.

    Shape:
        - Input: `(B, 3, H, W)` twice
        - Output: `(B, 3 or 1, H - 2c, W - 2c)` twice

    Examples:
        >>> protocol = MetricProtocol(space="y", crop_border=1)
        >>> a, b = prepare_pair(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), protocol)
        >>> a.shape
        torch.Size([1, 1, 6, 6])
    """
    check_image(x, "prediction")
    check_image(y, "target")
    check_same_shape(x, y, ("prediction", "target"))
    return prepare_prediction(x, gray_mean(y) if protocol.gt_mean else None, protocol), prepare_image(y, protocol)


def prepare_prediction(x: Tensor, target_gray_mean: Tensor | None, protocol: MetricProtocol) -> Tensor:
    """The prediction's half of [`prepare_pair`][semprior.metrics.protocol.prepare_pair]: GT-mean
    (against the target's mean grey level ``target_gray_mean``, shape `(B,)`, from
    [`gray_mean`][semprior.metrics.protocol.gray_mean]) when the protocol asks for it, then
    [`prepare_image`][semprior.metrics.protocol.prepare_image]."""
    if protocol.gt_mean:
        if target_gray_mean is None:
            raise ValueError("a GT-mean protocol needs the target's mean grey level: pass gray_mean(target)")
        mx = gray_mean(x).clamp_min(1e-12).view(-1, 1, 1, 1)
        x = (x * (target_gray_mean.view(-1, 1, 1, 1) / mx)).clamp_(0.0, protocol.data_range)
    return prepare_image(x, protocol)


def prepare_image(x: Tensor, protocol: MetricProtocol) -> Tensor:
    """Quantise, convert the colour space and crop one image as ``protocol`` says (GT-mean aside:
    it only rescales the prediction, see [`prepare_prediction`][semprior.metrics.protocol.prepare_prediction])."""
    r = protocol.data_range
    if protocol.quantize:  # round(clamp(x, 0, r) / r * 255) / 255 * r, in place on the clamped copy
        x = x.clamp(0.0, r)
        if r != 1:
            x.div_(r)
        x = x.mul_(255.0).round_().div_(255.0)
        if r != 1:
            x.mul_(r)
    if protocol.space == "y":
        x = rgb_to_y(x, r)
    c = int(protocol.crop_border)
    if c:
        if 2 * c >= min(x.shape[-2:]):
            raise ValueError(f"crop_border={c} removes the whole {tuple(x.shape[-2:])} image; use a smaller crop")
        x = x[..., c:-c, c:-c]
    return x
