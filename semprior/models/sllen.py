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

Training alternates on [`semprior.engine.Trainer`][semprior.engine.trainer.Trainer] with the schedule
[`sllen_phases`][semprior.models.sllen.sllen_phases]: an LLE step on paired images updates
encoder + main network (auxiliary network frozen), a segmentation step on a
[`SegmentationDataset`][semprior.data.segmentation.SegmentationDataset] updates encoder + auxiliary network (main
network frozen).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._checks import check_image, check_same_shape
from semprior.attention.sem import SEM
from semprior.losses.pixel import pixel_loss
from semprior.models.phases import Phase, PhaseSchedule
from semprior.models.protocol import config_from_dict
from semprior.models.registry import ModelEntry, l1_training_loss, register_model

__all__ = [
    "SLLENConfig",
    "SLLEN",
    "SLLENOutput",
    "sllen_phases",
    "sllen_segmentation_loss",
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
            raise ValueError(
                f"SLLENConfig.heads={self.heads} must divide the bottleneck width {self.width * 2**self.depth}"
            )

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
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True), nn.Conv2d(ch, ch, 3, 1, 1)
        )

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

    ``forward`` returns the enhanced image (so generic trainers can call ``model(low)``), or with
    ``task="segment"`` the auxiliary logits (how the segmentation phase reaches the branch through a
    ``DistributedDataParallel`` wrapper); `forward_all` returns every intermediate (`SLLENOutput`);
    [`segment`][semprior.models.sllen.SLLEN.segment] runs the auxiliary branch only. Any input size
    works (features are resized to the skips).

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
            nn.Sequential(
                nn.Conv2d(w * 2**i, w * 2 ** (i + 1), 3, 2, 1),
                nn.LeakyReLU(0.1, inplace=True),
                _ResBlock(w * 2 ** (i + 1)),
            )
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

    # parameter groups updated by the phases of `sllen_phases`
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

    def forward(self, img: Tensor, task: str = "enhance") -> Tensor:
        """``task="enhance"``: the enhanced image `(B, 3, H, W)`; ``"segment"``: logits `(B, num_classes, H, W)`."""
        if task == "segment":
            return self.segment(img)
        if task != "enhance":
            raise ValueError(f"task must be 'enhance' or 'segment', got {task!r}")
        return self.forward_all(img).image

    def loss(self, low: Tensor, high: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The LLE objective (L1 between ``self(low)`` and ``high``): ``(total, {"l1": ...})``.

        The segmentation objective is [`sllen_segmentation_loss`][semprior.models.sllen.sllen_segmentation_loss]
        (the ``seg`` phase of [`sllen_phases`][semprior.models.sllen.sllen_phases]).
        """
        check_same_shape(low, high, ("low", "high"))
        l1 = pixel_loss(self(low), high, "l1")
        return l1, {"l1": l1.detach()}


def sllen_segmentation_loss(
    model: nn.Module, batch: dict[str, Tensor], ignore_index: int = 255
) -> tuple[Tensor, dict[str, Tensor]]:
    """Cross-entropy of the auxiliary logits: ``(ce, {"ce": ...})``; the segmentation phase's ``loss_fn``.

    ``batch`` is ``{"image": (B, 3, H, W), "mask": (B, H, W) int64}`` (a batch of a
    [`SegmentationDataset`][semprior.data.segmentation.SegmentationDataset]). Calls
    ``model(image, task="segment")``, so a ``DistributedDataParallel`` wrapper synchronises gradients.
    Labels outside ``[0, num_classes)`` that are not ``ignore_index``, and batches whose every pixel is
    ignored, are errors.
    """
    image, mask = batch["image"], batch["mask"]
    check_image(image, "image")
    if mask.dim() != 3 or mask.shape[0] != image.shape[0] or mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"mask must be (B, H, W) matching image {tuple(image.shape)}, got {tuple(mask.shape)}")
    if mask.dtype != torch.int64:
        raise TypeError(f"mask must be int64 class indices, got {mask.dtype}; use mask.long()")
    logits = model(image, task="segment")
    nc = logits.shape[1]
    bad = (mask != ignore_index) & ((mask < 0) | (mask >= nc))
    if bool(bad.any()):
        raise ValueError(f"mask has labels outside [0, {nc}) that are not ignore_index={ignore_index}")
    if not bool((mask != ignore_index).any()):
        raise ValueError(f"every mask pixel is ignore_index={ignore_index}; the batch has nothing to learn from")
    ce = F.cross_entropy(logits, mask, ignore_index=ignore_index)
    return ce, {"ce": ce.detach()}


def sllen_phases(
    lle_steps: int = 1,
    seg_steps: int = 1,
    ignore_index: int = 255,
    lle_loss: Callable[[nn.Module, Any], tuple[Tensor, dict[str, Tensor]]] | None = None,
):
    """SLLEN's alternating schedule for [`Trainer`][semprior.engine.trainer.Trainer]: a
    [`PhaseSchedule`][semprior.models.phases.PhaseSchedule].

    - ``lle`` (``lle_steps`` consecutive steps): batches ``{"low", "high"}`` of the source
      ``"train"``, L1 loss (or ``lle_loss(model, batch)``), updates encoder + main network; the
      auxiliary network is frozen, yet the L1 gradient reaches the shared encoder through HSF and IEF.
    - ``seg`` (``seg_steps`` steps): batches ``{"image", "mask"}`` of the source ``"segmentation"``,
      [`sllen_segmentation_loss`][semprior.models.sllen.sllen_segmentation_loss], updates encoder +
      auxiliary network; the main network is frozen. Its batches are not cropped by
      ``TrainConfig.patch_stages`` (the segmentation dataset crops).

    Examples:
        >>> from semprior.data import SyntheticSegmentation
        >>> from semprior.engine import TrainConfig, Trainer
        >>> model = SLLEN(SLLENConfig(width=4, depth=2, num_classes=3))
        >>> pairs = [{"low": torch.rand(3, 16, 16) * 0.2, "high": torch.rand(3, 16, 16)} for _ in range(4)]
        >>> data = {"train": pairs, "segmentation": SyntheticSegmentation(4, size=16, num_classes=3)}
        >>> cfg = TrainConfig(steps=4, batch_size=2, progress=False)
        >>> trainer = Trainer(model, sllen_phases(), data, cfg)
        >>> [trainer.schedule.phase(s).name for s in range(4)], trainer.fit().step
        (['lle', 'seg', 'lle', 'seg'], 4)
    """

    def seg_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        return sllen_segmentation_loss(model, batch, ignore_index)

    return PhaseSchedule(
        (
            Phase(
                "lle",
                lle_loss or l1_training_loss,
                source="train",
                steps=lle_steps,
                params=lambda m: [*cast(SLLEN, m).encoder_parameters(), *cast(SLLEN, m).lle_parameters()],
            ),
            Phase(
                "seg",
                seg_loss,
                source="segmentation",
                steps=seg_steps,
                crop=False,
                params=lambda m: [*cast(SLLEN, m).encoder_parameters(), *cast(SLLEN, m).seg_parameters()],
            ),
        )
    )


def _phases(model: nn.Module, sources: dict[str, Any]) -> PhaseSchedule:
    """SLLEN's recipe: `sllen_phases` over the paired data and a segmentation source."""
    seg = sources.get("segmentation")
    if seg is None:
        raise ValueError(
            "sllen trains in alternation on paired images and a segmentation data set: add a "
            "`segmentation:` section to the config (kind: folder with image_dir / mask_dir, or kind: synthetic)"
        )
    num_classes = cast(SLLEN, model).config.num_classes
    if seg.num_classes != num_classes:
        raise ValueError(
            f"the segmentation data has num_classes={seg.num_classes} but the model has "
            f"num_classes={num_classes}; set model.num_classes to match"
        )
    return sllen_phases(ignore_index=seg.ignore_index)


def _build(config: SLLENConfig, prior: Any = None, text_loss: Any = None) -> SLLEN:
    return SLLEN(config)


register_model(
    ModelEntry(
        "sllen",
        SLLENConfig,
        "sllen",
        _build,
        training_loss=l1_training_loss,
        phases=_phases,
        tiny={"width": 4, "depth": 2, "num_classes": 3},
        description="SLLEN, LLE network with a segmentation auxiliary branch",
    )
)
