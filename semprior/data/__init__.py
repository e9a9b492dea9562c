"""Data: paired-folder datasets, segmentation datasets, low-light synthesis, transforms, bundled sample photos, image
I/O."""

from semprior.data.datasets import LOLv1, LOLv2, PairedFolder, holdout_split, list_images, load_rgb
from semprior.data.io import ImageReadError, read_image, write_image
from semprior.data.samples import DEFAULT_SAMPLE_NAMES, default_clean_images
from semprior.data.segmentation import (
    LowLightSegmentation,
    SegmentationDataset,
    SegmentationFolder,
    SyntheticSegmentation,
)
from semprior.data.synthesis import LowLightConfig, LowLightSynthesis, SyntheticPairs, synthesize_low_light
from semprior.data.transforms import PairedAugment, batch_random_crop, paired_random_crop, paired_random_flip

__all__ = [
    "DEFAULT_SAMPLE_NAMES",
    "ImageReadError",
    "LOLv1",
    "LOLv2",
    "LowLightConfig",
    "LowLightSegmentation",
    "LowLightSynthesis",
    "PairedAugment",
    "PairedFolder",
    "SegmentationDataset",
    "SegmentationFolder",
    "SyntheticPairs",
    "SyntheticSegmentation",
    "batch_random_crop",
    "default_clean_images",
    "holdout_split",
    "list_images",
    "load_rgb",
    "paired_random_crop",
    "paired_random_flip",
    "read_image",
    "synthesize_low_light",
    "write_image",
]
