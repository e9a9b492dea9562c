"""Image-quality metrics with an explicit evaluation protocol (print it beside every number)."""

from semprior.metrics.protocol import MetricProtocol, prepare_pair, rgb_to_y
from semprior.metrics.psnr import psnr
from semprior.metrics.ssim import gaussian_window, ssim, structural_similarity

__all__ = ["MetricProtocol", "gaussian_window", "prepare_pair", "psnr", "rgb_to_y", "ssim", "structural_similarity"]
