"""Learned no-reference metrics from pyiqa (IQA-PyTorch), run from weights the user already has.

semprior's own no-reference scores ([`noref_scores`][semprior.metrics.noref.noref_scores]) need no
weights. pyiqa's learned metrics (MUSIQ, CNNIQA, ...) do, and pyiqa downloads them on first use.
[`pyiqa_metric`][semprior.metrics.pyiqa_metric.pyiqa_metric] never lets it: it takes a local
weights file, passes it as ``pretrained_model_path`` to ``pyiqa.create_metric`` and accepts only
the metrics whose network pyiqa builds without fetching anything else (`OFFLINE_METRICS`).

pyiqa is an extra (``pip install 'semprior[pyiqa]'``; not in ``semprior[all]``, as it pulls in
OpenCV, transformers and more). The API used here was checked in pyiqa's source: the 0.1.16 wheel
and the repository (tags v0.1.13 to v0.1.15 and commit 01ae427 of 2026-05-14, which the 0.1.16
wheel matches file for file here): ``create_metric(metric_name, as_loss=False, device=None,
**kwargs)`` (``api_helpers.py``), the keyword arguments going to the network's constructor
(``models/inference_model.py``), and
``MUSIQ`` / ``CNNIQA`` loading ``pretrained_model_path`` instead of their download URL
(``archs/musiq_arch.py``, ``archs/cnniqa_arch.py``).

pyiqa reads the weights with ``torch.load(..., weights_only=False)``: give it only files you trust.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from semprior._checks import check_image
from semprior._optional import require

__all__ = ["OFFLINE_METRICS", "PyIQAMetric", "pyiqa_metric"]

#: pyiqa metric name -> extra constructor options. These networks are built without any download
#: when ``pretrained_model_path`` is a local file (NIMA, HyperIQA, DBCNN, PaQ-2-PiQ and TOPIQ also
#: fetch ImageNet backbones, CLIP-IQA its CLIP model, so they are not offered).
OFFLINE_METRICS: dict[str, dict] = {
    "musiq": {},  # KonIQ-10k head, score ~0-100, higher = better
    "musiq-spaq": {},
    "musiq-paq2piq": {},
    # pyiqa sizes MUSIQ's 10-bin AVA head only when it downloads the AVA weights itself
    "musiq-ava": {"num_class": 10},
    "cnniqa": {},  # KonIQ-10k, score ~0-1, higher = better
}


class PyIQAMetric:
    """A pyiqa no-reference metric as ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B,)`` float64 scores.

    Built by [`pyiqa_metric`][semprior.metrics.pyiqa_metric.pyiqa_metric]. ``lower_better`` is
    pyiqa's own flag for the metric.

    Shape:
        - img: `(B, 3, H, W)` -> `(B,)`
    """

    def __init__(self, name: str, net: torch.nn.Module, device: torch.device) -> None:
        self.name = name
        self.net = net
        self.device = device
        self.lower_better = bool(getattr(net, "lower_better", False))

    def __call__(self, img: Tensor) -> Tensor:
        check_image(img, "img", unit_range=True)
        b = img.shape[0]
        with torch.no_grad():
            out = self.net(img.to(self.device, torch.float32))
        out = torch.as_tensor(out)
        if out.numel() != b:
            raise RuntimeError(
                f"pyiqa metric {self.name!r} returned a tensor of shape {tuple(out.shape)} for a batch of {b}; "
                "expected one score per image"
            )
        return out.detach().reshape(b).to("cpu", torch.float64)

    def __repr__(self) -> str:
        return f"PyIQAMetric({self.name!r}, lower_better={self.lower_better}, device={self.device})"


def pyiqa_metric(name: str, weights: str | os.PathLike, device: str | torch.device = "cpu") -> PyIQAMetric:
    """Build the pyiqa metric ``name`` from the local weights file ``weights``; nothing is downloaded.

    Args:
        name: one of `OFFLINE_METRICS` (pyiqa's names, e.g. ``"musiq"``).
        weights: the metric's weights file as pyiqa publishes it (e.g. MUSIQ's KonIQ ``.pth``).
        device: where the metric runs.

    Raises:
        ValueError: ``name`` is not in `OFFLINE_METRICS`, or ``weights`` is a URL.
        FileNotFoundError: ``weights`` is not a file.
        ImportError: pyiqa is not installed (the message says ``pip install 'semprior[pyiqa]'``).

    Examples:
        ```python
        musiq = pyiqa_metric("musiq", "weights/musiq_koniq_ckpt.pth")
        musiq(torch.rand(2, 3, 256, 256))   # (2,) scores, higher = better
        ```
    """
    if name not in OFFLINE_METRICS:
        raise ValueError(
            f"pyiqa metric {name!r} is not offered: choose one of {sorted(OFFLINE_METRICS)} (the metrics pyiqa builds "
            "from a local weights file without downloading a backbone)"
        )
    text = os.fspath(weights)
    if "://" in text:
        raise ValueError(
            f"pyiqa weights must be a local file, got the URL {text!r}: semprior never downloads weights; "
            "download the file yourself and pass its path"
        )
    path = Path(text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pyiqa weights for {name!r} not found: {path} is not a file")
    pyiqa = require("pyiqa", extra="pyiqa", purpose=f"the learned no-reference metric {name!r}")
    dev = torch.device(device)
    net = pyiqa.create_metric(name, as_loss=False, device=dev, pretrained_model_path=str(path), **OFFLINE_METRICS[name])
    net.eval()
    return PyIQAMetric(name, net, dev)
