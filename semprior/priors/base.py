"""The semantic-prior protocol: [`PriorSpec`][semprior.priors.base.PriorSpec],
[`PriorOutput`][semprior.priors.base.PriorOutput] and the [`SegPrior`][semprior.priors.base.SegPrior] base.

A *prior* is a frozen network (or a weight-free algorithm) that maps an RGB image in ``[0, 1]``
to multi-scale features (fine -> coarse) and optionally segmentation logits. Consumers (SEM
blocks, the semantic KL loss) are sized from `SegPrior.spec`, which is available right after
construction, so nobody hard-codes channel counts.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._checks import check_image

__all__ = ["PriorOutput", "PriorSpec", "SegPrior", "crop_to_strides", "out_size", "pad_to_multiple"]


@dataclass(frozen=True)
class PriorSpec:
    """What a prior produces, declared before any forward pass.

    Args:
        name: a short human-readable name, e.g. ``"hrnet_w48-ade20k"``.
        channels: channels of each feature level, fine -> coarse.
        strides: stride of each feature level w.r.t. the input, fine -> coarse. Level ``i`` of an
            ``H x W`` input has spatial size ``ceil(H / strides[i]) x ceil(W / strides[i])``.
        num_classes: classes of `PriorOutput.logits`; ``0`` when the prior gives no logits
            (class-agnostic).

    Examples:
        >>> spec = PriorSpec("toy", channels=(8, 16), strides=(4, 8), num_classes=0)
        >>> spec.num_levels, spec.feature_size(97, 131, level=1)
        (2, (13, 17))
    """

    name: str
    channels: tuple[int, ...]
    strides: tuple[int, ...]
    num_classes: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if not self.channels or len(self.channels) != len(self.strides):
            raise ValueError(
                f"PriorSpec needs one channel count per stride and at least one level, got "
                f"channels={self.channels} strides={self.strides}"
            )
        if any(c < 1 for c in self.channels) or any(s < 1 for s in self.strides):
            raise ValueError(
                f"channels and strides must be positive, got channels={self.channels} strides={self.strides}"
            )
        if list(self.strides) != sorted(self.strides):
            raise ValueError(
                f"feature levels must be ordered fine -> coarse (non-decreasing strides), got {self.strides}"
            )
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = class-agnostic), got {self.num_classes}")

    @property
    def num_levels(self) -> int:
        return len(self.channels)

    def feature_size(self, height: int, width: int, level: int) -> tuple[int, int]:
        """Spatial size of feature level ``level`` for an ``height x width`` input."""
        return out_size(height, width, self.strides[level])


@dataclass(frozen=True)
class PriorOutput:
    """The result of a prior's forward pass.

    Attributes:
        features: one tensor per level, fine -> coarse; level ``i`` is
            ``(B, spec.channels[i], ceil(H / spec.strides[i]), ceil(W / spec.strides[i]))``.
        logits: ``(B, spec.num_classes, h, w)`` segmentation logits (before softmax) at the
            resolution documented by the backend, or ``None`` for class-agnostic priors.
    """

    features: list[Tensor]
    logits: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


def out_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """``(ceil(height / stride), ceil(width / stride))``."""
    return math.ceil(height / stride), math.ceil(width / stride)


def pad_to_multiple(img: Tensor, multiple: int, mode: str = "replicate") -> Tensor:
    """Pad an image batch on the bottom/right so that both sides are multiples of ``multiple``.

    Shape:
        - Input: ``(B, C, H, W)``
        - Output: ``(B, C, ceil(H/m)*m, ceil(W/m)*m)``

    Examples:
        >>> pad_to_multiple(torch.rand(1, 3, 97, 131), 32).shape
        torch.Size([1, 3, 128, 160])
    """
    h, w = img.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return img
    if mode in ("replicate", "reflect"):
        return F.pad(img, (0, pw, 0, ph), mode=mode)
    if mode == "constant":
        return F.pad(img, (0, pw, 0, ph), mode="constant", value=0.0)
    raise ValueError(f"pad mode must be 'replicate', 'reflect' or 'constant', got {mode!r}")


def crop_to_strides(features: list[Tensor], strides: tuple[int, ...], height: int, width: int) -> list[Tensor]:
    """Crop features computed on a bottom/right-padded input back to ``ceil(H/s) x ceil(W/s)``."""
    out = []
    for f, s in zip(features, strides):
        h, w = out_size(height, width, s)
        if f.shape[-2] < h or f.shape[-1] < w:
            raise RuntimeError(
                f"feature map {tuple(f.shape)} is smaller than the {h}x{w} required for stride {s}; "
                "the backend padded too little"
            )
        out.append(f[..., :h, :w])
    return out


class SegPrior(nn.Module, abc.ABC):
    """Base class of every semantic prior: frozen, eval-only, input-following.

    Subclasses call ``super().__init__(spec)`` (or set ``self.spec`` before use) and implement
    `_forward` on an already-checked image; [`forward`][semprior.priors.base.SegPrior.forward] adds the protocol:

    - the input is checked (``(B, 3, H, W)``, floating point, finite);
    - the prior's parameters and buffers move to the input's device and floating dtype when
      they differ (a frozen prior has no optimizer state to invalidate);
    - the computation runs under ``torch.no_grad()`` (not ``inference_mode``, so outputs can feed
      a training graph as constants); ``grad=True`` lets gradients flow to the *input* (the prior's
      parameters stay frozen), e.g. for a semantic loss on an enhanced image;
    - the output is checked against `spec` (channels, strides, classes).

    Parameters are frozen at construction by [`freeze`][semprior.priors.base.SegPrior.freeze] and
    [`train`][semprior.priors.base.SegPrior.train] always keeps eval mode, so ``parent.train()`` cannot switch
    BatchNorm/Dropout in the prior.

    Examples:
        A complete prior in a few lines:
        >>> class MeanPrior(SegPrior):
        ...     def __init__(self):
        ...         super().__init__(PriorSpec("mean", channels=(3,), strides=(4,)))
        ...     def _forward(self, img):
        ...         return PriorOutput([F.avg_pool2d(img, 4, ceil_mode=True)])
        >>> out = MeanPrior()(torch.rand(2, 3, 97, 131))
        >>> out.features[0].shape
        torch.Size([2, 3, 25, 33])
    """

    spec: PriorSpec

    def __init__(self, spec: PriorSpec | None = None) -> None:
        super().__init__()
        if spec is not None:
            self.spec = spec

    # -- freezing -----------------------------------------------------------------------------
    def freeze(self) -> SegPrior:
        """Set ``requires_grad=False`` on every parameter and switch to eval mode."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self.train(False)

    def train(self, mode: bool = True) -> SegPrior:  # noqa: ARG002 - mode is ignored on purpose
        """Priors stay in eval mode: ``mode`` is ignored (BatchNorm statistics never update)."""
        return super().train(False)

    # -- forward ------------------------------------------------------------------------------
    @abc.abstractmethod
    def _forward(self, img: Tensor) -> PriorOutput:
        """Backend hook: features (and logits) for an already-checked ``(B, 3, H, W)`` image."""

    def _follow(self, img: Tensor) -> None:
        for t in self._tensors():
            if t.device != img.device or (t.is_floating_point() and t.dtype != img.dtype):
                self.to(device=img.device, dtype=img.dtype)
                return

    def _tensors(self):
        yield from self.parameters()
        yield from self.buffers()

    def forward(self, img: Tensor, *, grad: bool = False) -> PriorOutput:
        """Run the prior on ``img`` ``(B, 3, H, W)`` in ``[0, 1]``; see the class docstring."""
        check_image(img, "prior input")
        if not hasattr(self, "spec"):
            raise RuntimeError(f"{type(self).__name__} has no spec; pass a PriorSpec to SegPrior.__init__")
        self._follow(img)
        self.train(False)
        with torch.set_grad_enabled(bool(grad) and torch.is_grad_enabled()):
            out = self._forward(img)
        self._check_output(out, img)
        return out

    def _check_output(self, out: PriorOutput, img: Tensor) -> None:
        spec = self.spec
        if not isinstance(out, PriorOutput):
            raise TypeError(f"{type(self).__name__}._forward must return a PriorOutput, got {type(out).__name__}")
        if len(out.features) != spec.num_levels:
            raise RuntimeError(
                f"{spec.name}: produced {len(out.features)} feature levels, spec declares {spec.num_levels}"
            )
        h, w = img.shape[-2:]
        for i, f in enumerate(out.features):
            want = (img.shape[0], spec.channels[i], *spec.feature_size(h, w, i))
            if tuple(f.shape) != want:
                raise RuntimeError(f"{spec.name}: feature level {i} has shape {tuple(f.shape)}, spec requires {want}")
        if spec.num_classes == 0 and out.logits is not None:
            raise RuntimeError(f"{spec.name}: spec.num_classes == 0 but logits were returned")
        if spec.num_classes > 0 and (
            out.logits is None or out.logits.dim() != 4 or out.logits.shape[:2] != (img.shape[0], spec.num_classes)
        ):
            got = None if out.logits is None else tuple(out.logits.shape)
            raise RuntimeError(f"{spec.name}: logits must be (B, {spec.num_classes}, h, w), got {got}")

    def extra_repr(self) -> str:
        spec = getattr(self, "spec", None)
        if spec is None:
            return ""
        return (
            f"spec=PriorSpec(name={spec.name!r}, channels={spec.channels}, strides={spec.strides}, "
            f"num_classes={spec.num_classes})"
        )
