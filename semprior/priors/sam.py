"""Segment-Anything prior: the SAM image encoder (256-ch, stride-16 embeddings) + optional region map."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._optional import require
from semprior.priors.base import PriorOutput, PriorSpec, SegPrior, out_size
from semprior.weights import LoadReport, load_checkpoint, load_mapped, resolve_weights

__all__ = ["SAMPrior"]

_BUILDERS = {"vit_b": "build_sam_vit_b", "vit_l": "build_sam_vit_l", "vit_h": "build_sam_vit_h"}
# SAM's pixel statistics (0-255 scale), as in segment_anything.modeling.Sam
_MEAN = (123.675, 116.28, 103.53)
_STD = (58.395, 57.12, 57.375)


class SAMPrior(SegPrior):
    """Segment-Anything image-encoder prior.

    The image is resized so that its longest side is ``img_size`` (bilinear, antialiased, as
    ``ResizeLongestSide.apply_image_torch``), normalised with SAM's pixel mean/std, zero-padded
    to ``img_size x img_size`` (bottom/right, as ``Sam.preprocess``) and encoded. The valid part
    of the ``(256, img_size/16, img_size/16)`` embedding is cropped and resized (bilinear) to
    ``ceil(H/16) x ceil(W/16)``, so the declared stride 16 holds for every input size (for inputs
    larger than ``img_size`` the embedding is upsampled: SAM sees at most ``img_size`` pixels).

    With ``region_map=True`` the full SAM runs ``SamAutomaticMaskGenerator`` per image (slow; a
    numpy/uint8 pipeline, no gradients) and ``PriorOutput.extras["regions"]`` holds a
    ``(B, 1, H, W)`` int64 class-agnostic region map: 0 = no mask, ``1..n`` = masks by
    decreasing area (smaller masks painted over larger ones).

    Args:
        model_type: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"`` (ignored when ``model`` is given).
        checkpoint: a SAM checkpoint file (``sam_vit_*.pth``), ``"auto"`` (known file in the
            weights directory / ``$SEMPRIOR_WEIGHTS``; with ``download=True`` fetched from Meta's
            link), or ``None`` for random init.
        download: allow the download for ``checkpoint="auto"``.
        model: a built ``segment_anything`` ``Sam`` or ``ImageEncoderViT`` (e.g. a tiny test
            encoder); its ``img_size`` is used.
        region_map: also compute the automatic-mask region map (needs a full ``Sam``).
        mask_generator_kwargs: passed to ``SamAutomaticMaskGenerator`` (e.g. ``points_per_side``).
        weights_dir: weights directory for ``"auto"``.

    ``load_report`` counts the image-encoder tensors loaded (all of SAM with ``region_map``).

    Shape:
        - Input: ``(B, 3, H, W)`` in ``[0, 1]``
        - features: one level ``(B, 256, ceil(H / 16), ceil(W / 16))``
        - logits: ``None`` (class-agnostic, ``spec.num_classes == 0``)

    Examples:
        >>> from segment_anything.modeling import ImageEncoderViT
        >>> enc = ImageEncoderViT(img_size=64, embed_dim=96, depth=2, num_heads=2, out_chans=256)
        >>> prior = SAMPrior(model=enc)
        >>> prior(torch.rand(1, 3, 97, 131)).features[0].shape
        torch.Size([1, 256, 7, 9])
    """

    pixel_mean: Tensor  # buffers, declared for the type checker
    pixel_std: Tensor

    def __init__(
        self,
        model_type: str = "vit_b",
        checkpoint: str | os.PathLike | None = None,
        download: bool = False,
        model: nn.Module | None = None,
        region_map: bool = False,
        mask_generator_kwargs: dict | None = None,
        weights_dir: str | os.PathLike | None = None,
    ) -> None:
        sa = require("segment_anything", purpose="SAMPrior")
        built = model is None
        if built:
            if model_type not in _BUILDERS:
                raise ValueError(f"model_type must be one of {sorted(_BUILDERS)}, got {model_type!r}")
            model = getattr(sa, _BUILDERS[model_type])(checkpoint=None)
        encoder = getattr(model, "image_encoder", model)
        if not isinstance(encoder, sa.modeling.ImageEncoderViT):
            raise TypeError(f"model must be a segment_anything Sam or ImageEncoderViT, got {type(model).__name__}")
        sam = model if hasattr(model, "image_encoder") else None
        if region_map and sam is None:
            raise ValueError("region_map=True needs a full Sam (pass model=build_sam_vit_b() or model=None)")
        out_ch = encoder.neck[-2].out_channels if hasattr(encoder, "neck") else 256
        name = f"sam_{model_type}" if built else "sam"
        super().__init__(PriorSpec(name, channels=(out_ch,), strides=(16,), num_classes=0))
        self.img_size = int(encoder.img_size)
        self.patch = int(encoder.patch_embed.proj.stride[0])
        self.region_map = bool(region_map)
        self.mask_generator_kwargs = dict(mask_generator_kwargs or {})
        # keep only what runs: the encoder, or the full Sam for the region map
        self.sam = sam if region_map else None
        self.encoder = encoder
        self.register_buffer("pixel_mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.load_report: LoadReport | None = None
        if checkpoint is None and download:
            checkpoint = "auto"
        if checkpoint is not None:
            path: str | os.PathLike
            if isinstance(checkpoint, str) and checkpoint == "auto":
                path = resolve_weights(f"sam_{model_type}", weights_dir=weights_dir, download=download)
            else:
                path = checkpoint
            self.load_report = self._load(load_checkpoint(path), str(path))
        self.freeze()

    def _load(self, state: dict[str, Tensor], source: str) -> LoadReport:
        if self.sam is not None:
            return load_mapped(self.sam, state, lambda k: k, source=source)
        # features only: image_encoder.* must match exactly; prompt encoder / mask decoder are unused
        return load_mapped(
            self,
            state,
            lambda k: "encoder." + k[len("image_encoder.") :] if k.startswith("image_encoder.") else None,
            source=source,
            ignore=lambda k: k.startswith(("prompt_encoder.", "mask_decoder.")),
        )

    def _resize_longest(self, img: Tensor) -> tuple[Tensor, tuple[int, int]]:
        h, w = img.shape[-2:]
        scale = self.img_size / max(h, w)
        nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
        if (nh, nw) != (h, w):
            img = F.interpolate(img, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        return img, (nh, nw)

    def _forward(self, img: Tensor) -> PriorOutput:
        h, w = img.shape[-2:]
        x, (nh, nw) = self._resize_longest(img)
        x = (x * 255 - self.pixel_mean) / self.pixel_std
        x = F.pad(x, (0, self.img_size - nw, 0, self.img_size - nh))
        emb = self.encoder(x)
        valid = emb[..., : -(-nh // self.patch), : -(-nw // self.patch)]
        feat = F.interpolate(valid, size=out_size(h, w, 16), mode="bilinear", align_corners=False)
        extras = {"regions": self._regions(img)} if self.region_map else {}
        return PriorOutput(features=[feat], logits=None, extras=extras)

    def _regions(self, img: Tensor) -> Tensor:
        sa = require("segment_anything", purpose="SAMPrior(region_map=True)")
        gen = sa.SamAutomaticMaskGenerator(self.sam, **self.mask_generator_kwargs)
        maps = []
        for im in img:
            arr = (im.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            masks = sorted(gen.generate(arr), key=lambda m: m["area"], reverse=True)
            lab = torch.zeros(im.shape[-2:], dtype=torch.int64)
            for i, m in enumerate(masks, start=1):
                lab[torch.from_numpy(m["segmentation"])] = i
            maps.append(lab)
        return torch.stack(maps).unsqueeze(1).to(img.device)
