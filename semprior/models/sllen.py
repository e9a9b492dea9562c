"""SLLEN: semantic-aware low-light enhancement with a segmentation auxiliary network.

After Wu et al., "SLLEN: Semantic-aware Low-light Image Enhancement Network" (2022/2023): an
LLE main network and a semantic-segmentation auxiliary network share one encoder. The
auxiliary network supplies

- **HSF**, high-level semantic features (its deepest, context-level features), fused into the
  main decoder's bottleneck with [`semprior.attention.sem.SEM`][semprior.attention.sem.SEM] (semantic queries,
  image keys/values, channel attention);
- **IEF**, intermediate embedding features from one of the auxiliary decoder's layers: a
  randomly chosen layer in training (so the main net learns to use any of them), a fixed layer
  (``SLLENConfig.ief_eval_layer``) at evaluation; projected by a per-layer 1x1 conv, resized to
  full resolution and fused by concatenation + 3x3 conv.

Training alternates ([`SLLENAlternatingTrainer`][semprior.models.sllen.SLLENAlternatingTrainer]): an LLE step on paired images updates
encoder + main network (auxiliary decoder frozen), a segmentation step on a
[`SegmentationDataset`][semprior.models.sllen.SegmentationDataset] updates encoder + auxiliary network (main network frozen).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._checks import check_image, check_same_shape
from semprior.attention.sem import SEM
from semprior.losses.pixel import PixelLoss, pixel_loss
from semprior.models.protocol import config_from_dict

__all__ = [
    "SLLENConfig",
    "SLLEN",
    "SLLENOutput",
    "SegmentationDataset",
    "SyntheticSegmentation",
    "AlternatingSchedule",
    "SLLENAlternatingTrainer",
]


@dataclass(frozen=True)
class SLLENConfig:
    """SLLEN hyper-parameters.

    Attributes:
        width: channels at full resolution; level ``i`` has ``width * 2**i``.
        depth: number of stride-2 encoder stages (the deepest features are at stride ``2**depth``).
        num_classes: segmentation classes of the auxiliary head.
        heads: heads of the SEM block fusing HSF.
        ief_eval_layer: auxiliary decoder layer used as IEF in eval mode (python index into the
            ``depth`` decoder layers, deepest first; ``-1`` = the full-resolution one).
        backend: channel-attention backend of the SEM block.

    Examples:
        >>> SLLENConfig(width=8, depth=2, num_classes=4).num_classes
        4
        >>> SLLENConfig.preset("sllen", depth=2).to_dict()["depth"]
        2
    """

    PRESETS: ClassVar[tuple[str, ...]] = ("sllen",)

    width: int = 32
    depth: int = 3
    num_classes: int = 19
    heads: int = 1
    ief_eval_layer: int = -1
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.width < 1 or self.depth < 1:
            raise ValueError(f"SLLENConfig needs width >= 1 and depth >= 1, got width={self.width}, depth={self.depth}")
        if self.num_classes < 2:
            raise ValueError(f"SLLENConfig.num_classes must be >= 2 (background + one class), got {self.num_classes}")
        if not -self.depth <= self.ief_eval_layer < self.depth:
            raise ValueError(
                f"SLLENConfig.ief_eval_layer must index one of the depth={self.depth} auxiliary decoder layers "
                f"(-{self.depth} .. {self.depth - 1}), got {self.ief_eval_layer}"
            )
        if (self.width * 2**self.depth) % self.heads != 0:
            raise ValueError(f"SLLENConfig.heads={self.heads} must divide the bottleneck width {self.width * 2**self.depth}")

    @classmethod
    def preset(cls, name: str = "sllen", **overrides: Any) -> SLLENConfig:
        """``"sllen"`` (width 32, depth 3, 19 classes), with field overrides."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown SLLEN preset {name!r}; choose one of {list(cls.PRESETS)}")
        return cls.from_dict(overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SLLENConfig:
        """Strict: an unknown key is an error naming the valid ones."""
        return config_from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True), nn.Conv2d(ch, ch, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _up_fuse(x: Tensor, skip: Tensor, conv: nn.Module) -> Tensor:
    x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
    return conv(torch.cat([x, skip], dim=1))


class _Decoder(nn.Module):
    """Bilinear up-sampling + skip concat + conv, deepest level first; returns every layer's output."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.fuse = nn.ModuleList()
        for i in reversed(range(depth)):
            c = width * 2**i
            self.fuse.append(nn.Sequential(nn.Conv2d(3 * c, c, 1), nn.LeakyReLU(0.1, inplace=True), _ResBlock(c)))

    def forward(self, x: Tensor, skips: list[Tensor]) -> list[Tensor]:
        outs = []
        for conv, skip in zip(self.fuse, reversed(skips[:-1])):
            x = _up_fuse(x, skip, conv)
            outs.append(x)
        return outs


class SLLENOutput(NamedTuple):
    """Everything one SLLEN forward computes."""

    image: Tensor  #: enhanced image `(B, 3, H, W)` (not clamped)
    seg_logits: Tensor  #: auxiliary segmentation logits `(B, num_classes, H, W)`
    hsf: Tensor  #: high-level semantic features `(B, width * 2**depth, H / 2**depth, W / 2**depth)`
    ief: Tensor  #: the chosen intermediate embedding features, projected `(B, width, H, W)`
    ief_layer: int  #: which auxiliary decoder layer gave the IEF


class SLLEN(nn.Module):
    """SLLEN: shared encoder, LLE main network and segmentation auxiliary network.

    ``forward`` returns the enhanced image (so generic trainers can call ``model(low)``);
    `forward_all` returns every intermediate (`SLLENOutput`); [`segment`][semprior.models.sllen.SLLEN.segment]
    runs the auxiliary branch only. Any input size works (features are resized to the skips).

    Args:
        config: hyper-parameters.

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Examples:
        >>> model = SLLEN(SLLENConfig(width=8, depth=2, num_classes=3)).eval()
        >>> out = model.forward_all(torch.rand(1, 3, 17, 22))
        >>> out.image.shape, out.seg_logits.shape, out.ief_layer
        (torch.Size([1, 3, 17, 22]), torch.Size([1, 3, 17, 22]), 1)
    """

    #: any size works (features are resized to the skips); nothing is padded
    required_multiple = 1

    def __init__(self, config: SLLENConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or SLLENConfig()
        w, d = cfg.width, cfg.depth
        # shared encoder
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True), _ResBlock(w))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(w * 2**i, w * 2 ** (i + 1), 3, 2, 1), nn.LeakyReLU(0.1, inplace=True), _ResBlock(w * 2 ** (i + 1)))
            for i in range(d)
        )
        # segmentation auxiliary network: context block (HSF), decoder (IEF candidates), head
        self.seg_context = nn.Sequential(_ResBlock(w * 2**d), _ResBlock(w * 2**d))
        self.seg_decoder = _Decoder(w, d)
        self.seg_head = nn.Conv2d(w, cfg.num_classes, 1)
        # LLE main network: HSF fusion (SEM), decoder, IEF fusion, output
        self.hsf_fusion = SEM(w * 2**d, w * 2**d, heads=cfg.heads, backend=cfg.backend)
        self.lle_decoder = _Decoder(w, d)
        self.ief_proj = nn.ModuleList(nn.Conv2d(w * 2**i, w, 1) for i in reversed(range(d)))
        self.ief_fusion = nn.Sequential(nn.Conv2d(2 * w, w, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True), _ResBlock(w))
        self.out = nn.Conv2d(w, 3, 3, 1, 1)

    # parameter groups used by the alternating trainer
    def encoder_parameters(self) -> list[nn.Parameter]:
        return [*self.stem.parameters(), *self.down.parameters()]

    def seg_parameters(self) -> list[nn.Parameter]:
        """Auxiliary-only parameters (context, decoder, head)."""
        return [*self.seg_context.parameters(), *self.seg_decoder.parameters(), *self.seg_head.parameters()]

    def lle_parameters(self) -> list[nn.Parameter]:
        """Main-network-only parameters (fusions, decoder, output)."""
        mods = (self.hsf_fusion, self.lle_decoder, self.ief_proj, self.ief_fusion, self.out)
        return [p for m in mods for p in m.parameters()]

    def encode(self, img: Tensor) -> list[Tensor]:
        """Shared encoder features, strides ``1, 2, ..., 2**depth``."""
        feats = [self.stem(img)]
        for stage in self.down:
            feats.append(stage(feats[-1]))
        return feats

    def _aux(self, feats: list[Tensor]) -> tuple[Tensor, list[Tensor], Tensor]:
        hsf = self.seg_context(feats[-1])
        layers = self.seg_decoder(hsf, feats)
        return hsf, layers, self.seg_head(layers[-1])

    def segment(self, img: Tensor) -> Tensor:
        """Auxiliary segmentation logits `(B, num_classes, H, W)`."""
        check_image(img, "img")
        return self._aux(self.encode(img))[2]

    def pick_ief_layer(self, generator: torch.Generator | None = None) -> int:
        """A uniformly random auxiliary decoder layer in training, ``config.ief_eval_layer`` in eval."""
        d = self.config.depth
        if self.training:
            return int(torch.randint(d, (1,), generator=generator).item())
        return self.config.ief_eval_layer % d

    def forward_all(self, img: Tensor, ief_layer: int | None = None) -> SLLENOutput:
        check_image(img, "img", unit_range=True)
        d = self.config.depth
        if ief_layer is None:
            ief_layer = self.pick_ief_layer()
        elif not -d <= ief_layer < d:
            raise ValueError(f"ief_layer must index one of the {d} auxiliary decoder layers, got {ief_layer}")
        ief_layer %= d
        feats = self.encode(img)
        hsf, layers, logits = self._aux(feats)
        x = self.hsf_fusion(feats[-1], hsf)
        x = self.lle_decoder(x, feats)[-1]
        ief = self.ief_proj[ief_layer](layers[ief_layer])
        ief = F.interpolate(ief, size=img.shape[-2:], mode="bilinear", align_corners=False)
        x = self.ief_fusion(torch.cat([x, ief], dim=1))
        return SLLENOutput(img + self.out(x), logits, hsf, ief, ief_layer)

    def forward(self, img: Tensor) -> Tensor:
        return self.forward_all(img).image

    def loss(self, low: Tensor, high: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The LLE objective (L1 between ``self(low)`` and ``high``): ``(total, {"l1": ...})``.

        The segmentation objective runs in [`SLLENAlternatingTrainer`][semprior.models.sllen.SLLENAlternatingTrainer]'s segmentation steps.
        """
        check_same_shape(low, high, ("low", "high"))
        l1 = pixel_loss(self(low), high, "l1")
        return l1, {"l1": l1.detach()}


@runtime_checkable
class SegmentationDataset(Protocol):
    """What SLLEN's segmentation step needs: indexed ``(image, mask)`` pairs.

    ``image`` is `(3, H, W)` float in ``[0, 1]``; ``mask`` is `(H, W)` int64 with values in
    ``[0, num_classes)`` or ``ignore_index``. Wrap Cityscapes, ADE20K, ... to this shape.
    """

    num_classes: int
    ignore_index: int

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]: ...


class SyntheticSegmentation(torch.utils.data.Dataset):
    """Procedural segmentation data: textured backgrounds (class 0) with rectangles and discs.

    Class ``k >= 1`` is drawn with a class-specific colour (plus per-image jitter and noise), so
    the classes are learnable. Deterministic per ``(seed, index)``. For tests and demos only.

    Shape:
        - item: image `(3, size, size)`, mask `(size, size)` int64

    Examples:
        >>> ds = SyntheticSegmentation(4, size=16, num_classes=3)
        >>> img, mask = ds[0]
        >>> img.shape, mask.dtype, int(mask.max()) < 3
        (torch.Size([3, 16, 16]), torch.int64, True)
    """

    def __init__(self, length: int, size: int = 64, num_classes: int = 4, shapes: int = 3, seed: int = 0) -> None:
        if length < 1 or size < 4 or num_classes < 2 or shapes < 1:
            raise ValueError(
                f"SyntheticSegmentation needs length >= 1, size >= 4, num_classes >= 2, shapes >= 1; "
                f"got {length}, {size}, {num_classes}, {shapes}"
            )
        self.length, self.size, self.num_classes, self.shapes, self.seed = length, size, num_classes, shapes, seed
        self.ignore_index = 255
        self.colors = torch.rand(num_classes, 3, generator=torch.Generator().manual_seed(seed + 7919))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for SyntheticSegmentation of length {self.length}")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        s = self.size
        yy, xx = torch.meshgrid(torch.linspace(0, 1, s), torch.linspace(0, 1, s), indexing="ij")
        mask = torch.zeros(s, s, dtype=torch.int64)
        for _ in range(self.shapes):
            k = int(torch.randint(1, self.num_classes, (1,), generator=g))
            cy, cx, r = (torch.rand(3, generator=g) * torch.tensor([1.0, 1.0, 0.3]) + torch.tensor([0, 0, 0.1])).tolist()
            if k % 2:
                inside = ((yy - cy).abs() < r) & ((xx - cx).abs() < r * 0.7)
            else:
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            mask[inside] = k
        img = self.colors[mask].permute(2, 0, 1) * (0.8 + 0.4 * torch.rand(3, 1, 1, generator=g))
        img = img + 0.05 * torch.sin(20 * (xx + yy))[None] + 0.03 * torch.randn(3, s, s, generator=g)
        return img.clamp(0, 1), mask


@dataclass(frozen=True)
class AlternatingSchedule:
    """Which task each training iteration runs: ``lle_steps`` LLE steps, then ``seg_steps`` segmentation steps.

    Examples:
        >>> " ".join(AlternatingSchedule(2, 1).kind(i) for i in range(6))
        'lle lle seg lle lle seg'
    """

    lle_steps: int = 1
    seg_steps: int = 1

    def __post_init__(self) -> None:
        if self.lle_steps < 1 or self.seg_steps < 0:
            raise ValueError(f"AlternatingSchedule needs lle_steps >= 1 and seg_steps >= 0, got {self.lle_steps}, {self.seg_steps}")

    def kind(self, step: int) -> str:
        return "lle" if step % (self.lle_steps + self.seg_steps) < self.lle_steps else "seg"


def _cycle(batches: Iterable) -> Iterator:
    while True:
        empty = True
        for b in batches:
            empty = False
            yield b
        if empty:
            raise ValueError("a batch iterable yielded nothing; give SLLENAlternatingTrainer.fit a non-empty loader")


class SLLENAlternatingTrainer:
    """SLLEN's alternating training: LLE steps on paired images, segmentation steps on segmentation data.

    Two Adam optimizers: the LLE one over encoder + main network, the segmentation one over
    encoder + auxiliary network. During each step the other branch's parameters have
    ``requires_grad=False`` (frozen: no gradient, no update), restored afterwards.

    Args:
        model: the [`SLLEN`][semprior.models.sllen.SLLEN] to train.
        lr: learning rate of both optimizers.
        schedule: the alternation pattern.
        lle_loss: ``loss(enhanced, target)``; ``PixelLoss("l1")`` when ``None``.
        seg_transform: applied to segmentation images before the step (e.g. a low-light
            synthesis, so the shared encoder sees dark inputs in both tasks); identity when ``None``.
        ignore_index: mask value excluded from the cross-entropy.
    """

    def __init__(
        self,
        model: SLLEN,
        *,
        lr: float = 2e-4,
        schedule: AlternatingSchedule | None = None,
        lle_loss: Callable[[Tensor, Tensor], Tensor] | None = None,
        seg_transform: Callable[[Tensor], Tensor] | None = None,
        ignore_index: int = 255,
    ) -> None:
        if not isinstance(model, SLLEN):
            raise TypeError(f"SLLENAlternatingTrainer trains an SLLEN model, got {type(model).__name__}")
        self.model = model
        self.schedule = schedule or AlternatingSchedule()
        self.lle_loss = lle_loss or PixelLoss("l1")
        self.seg_transform = seg_transform
        self.ignore_index = ignore_index
        self.opt_lle = torch.optim.Adam([*model.encoder_parameters(), *model.lle_parameters()], lr=lr)
        self.opt_seg = torch.optim.Adam([*model.encoder_parameters(), *model.seg_parameters()], lr=lr)
        self.step_count = 0
        self.history: list[tuple[str, float]] = []

    def _run(self, frozen: list[nn.Parameter], opt: torch.optim.Optimizer, loss_fn: Callable[[], Tensor]) -> float:
        self.model.train()
        saved = [p.requires_grad for p in frozen]
        for p in frozen:
            p.requires_grad_(False)
        try:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at step {self.step_count}; lower the learning rate")
            loss.backward()
            opt.step()
        finally:
            for p, r in zip(frozen, saved):
                p.requires_grad_(r)
        return float(loss.detach())

    def lle_step(self, low: Tensor, high: Tensor) -> float:
        """One LLE step (auxiliary network frozen). Returns the loss."""
        check_image(low, "low")
        check_same_shape(low, high, ("low", "high"))
        return self._run(self.model.seg_parameters(), self.opt_lle, lambda: self.lle_loss(self.model(low), high))

    def seg_step(self, image: Tensor, mask: Tensor) -> float:
        """One segmentation step (main network frozen). Returns the cross-entropy."""
        check_image(image, "image")
        if mask.dim() != 3 or mask.shape[0] != image.shape[0] or mask.shape[-2:] != image.shape[-2:]:
            raise ValueError(f"mask must be (B, H, W) matching image {tuple(image.shape)}, got {tuple(mask.shape)}")
        if mask.dtype != torch.int64:
            raise TypeError(f"mask must be int64 class indices, got {mask.dtype}; use mask.long()")
        if self.seg_transform is not None:
            image = self.seg_transform(image)
        nc = self.model.config.num_classes
        bad = (mask != self.ignore_index) & ((mask < 0) | (mask >= nc))
        if bool(bad.any()):
            raise ValueError(f"mask has labels outside [0, {nc}) that are not ignore_index={self.ignore_index}")
        if not bool((mask != self.ignore_index).any()):
            raise ValueError(f"every mask pixel is ignore_index={self.ignore_index}; the batch has nothing to learn from")
        return self._run(
            self.model.lle_parameters(),
            self.opt_seg,
            lambda: F.cross_entropy(self.model.segment(image), mask, ignore_index=self.ignore_index),
        )

    def fit(self, paired: Iterable, segmentation: Iterable, steps: int) -> list[tuple[str, float]]:
        """Run ``steps`` iterations, taking ``(low, high)`` and ``(image, mask)`` batches as the schedule says.

        Loaders are cycled; returns this call's ``[(kind, loss), ...]`` (also appended to ``history``).
        """
        pairs, segs = _cycle(paired), _cycle(segmentation)
        log = []
        for _ in range(steps):
            kind = self.schedule.kind(self.step_count)
            loss = self.lle_step(*next(pairs)) if kind == "lle" else self.seg_step(*next(segs))
            log.append((kind, loss))
            self.step_count += 1
        self.history.extend(log)
        return log
