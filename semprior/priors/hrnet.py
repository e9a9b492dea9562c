"""HRNet semantic-segmentation prior: timm HRNet backbone (raw branches) + HRNetV2 / CSAIL C1 head.

Loads the two public checkpoint formats through explicit key maps, strictly:

- ``"hrnet_seg"``: the HRNet-Semantic-Segmentation releases (``hrnet_ade20k_4312_torch04.pth``,
  ``hrnet_pascal_ctx_5410_torch11.pth``, ...; see [`KNOWN_WEIGHTS`][semprior.weights.KNOWN_WEIGHTS]):
  backbone keys as timm's (``conv1``, ``layer1``, ``transition1``, ``stage2`` ... ``stage4``),
  head ``last_layer.{0,1,3}`` (1x1 conv 720->720, BN, ReLU, 1x1 conv -> classes), prefixed
  ``model.`` by the training wrapper, possibly with the loss's ``loss.criterion.weight``;
- ``"csail"``: CSAILVision/semantic-segmentation-pytorch ``ade20k-hrnetv2-c1``
  (``encoder_epoch_*.pth`` with the same backbone keys, ``decoder_epoch_*.pth`` with
  ``cbr.{0,1}`` = 3x3 conv 720->180 + BN and ``conv_last`` = 1x1 conv 180->150), each BN with
  CSAIL's sync-BN bookkeeping buffers (skipped by name, counted in the report).

The forward is the official one at any input size (see [`HRNetPrior`][semprior.priors.hrnet.HRNetPrior]).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._optional import require
from semprior.priors.base import PriorOutput, PriorSpec, SegPrior
from semprior.weights import KNOWN_WEIGHTS, LoadReport, load_checkpoint, load_mapped, resolve_weights

__all__ = ["HRNetPrior", "detect_hrnet_format", "hrnet_key_map"]

#: variant -> (timm model name, raw branch widths)
_VARIANTS = {"w48": ("hrnet_w48", (48, 96, 192, 384)), "w18_small": ("hrnet_w18_small", (16, 32, 64, 128))}
#: dataset -> number of classes (ADE20K as the DeepSPG paper, Pascal-Context 59 as SKF)
_DATASETS = {"ade20k": 150, "pascal_context": 59, "cityscapes": 19}
#: dataset -> its HRNet-Semantic-Segmentation release in KNOWN_WEIGHTS (which records align_corners)
_RELEASES = {d: f"hrnet_w48_{d}" for d in _DATASETS}
_CSAIL_RELEASE = "csail_hrnetv2_encoder"
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_IGNORED = ("loss.", "criterion.")  # training-loss buffers some releases save with the model
#: buffers of CSAIL's SynchronizedBatchNorm (mit_semseg/lib/nn/modules/batchnorm.py), saved in its
#: files; CSAIL loads with strict=False, they only serve its multi-GPU training
_CSAIL_BOOKKEEPING = ("_tmp_running_mean", "_tmp_running_var", "_running_iter")


def _release_align_corners(fmt: str, dataset: str) -> tuple[bool, str]:
    """The ``align_corners`` a release was trained with, and the release's table name."""
    name = _CSAIL_RELEASE if fmt.startswith("csail") else _RELEASES[dataset]
    value = KNOWN_WEIGHTS[name].align_corners
    if value is None:  # pragma: no cover - guards the table
        raise RuntimeError(f"KNOWN_WEIGHTS[{name!r}] records no align_corners")
    return value, name


def _upsample_to(x: Tensor, size, align_corners: bool) -> Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)


def _hr_module(m: Any, xs: list[Tensor], align_corners: bool) -> list[Tensor]:  # timm HighResolutionModule
    """One timm ``HighResolutionModule`` with the official fuse: a coarser branch is upsampled
    (bilinear) to the exact size of the branch it joins, not by a fixed factor of 2, so any
    input size runs (HRNet-Semantic-Segmentation ``lib/models/seg_hrnet.py``, same sum order)."""
    if m.num_branches == 1:
        return [m.branches[0](xs[0])]
    xs = [branch(x) for branch, x in zip(m.branches, xs)]
    out = []
    for i, fuse in enumerate(m.fuse_layers):
        y = None
        for j, f in enumerate(fuse):
            if j > i:  # timm: Sequential(conv1x1, BN, Upsample(scale_factor)) -> conv, BN, resize
                t = _upsample_to(f[1](f[0](xs[j])), xs[i].shape[-2:], align_corners)
            else:
                t = f(xs[j])
            y = t if y is None else y + t
        out.append(m.fuse_act(y))
    return out


def _hrnet_body(net: Any, x: Tensor, align_corners: bool) -> list[Tensor]:  # timm HighResolutionNetFeatures
    """The four HRNet branches of timm's ``HighResolutionNetFeatures`` (``feature_location=""``),
    computed with its modules and weights but the official size-exact fuse (`_hr_module`)."""
    x = net.act1(net.bn1(net.conv1(x)))
    x = net.act2(net.bn2(net.conv2(x)))
    x = net.layer1(x)
    xs = [t(x) for t in net.transition1]
    for stage, transition in ((net.stage2, net.transition2), (net.stage3, net.transition3), (net.stage4, None)):
        for m in stage:
            xs = _hr_module(m, xs, align_corners)
        if transition is not None:
            xs = [xs[i] if isinstance(t, nn.Identity) else t(xs[-1]) for i, t in enumerate(transition)]
    return xs


def _head(kind: str, channels: int, num_classes: int) -> nn.Sequential:
    if kind == "hrnetv2":  # HRNet-Semantic-Segmentation last_layer
        return nn.Sequential(
            nn.Conv2d(channels, channels, 1),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, num_classes, 1),
        )
    if kind == "c1":  # CSAIL C1 decoder: conv3x3_bn_relu(fc_dim, fc_dim // 4) + conv_last
        hidden = channels // 4
        return nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
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
    """Checkpoint key -> [`HRNetPrior`][semprior.priors.hrnet.HRNetPrior] state-dict key, for ``fmt`` in
    ``{"hrnet_seg", "csail_encoder", "csail_decoder"}``; ``None`` for keys outside the model."""

    def hrnet_seg(k: str) -> str | None:
        if k.startswith("model."):
            k = k[len("model.") :]
        if k.startswith("module."):
            k = k[len("module.") :]
        if k.startswith("last_layer."):
            return "head." + k[len("last_layer.") :]
        if k.startswith(_IGNORED):
            return None
        return "backbone." + k

    def csail_encoder(k: str) -> str | None:
        return "backbone." + k

    def csail_decoder(k: str) -> str | None:
        if k.startswith("cbr."):
            return "head." + k[len("cbr.") :]  # cbr.0 conv, cbr.1 BN -> head.0, head.1
        if k.startswith("conv_last."):
            return "head.3." + k[len("conv_last.") :]
        return None

    maps = {"hrnet_seg": hrnet_seg, "csail_encoder": csail_encoder, "csail_decoder": csail_decoder}
    if fmt not in maps:
        raise ValueError(f"unknown HRNet checkpoint format {fmt!r}; expected one of {sorted(maps)}")
    return maps[fmt]


def _weight_files(weights: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """A file, a (encoder, decoder) pair, or a CSAIL folder with encoder_/decoder_epoch_*.pth."""
    if not isinstance(weights, (str, os.PathLike)):
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
    4/8/16/32): timm's modules and weights, run by our forward as the official segmentation code
    runs them. Each fuse step upsamples a coarser branch bilinearly to the exact size of the
    branch it joins (timm's own forward upsamples by a fixed factor with ``nearest`` and fails
    on sides that are not multiples of 32), so any input size runs unpadded and equals the
    official forward. Inputs are normalised with the ImageNet mean/std.

    ``align_corners`` (of every bilinear upsampling: fuse steps and the head's concatenation)
    defaults to what the release was trained with, as recorded in
    [`KNOWN_WEIGHTS`][semprior.weights.KNOWN_WEIGHTS]: HRNet-Semantic-Segmentation ADE20K ``True`` (its
    config keeps the code default ``MODEL.ALIGN_CORNERS: True``), Pascal-Context and Cityscapes
    ``False`` (set in their configs), CSAIL ``False`` (hard-coded). The release is the loaded
    file's format, or without weights the one ``head`` implies (``"hrnetv2"``: the
    HRNet-Semantic-Segmentation release for ``dataset``; ``"c1"``: CSAIL).

    Args:
        variant: ``"w48"`` (the paper's) or ``"w18_small"`` (fast; for tests and CPU use).
        dataset: ``"ade20k"`` (150 classes), ``"pascal_context"`` (59) or ``"cityscapes"`` (19).
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
        align_corners: ``None`` (the release's, see above) or ``True``/``False`` to override it.

    ``self.load_report`` says how many tensors were loaded from where and which
    ``align_corners`` applies (``None`` without weights); ``self.align_corners`` holds it.

    Shape:
        - Input: ``(B, 3, H, W)`` in ``[0, 1]``, any size
        - features: 4 levels ``(B, C_i, ceil(H / s), ceil(W / s))``, ``s = 4, 8, 16, 32``
        - logits: ``(B, num_classes, ceil(H / 4), ceil(W / 4))``

    Examples:
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
        align_corners: bool | None = None,
    ) -> None:
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {sorted(_VARIANTS)}, got {variant!r}")
        if dataset not in _DATASETS:
            raise ValueError(f"dataset must be one of {sorted(_DATASETS)}, got {dataset!r}")
        timm_name, widths = _VARIANTS[variant]
        k = int(num_classes) if num_classes is not None else _DATASETS[dataset]
        super().__init__(
            PriorSpec(f"hrnet_{variant}-{dataset}", channels=widths, strides=(4, 8, 16, 32), num_classes=k)
        )

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
        self._check_fuse_layout()
        self.head = _head(self.head_kind, sum(widths), k)
        fmt = states[0][0] if states else ("csail" if self.head_kind == "c1" else "hrnet_seg")
        release_ac, release = _release_align_corners(fmt, dataset)
        self.align_corners = release_ac if align_corners is None else bool(align_corners)
        how = "release default" if align_corners is None else f"given; {release} uses {release_ac}"
        self.align_corners_source = f"align_corners={self.align_corners} ({how}, {release})"

        self.load_report: LoadReport | None = None
        if states:
            self.load_report = replace(self._load(states), settings=self.align_corners_source)
        self.freeze()

    def _check_fuse_layout(self) -> None:
        """Our forward reads timm's fuse layers as (conv1x1, BN, Upsample); refuse anything else."""
        for m in self.backbone.modules():
            for i, fuse in enumerate(getattr(m, "fuse_layers", None) or ()):
                for j, f in enumerate(fuse):
                    if j > i and not (len(f) == 3 and isinstance(f[2], nn.Upsample)):  # pragma: no cover
                        raise RuntimeError(f"unexpected timm HRNet fuse layer layout: {f}")

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
                        return [
                            resolve_weights(n, weights_dir=weights_dir, download=download)
                            for n in ("csail_hrnetv2_encoder", "csail_hrnetv2_decoder")
                        ]
                    except FileNotFoundError as second:
                        raise FileNotFoundError(
                            f"no HRNet-W48 ADE20K checkpoint found; either format works. (1) {first} (2) {second}"
                        ) from None
            return [resolve_weights(_RELEASES[dataset], weights_dir=weights_dir, download=download)]
        return _weight_files(weights)

    def _load(self, states: list[tuple[str, str, dict[str, Tensor]]]) -> LoadReport:
        # upstream key names are kept in the state so errors quote them; the encoder and decoder
        # files of the CSAIL pair have disjoint key sets (backbone names vs cbr./conv_last.)
        merged: dict[str, Tensor] = {}
        maps, fmts = {}, {}
        for fmt, _, sd in states:
            kmap = hrnet_key_map(fmt)
            for key, v in sd.items():
                merged[key] = v
                maps[key], fmts[key] = kmap, fmt
        source = " + ".join(f"{Path(path).name} [{fmt}]" for fmt, path, _ in states)

        def ignore(key: str) -> bool:  # training-loss buffers some releases save beside the model
            bare = key[len("model.") :] if key.startswith("model.") else key
            return bare.startswith(_IGNORED)

        def bookkeeping(key: str) -> bool:  # CSAIL sync-BN buffers: CSAIL files, beside a BN's statistics
            layer, _, leaf = key.rpartition(".")
            return fmts[key].startswith("csail") and leaf in _CSAIL_BOOKKEEPING and f"{layer}.running_mean" in merged

        return load_mapped(self, merged, lambda k: maps[k](k), source=source, ignore=ignore, skip=bookkeeping)

    def _forward(self, img: Tensor) -> PriorOutput:
        # the constants are made in the image's dtype (not kept as float32 buffers), so a float64
        # run normalises with the exact values, as the official float64 comparison does
        mean, std = img.new_tensor(_MEAN).view(1, 3, 1, 1), img.new_tensor(_STD).view(1, 3, 1, 1)
        feats = _hrnet_body(self.backbone, (img - mean) / std, self.align_corners)
        size = feats[0].shape[-2:]
        up = [feats[0]] + [_upsample_to(f, size, self.align_corners) for f in feats[1:]]
        return PriorOutput(features=feats, logits=self.head(torch.cat(up, dim=1)))
