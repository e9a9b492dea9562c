"""Unweighted training losses (function + Module pairs); weights live in the model configs."""

from semprior.losses.clip_prompt import CLIPPromptLoss  # open_clip is imported when the loss is built
from semprior.losses.context import SemanticContextLoss, semantic_context_loss
from semprior.losses.edge import EdgeLoss, edge_loss, image_gradients
from semprior.losses.exposure import ExposureLoss, GTMeanLoss, exposure_loss, gtmean_loss
from semprior.losses.pixel import PixelLoss, pixel_loss
from semprior.losses.semantic_kl import SemanticKLLoss, semantic_kl_loss
from semprior.losses.ssim import SSIMLoss, ssim_loss

__all__ = [
    "CLIPPromptLoss",
    "EdgeLoss",
    "ExposureLoss",
    "GTMeanLoss",
    "PixelLoss",
    "SSIMLoss",
    "SemanticContextLoss",
    "SemanticKLLoss",
    "edge_loss",
    "exposure_loss",
    "gtmean_loss",
    "image_gradients",
    "pixel_loss",
    "semantic_context_loss",
    "semantic_kl_loss",
    "ssim_loss",
]
