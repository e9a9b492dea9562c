"""PSNR and SSIM of many predictions against one reference, the reference's work done once."""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from semprior._checks import check_image, check_same_shape
from semprior.metrics.protocol import MetricProtocol, gray_mean, prepare_image, prepare_prediction
from semprior.metrics.psnr import _psnr_from_mse, _psnr_prepared
from semprior.metrics.ssim import _check_ssim_size, _ssim_prepared, _ssim_sse_prepared

__all__ = ["ReferenceScorer"]


class ReferenceScorer:
    """Scores any number of predictions against one reference under a protocol and its GT-mean variant.

    An evaluation scores every method twice (as is and GT-mean corrected) against the same
    reference. [`psnr`][semprior.metrics.psnr.psnr] and [`ssim`][semprior.metrics.ssim.ssim]
    prepare the reference again on every call and blur its two SSIM moment maps (of five) each
    time; this object prepares it once, keeps it in float64 and keeps its blurred SSIM statistics
    after the first SSIM. The values are those of `psnr` / `ssim` (the same formulas, the same
    strips; the tests compare them to 1e-12).

    Memory: the reference in float64 plus, after the first SSIM, three float64 maps of the 'valid'
    SSIM window positions: about 32 bytes per pixel and channel in all, 0.2 GB for a 1920x1080 RGB
    reference, 0.8 GB for 3840x2160 (`psnr` / `ssim` keep nothing between calls).

    Args:
        target: `(B, 3, H, W)` reference images in ``[0, protocol.data_range]``.
        protocol: defaults to ``MetricProtocol()``; its ``gt_mean`` is the default of each call.

    Examples:
        >>> import torch
        >>> y = torch.rand(1, 3, 32, 32)
        >>> scorer = ReferenceScorer(y)
        >>> s = scorer.scores(y * 0.5)
        >>> sorted(s), s["psnr_gtmean"] > s["psnr"]
        (['psnr', 'psnr_gtmean', 'ssim', 'ssim_gtmean'], True)
    """

    def __init__(self, target: Tensor, protocol: MetricProtocol | None = None) -> None:
        self.protocol = MetricProtocol() if protocol is None else protocol
        check_image(target, "target")
        self._raw = target
        self._gray = gray_mean(target)
        self._target = prepare_image(target, self.protocol).double()
        self._stats: list = []

    def _prepare(self, pred: Tensor, gt_mean: bool | None, checked: bool = False) -> tuple[Tensor, MetricProtocol]:
        """The prepared prediction in its own dtype (the metrics widen it to float64) and its protocol."""
        if not checked:
            self._check(pred)
        protocol = self.protocol if gt_mean is None else replace(self.protocol, gt_mean=gt_mean)
        return prepare_prediction(pred, self._gray, protocol), protocol

    def _check(self, pred: Tensor) -> None:
        check_image(pred, "prediction")
        check_same_shape(pred, self._raw, ("prediction", "target"))

    def psnr(self, pred: Tensor, gt_mean: bool | None = None) -> Tensor:
        """Per-image PSNR in dB, shape `(B,)`, as `psnr(pred, target, protocol)`; ``gt_mean``
        overrides the protocol's."""
        a, protocol = self._prepare(pred, gt_mean)
        return _psnr_prepared(a.double(), self._target, protocol.data_range).to(pred.dtype)

    def ssim(self, pred: Tensor, gt_mean: bool | None = None) -> Tensor:
        """Per-image SSIM, shape `(B,)`, as `ssim(pred, target, protocol)`; ``gt_mean`` overrides
        the protocol's."""
        a, protocol = self._prepare(pred, gt_mean)
        _check_ssim_size(a)
        return _ssim_prepared(a.double(), self._target, protocol.data_range, self._stats).to(pred.dtype)

    def scores(self, pred: Tensor) -> dict[str, float]:
        """``psnr``, ``ssim``, ``psnr_gtmean`` and ``ssim_gtmean`` of a single prediction `(1, 3, H, W)`
        (the plain pair under the protocol without GT-mean, the other under it with): each
        preparation of the prediction serves both of its metrics, and PSNR's squared differences
        are summed during SSIM's pass over the image."""
        if pred.shape[0] != 1:
            raise ValueError(
                f"scores() takes one image (1, 3, H, W), got a batch of {pred.shape[0]}; call psnr()/ssim() for batches"
            )
        self._check(pred)  # once for both preparations
        out = {}
        for suffix, gt_mean in (("", False), ("_gtmean", True)):
            a, protocol = self._prepare(pred, gt_mean, checked=True)
            _check_ssim_size(a)
            ssim_val, sse = _ssim_sse_prepared(a, self._target, protocol.data_range, self._stats)
            out["psnr" + suffix] = float(_psnr_from_mse(sse / a[0].numel(), protocol.data_range).to(pred.dtype))
            out["ssim" + suffix] = float(ssim_val.to(pred.dtype))
        return {k: out[k] for k in ("psnr", "ssim", "psnr_gtmean", "ssim_gtmean")}
