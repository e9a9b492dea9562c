"""LPIPS (Zhang et al., CVPR 2018): learned perceptual distance between an image and its reference.

The linear heads are the authors' v0.1 weights that torchmetrics ships inside its package; the
backbone (AlexNet, VGG16 or SqueezeNet 1.1 with ImageNet weights) is torchvision's, read from the
torch hub cache (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``).
semprior never downloads it: when the file is absent, [`LPIPS`][semprior.metrics.lpips.LPIPS] raises
one line naming the file and where to put it. Needs ``pip install 'semprior[lpips]'``.

Lower is more similar; ``LPIPS(x, x) == 0``. Images are `(B, 3, H, W)` in ``[0, 1]`` (scaled to
``[-1, 1]`` inside, as the authors' code expects), scored as given: no quantisation, no
GT-mean correction.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from semprior._checks import check_image, check_same_shape

__all__ = ["LPIPS", "LPIPS_NETS", "lpips_backbone_file"]

#: backbone name -> torchvision weights enum name
LPIPS_NETS = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights", "squeeze": "SqueezeNet1_1_Weights"}


def lpips_backbone_file(net: str = "alex") -> Path:
    """Where torchvision looks for the ImageNet weights of LPIPS' backbone ``net`` (the torch hub cache).

    Examples:
        >>> lpips_backbone_file("alex").name
        'alexnet-owt-7be5be79.pth'
    """
    if net not in LPIPS_NETS:
        raise ValueError(f"LPIPS backbone must be one of {sorted(LPIPS_NETS)}, got {net!r}")
    from semprior._optional import require

    models = require("torchvision.models", "lpips", purpose="LPIPS' backbone")
    url = getattr(models, LPIPS_NETS[net]).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


class LPIPS(nn.Module):
    """Per-image LPIPS distance, shape `(B,)`; lower is more similar.

    Args:
        net: the backbone, ``"alex"`` (the authors' default, as in LLIE papers' tables), ``"vgg"``
            or ``"squeeze"``.

    Raises:
        ImportError: torchmetrics (the ``lpips`` extra) or torchvision is not installed.
        FileNotFoundError: the backbone's ImageNet weights are not in the torch hub cache.
    """

    lower_better = True

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        path = lpips_backbone_file(net)
        if not path.is_file():  # torchvision would download it
            raise FileNotFoundError(
                f"LPIPS ({net}) needs torchvision's ImageNet weights at {path} (semprior never downloads): "
                f'copy {path.name} there, e.g. from a machine where `python -c "import torchvision; '
                f"torchvision.models.{path.name.split('-')[0]}(weights='DEFAULT')\"` has fetched it, or set TORCH_HOME"
            )
        from semprior._optional import require

        lpip = require("torchmetrics.image.lpip", "lpips", purpose="LPIPS")
        self.net = net
        self.metric = lpip.LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="none", normalize=True)
        self.metric.eval()

    @torch.no_grad()
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        check_image(pred, "prediction")
        check_image(target, "target")
        check_same_shape(pred, target, ("prediction", "target"))
        dev = next(self.metric.parameters()).device
        self.metric.reset()
        self.metric.update(pred.float().clamp(0, 1).to(dev), target.float().clamp(0, 1).to(dev))
        return self.metric.compute().reshape(-1).to(pred.device)
