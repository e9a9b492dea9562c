"""Semantic priors: frozen segmentation backends (HRNet, SAM, any timm backbone) and a weight-free prior.

Every prior follows [`SegPrior`][semprior.priors.base.SegPrior]: ``prior.spec`` declares channels and
strides up front; ``prior(img)`` returns a [`PriorOutput`][semprior.priors.base.PriorOutput].
Importing this package imports no optional dependency (timm, segment_anything are imported when
a backend is constructed).
"""

from semprior.priors.base import PriorOutput, PriorSpec, SegPrior, crop_to_strides, out_size, pad_to_multiple
from semprior.priors.hrnet import HRNetPrior
from semprior.priors.region import RegionPrior, region_descriptors
from semprior.priors.sam import SAMPrior
from semprior.priors.timm import TimmPrior

__all__ = [
    "HRNetPrior",
    "PriorOutput",
    "PriorSpec",
    "RegionPrior",
    "SAMPrior",
    "SegPrior",
    "TimmPrior",
    "crop_to_strides",
    "out_size",
    "pad_to_multiple",
    "region_descriptors",
]
