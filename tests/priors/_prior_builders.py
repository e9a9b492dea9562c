"""Tiny, random-init builders for every prior backend (no weights, no network)."""

from __future__ import annotations

import pytest
import torch


def build_region():
    from semprior.priors import RegionPrior

    return RegionPrior(levels=3)


def build_hrnet():
    from semprior.priors import HRNetPrior

    torch.manual_seed(0)
    return HRNetPrior("w18_small", dataset="pascal_context")


def tiny_sam_encoder(img_size: int = 64):
    """A tiny segment_anything image encoder (the test skips when the sam extra is not installed)."""
    modeling = pytest.importorskip("segment_anything.modeling")
    torch.manual_seed(0)
    return modeling.ImageEncoderViT(img_size=img_size, patch_size=16, embed_dim=96, depth=2, num_heads=2, out_chans=256)


def build_sam():
    from semprior.priors import SAMPrior

    return SAMPrior(model=tiny_sam_encoder())


def build_timm():
    from semprior.priors import TimmPrior

    torch.manual_seed(0)
    return TimmPrior("resnet18", out_indices=(1, 2, 3))


BUILDERS = {"region": build_region, "hrnet": build_hrnet, "sam": build_sam, "timm": build_timm}
