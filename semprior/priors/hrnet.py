"""HRNet semantic-segmentation prior: timm HRNet backbone (raw branches) + HRNetV2 / CSAIL C1 head.

Loads the two public checkpoint formats through explicit key maps, strictly:

- ``"hrnet_seg"``: the HRNet-Semantic-Segmentation release (``hrnet_w48_ade20k_*.pth``,
  ``hrnet_w48_pascal_context_*.pth``): backbone keys as timm's (``conv1``, ``layer1``,
  ``transition1``, ``stage2`` ... ``stage4``), head ``last_layer.{0,1,3}`` (1x1 conv 720->720,
  BN, ReLU, 1x1 conv -> classes), optionally prefixed ``model.`` (the training wrapper);
- ``"csail"``: CSAILVision/semantic-segmentation-pytorch ``ade20k-hrnetv2-c1``
  (``encoder_epoch_*.pth`` with the same backbone keys, ``decoder_epoch_*.pth`` with
  ``cbr.{0,1}`` = 3x3 conv 720->180 + BN and ``conv_last`` = 1x1 conv 180->150).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._optional import require
from semprior.priors.base import PriorOutput, PriorSpec, SegPrior, crop_to_strides, out_size, pad_to_multiple
from semprior.weights import LoadReport, load_checkpoint, load_mapped, resolve_weights

__all__ = ["HRNetPrior", "detect_hrnet_format", "hrnet_key_map"]

#: variant -> (timm model name, raw branch widths)
_VARIANTS = {"w48": ("hrnet_w48", (48, 96, 192, 384)), "w18_small": ("hrnet_w18_small", (16, 32, 64, 128))}
#: dataset -> number of classes (ADE20K as the DeepSPG paper, Pascal-Context 59 as SKF)
_DATASETS = {"ade20k": 150, "pascal_context": 59}
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_IGNORED = ("loss.", "criterion.")  # training-loss buffers some releases save with the model


def _head(kind: str, channels: int, num_classes: int) -> nn.Sequential:
    if kind == "hrnetv2":  # HRNet-Semantic-Segmentation last_layer
        return nn.Sequential(
            nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, num_classes, 1),
        )
    if kind == "c1":  # CSAIL C1 decoder: conv3x3_bn_relu(fc_dim, fc_dim // 4) + conv_last
        hidden = channels // 4
        return nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, num_classes, 1),
        )
    raise ValueError(f"head must be 'hrnetv2' or 'c1', got {kind!r}")


def detect_hrnet_format(state: Mapping[str, Tensor]) -> str:
    """``"hrnet_seg"`` (has ``last_layer``), ``"csail_decoder"`` (``cbr``/``conv_last``) or ``"csail_encoder"``."""
    keys = list(state)
    if any(k.split(".", 1)[-1].startswith("last_layer.") or k.startswith("last_layer.") for k in keys):
        return "hrnet_seg"
    if any(k.startswith(("cbr.", "conv_last.")) for k in keys):
        return "csail_decoder"
    if any(k.startswith(("conv1.", "stage2.")) for k in keys):
        return "csail_encoder"
    raise ValueError(f"not an HRNet segmentation checkpoint (first keys: {keys[:4]})")


def hrnet_key_map(fmt: str):
    """Checkpoint key -> :class:`HRNetPrior` state-dict key, for ``fmt`` in
    ``{"hrnet_seg", "csail_encoder", "csail_decoder"}``; ``None`` for keys outside the model."""

    def hrnet_seg(k: str) -> str | None:
        if k.startswith("model."):
            k = k[len("model."):]
        if k.startswith("module."):
            k = k[len("module."):]
        if k.startswith("last_layer."):
            return "head." + k[len("last_layer."):]
        if k.startswith(_IGNORED):
            return None
        return "backbone." + k

    def csail_encoder(k: str) -> str | None:
        return "backbone." + k

    def csail_decoder(k: str) -> str | None:
        if k.startswith("cbr."):
            return "head." + k[len("cbr."):]  # cbr.0 conv, cbr.1 BN -> head.0, head.1
        if k.startswith("conv_last."):
            return "head.3." + k[len("conv_last."):]
        return None

    maps = {"hrnet_seg": hrnet_seg, "csail_encoder": csail_encoder, "csail_decoder": csail_decoder}
    if fmt not in maps:
        raise ValueError(f"unknown HRNet checkpoint format {fmt!r}; expected one of {sorted(maps)}")
    return maps[fmt]


def _weight_files(weights: str | os.PathLike | Sequence) -> list[Path]:
    """A file, a (encoder, decoder) pair, or a CSAIL folder with encoder_/decoder_epoch_*.pth."""
    if isinstance(weights, (list, tuple)):
        if len(weights) != 2:
            raise ValueError(f"pass one checkpoint file or an (encoder, decoder) pair, got {len(weights)} paths")
        paths = [Path(p).expanduser() for p in weights]
    else:
        p = Path(weights).expanduser()
        if p.is_dir():
            enc = sorted(p.glob("encoder_epoch_*.pth"))
            dec = sorted(p.glob("decoder_epoch_*.pth"))
            if len(enc) != 1 or len(dec) != 1:
                raise FileNotFoundError(
                    f"{p} must hold exactly one encoder_epoch_*.pth and one decoder_epoch_*.pth "
                    f"(found {len(enc)} and {len(dec)}); or pass the file paths explicitly"
                )
            paths = [enc[0], dec[0]]
        else:
            paths = [p]
    for q in paths:
        if not q.is_file():
            raise FileNotFoundError(f"HRNet weights file {str(q)!r} does not exist")
    return paths


class HRNetPrior(SegPrior):
    """HRNet semantic-segmentation prior (HRNetV2: all four branches, concatenated, 1x1 head).

    The backbone is timm's ``hrnet_w48`` / ``hrnet_w18_small`` in ``features_only`` mode with
    ``feature_location=""`` (the raw branch outputs, 48/96/192/384 channels for W48 at strides
    4/8/16/32). timm's fuse layers upsample with ``nearest``; both segmentation releases use
    bilinear (``align_corners=False``), so the fuse upsamplers are switched to bilinear to
    reproduce them. Inputs are normalised with the ImageNet mean/std, padded (replicate) to a
    multiple of 32 (timm's HRNet fails otherwise), and outputs are cropped back.

    Args:
        variant: ``"w48"`` (the paper's) or ``"w18_small"`` (fast; for tests and CPU use).
        dataset: ``"ade20k"`` (150 classes) or ``"pascal_context"`` (59 classes).
        weights: ``None`` (random init: no semantic signal, for tests), a checkpoint file
            (HRNet-Semantic-Segmentation format), an ``(encoder, decoder)`` pair or a folder of
            the CSAIL format, or ``"auto"`` to find the known file for ``dataset`` in the weights
            directory (``weights_dir`` / ``$SEMPRIOR_WEIGHTS``).
        download: with ``weights=None`` or ``"auto"``, fetch the known file when it has a direct
            link (CSAIL ADE20K pair); never implied.
        pretrained_backbone: initialise the backbone from timm's ImageNet weights (timm downloads).
        head: ``"hrnetv2"`` or ``"c1"``; default: ``"c1"`` for CSAIL checkpoints, else ``"hrnetv2"``.
        num_classes: override the dataset's class count.
        weights_dir: weights directory for ``"auto"``.
        align_corners: of the bilinear upsampling (``False`` in both releases' current code).

    ``self.load_report`` says how many tensors were loaded from where (``None`` without weights).

    Shape:
        - Input: ``(B, 3, H, W)`` in ``[0, 1]``, any size
        - features: 4 levels ``(B, C_i, ceil(H / s), ceil(W / s))``, ``s = 4, 8, 16, 32``
        - logits: ``(B, num_classes, ceil(H / 4), ceil(W / 4))``

    Example:
        >>> prior = HRNetPrior("w18_small", dataset="pascal_context")
        >>> prior.spec.channels, prior.spec.strides, prior.spec.num_classes
        ((16, 32, 64, 128), (4, 8, 16, 32), 59)
        >>> out = prior(torch.rand(1, 3, 97, 131))
        >>> tuple(out.logits.shape), tuple(out.features[3].shape)
        ((1, 59, 25, 33), (1, 128, 4, 5))
    """

    def __init__(
        self,
        variant: str = "w48",
        dataset: str = "ade20k",
        weights: str | os.PathLike | Sequence | None = None,
        download: bool = False,
        pretrained_backbone: bool = False,
        head: str | None = None,
        num_classes: int | None = None,
        weights_dir: str | os.PathLike | None = None,
        align_corners: bool = False,
    ) -> None:
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {sorted(_VARIANTS)}, got {variant!r}")
        if dataset not in _DATASETS:
            raise ValueError(f"dataset must be one of {sorted(_DATASETS)}, got {dataset!r}")
        timm_name, widths = _VARIANTS[variant]
        k = int(num_classes) if num_classes is not None else _DATASETS[dataset]
        super().__init__(PriorSpec(f"hrnet_{variant}-{dataset}", channels=widths, strides=(4, 8, 16, 32), num_classes=k))

        # resolve and read the checkpoint(s) first: the head type depends on the format
        states: list[tuple[str, str, dict[str, Tensor]]] = []
        if weights is None and download:
            weights = "auto"
        if weights is not None:
            for p in self._files(weights, variant, dataset, weights_dir, download):
                sd = load_checkpoint(p)
                states.append((detect_hrnet_format(sd), str(p), sd))
        fmts = sorted(f for f, _, _ in states)
        if states and fmts not in (["hrnet_seg"], ["csail_decoder", "csail_encoder"]):
            raise ValueError(
                f"HRNet weights must be one HRNet-Semantic-Segmentation file or a CSAIL (encoder, decoder) "
                f"pair, got formats {fmts}"
            )
        auto_head = "c1" if fmts == ["csail_decoder", "csail_encoder"] else "hrnetv2"
        if head is not None and states and head != auto_head:
            raise ValueError(f"head={head!r} does not match the checkpoint format (needs head={auto_head!r})")
        self.head_kind = head or auto_head

        timm = require("timm", purpose="HRNetPrior")
        self.backbone = timm.create_model(
            timm_name, pretrained=pretrained_backbone, features_only=True, feature_location="", out_indices=(1, 2, 3, 4)
        )
        got = tuple(self.backbone.feature_info.channels())
        if got != widths:  # pragma: no cover - guards against a timm layout change
            raise RuntimeError(f"timm {timm_name} raw branches have {got} channels, expected {widths}")
        for m in self.backbone.modules():
            if isinstance(m, nn.Upsample):
                m.mode, m.align_corners = "bilinear", align_corners
        self.head = _head(self.head_kind, sum(widths), k)
        self.align_corners = align_corners
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

        self.load_report: LoadReport | None = None
        if states:
            self.load_report = self._load(states)
        self.freeze()

    @staticmethod
    def _files(weights, variant, dataset, weights_dir, download) -> list[Path]:
        if isinstance(weights, str) and weights == "auto":
            if variant != "w48":
                raise FileNotFoundError(f"no public checkpoint is known for HRNet variant {variant!r}; pass a file")
            if dataset == "ade20k":
                try:
                    return [resolve_weights("hrnet_w48_ade20k", weights_dir=weights_dir)]
                except FileNotFoundError as first:
                    try:
                        return [resolve_weights(n, weights_dir=weights_dir, download=download)
                                for n in ("csail_hrnetv2_encoder", "csail_hrnetv2_decoder")]
                    except FileNotFoundError as second:
                        raise FileNotFoundError(
                            f"no HRNet-W48 ADE20K checkpoint found; either format works. (1) {first} "
                            f"(2) {second}"
                        ) from None
            return [resolve_weights("hrnet_w48_pascal_context", weights_dir=weights_dir, download=download)]
        return _weight_files(weights)

    def _load(self, states: list[tuple[str, str, dict[str, Tensor]]]) -> LoadReport:
        # upstream key names are kept in the state so errors quote them; the encoder and decoder
        # files of the CSAIL pair have disjoint key sets (backbone names vs cbr./conv_last.)
        merged: dict[str, Tensor] = {}
        maps = {}
        for fmt, _, sd in states:
            kmap = hrnet_key_map(fmt)
            for key, v in sd.items():
                merged[key] = v
                maps[key] = kmap
        source = " + ".join(f"{Path(path).name} [{fmt}]" for fmt, path, _ in states)

        def ignore(key: str) -> bool:  # training-loss buffers some releases save beside the model
            bare = key[len("model."):] if key.startswith("model.") else key
            return bare.startswith(_IGNORED)

        return load_mapped(self, merged, lambda k: maps[k](k), source=source, ignore=ignore)

    def _forward(self, img: Tensor) -> PriorOutput:
        h, w = img.shape[-2:]
        x = (pad_to_multiple(img, 32) - self.mean) / self.std
        feats = self.backbone(x)
        size = feats[0].shape[-2:]
        up = [feats[0]] + [F.interpolate(f, size=size, mode="bilinear", align_corners=self.align_corners) for f in feats[1:]]
        logits = self.head(torch.cat(up, dim=1))
        lh, lw = out_size(h, w, 4)
        return PriorOutput(features=crop_to_strides(feats, self.spec.strides, h, w), logits=logits[..., :lh, :lw])
