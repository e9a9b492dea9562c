"""Retinex decompositions: learned (one-stage, Retinexformer-style) and classical (max-RGB)."""

from semprior.retinex.classical import classical_decompose, smooth_illumination
from semprior.retinex.decomposer import RetinexDecomposer, RetinexOutput
from semprior.retinex.illumination import IlluminationEstimator

__all__ = ["IlluminationEstimator", "RetinexDecomposer", "RetinexOutput", "classical_decompose", "smooth_illumination"]
