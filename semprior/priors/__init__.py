"""Semantic priors: frozen segmentation backends (HRNet, SAM, any timm backbone) and a weight-free prior.

Every prior follows :class:`~semprior.priors.base.SegPrior`: ``prior.spec`` declares channels and
strides up front; ``prior(img)`` returns a :class:`~semprior.priors.base.PriorOutput`.
Importing this package imports no optional dependency.
"""

from semprior.priors.base import PriorOutput, PriorSpec, SegPrior, crop_to_strides, out_size, pad_to_multiple
from semprior.priors.region import RegionPrior, region_descriptors

__all__ = [
    "PriorOutput",
    "PriorSpec",
    "RegionPrior",
    "SegPrior",
    "crop_to_strides",
    "out_size",
    "pad_to_multiple",
    "region_descriptors",
]
