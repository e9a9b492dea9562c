"""Image-quality metrics with an explicit evaluation protocol (print it beside every number).

``semprior.metrics.niqe`` is the NIQE module (``from semprior.metrics.niqe import niqe`` gives the
function; so does ``semprior.niqe``).
"""

from semprior.metrics.niqe import (
    NIQE_MODELS,
    NIQEModel,
    authors_niqe_model,
    default_niqe_model,
    fit_niqe_model,
    fitted_niqe_model,
)
from semprior.metrics.noref import brightness, colorfulness, exposure_clipping, noise_sigma, noref_scores, rms_contrast
from semprior.metrics.protocol import (
    MetricProtocol,
    gray_mean,
    prepare_image,
    prepare_pair,
    prepare_prediction,
    rgb_to_y,
)
from semprior.metrics.psnr import psnr
from semprior.metrics.pyiqa_metric import PyIQAMetric, pyiqa_metric
from semprior.metrics.scorer import ReferenceScorer
from semprior.metrics.ssim import gaussian_window, ssim, structural_similarity

__all__ = [
    "MetricProtocol",
    "NIQEModel",
    "NIQE_MODELS",
    "PyIQAMetric",
    "ReferenceScorer",
    "authors_niqe_model",
    "brightness",
    "colorfulness",
    "default_niqe_model",
    "exposure_clipping",
    "fit_niqe_model",
    "fitted_niqe_model",
    "gaussian_window",
    "gray_mean",
    "noise_sigma",
    "noref_scores",
    "prepare_image",
    "prepare_pair",
    "prepare_prediction",
    "psnr",
    "pyiqa_metric",
    "rgb_to_y",
    "rms_contrast",
    "ssim",
    "structural_similarity",
]
