"""Known pretrained checkpoints, where they come from, and how they are found and loaded.

Resolution order (as timm/open_clip: explicit first, network only on request):

1. an explicit path given by the caller;
2. a weights directory: the ``weights_dir`` argument, else the environment variable
   ``SEMPRIOR_WEIGHTS``;
3. a download, **only** when the caller passes ``download=True``, through the upstream tool
   (``torch.hub.download_url_to_file`` for direct links, open_clip for CLIP tags);
4. otherwise a ``FileNotFoundError`` naming the file, where to get it, and where to put it.

Checkpoints are always read with ``torch.load(..., weights_only=True)`` and loaded strictly
through explicit key maps ([`load_mapped`][semprior.weights.load_mapped]), which report how many tensors matched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "ENV_VAR",
    "KNOWN_WEIGHTS",
    "LoadReport",
    "WeightsSpec",
    "check_weights_dir",
    "default_weights_dir",
    "load_checkpoint",
    "load_mapped",
    "resolve_weights",
    "sha256_file",
]

#: the one environment variable naming the weights directory
ENV_VAR = "SEMPRIOR_WEIGHTS"


@dataclass(frozen=True)
class WeightsSpec:
    """A known checkpoint file.

    Attributes:
        name: key in [`KNOWN_WEIGHTS`][semprior.weights.KNOWN_WEIGHTS].
        filename: the upstream file name as the upstream README publishes it (what a download
            is saved as).
        aliases: other names the upstream READMEs publish for the same checkpoint (another
            branch's README); each is accepted as downloaded, and resolution reports which it found.
        sha256: full SHA-256 of the upstream file, or ``None`` where no hash is published
            upstream (then only presence and loading are checked).
        source_url: where to get it (a direct link when one exists, else the release page).
        licence: the licence the upstream project states for the weights.
        notes: format details (key layout, companion files, caveats).
        direct: ``True`` when ``source_url`` is a direct download link usable by ``download=True``.
        torch_loadable: ``False`` for files ``torch.load`` cannot read (TorchScript archives).
        align_corners: the ``align_corners`` of the bilinear upsampling the release was trained
            with (segmentation releases; ``None`` elsewhere). Loaders default to it.
    """

    name: str
    filename: str
    sha256: str | None
    source_url: str
    licence: str
    notes: str = ""
    direct: bool = False
    torch_loadable: bool = True
    aliases: tuple[str, ...] = ()
    align_corners: bool | None = None

    @property
    def filenames(self) -> tuple[str, ...]:
        """``filename`` then ``aliases``: every name the file is accepted under."""
        return (self.filename, *self.aliases)


# the HRNet-OCR branch README of HRNet/HRNet-Semantic-Segmentation links its files here
_HRNET_OCR_FILES = "https://github.com/hsfzxjy/models.storage/releases/download/HRNet-OCR"
_CSAIL = "http://sceneparsing.csail.mit.edu/model/pytorch/ade20k-hrnetv2-c1"
_SAM = "https://dl.fbaipublicfiles.com/segment_anything"

KNOWN_WEIGHTS: dict[str, WeightsSpec] = {
    w.name: w
    for w in (
        WeightsSpec(
            "hrnet_w48_ade20k",
            "hrnet_ade20k_4312_torch04.pth",
            None,
            _HRNET_OCR_FILES + "/hrnet_ade20k_4312_torch04.pth",
            "MIT (HRNet-Semantic-Segmentation repository)",
            "HRNetV2-W48 + 1x1 head ('last_layer'), 150 classes, 'model.' prefix (FullModel wrapper); "
            "HRNet-OCR branch README, ADE20K table. Trained with PyTorch 0.4 and InPlaceABNSync: no "
            "num_batches_tracked. align_corners True: the ADE20K configs keep the code default "
            "MODEL.ALIGN_CORNERS: True.",
            direct=True,
            align_corners=True,
        ),
        WeightsSpec(
            "hrnet_w48_pascal_context",
            "hrnet_pascal_ctx_5410_torch11.pth",
            None,
            _HRNET_OCR_FILES + "/hrnet_pascal_ctx_5410_torch11.pth",
            "MIT (HRNet-Semantic-Segmentation repository)",
            "HRNetV2-W48 + 1x1 head, 59 classes (the SKF setting), 'model.' prefix; HRNet-OCR branch "
            "README (520x520). The master branch README publishes hrnet_w48_pascal_context_cls59_480x480.pth "
            "(OneDrive/BaiduYun). align_corners False: set in the pascal_ctx configs (master: PyTorch "
            "0.4.1's F.interpolate default).",
            direct=True,
            aliases=("hrnet_w48_pascal_context_cls59_480x480.pth",),
            align_corners=False,
        ),
        WeightsSpec(
            "hrnet_w48_cityscapes",
            "hrnet_cs_8090_torch11.pth",
            None,
            _HRNET_OCR_FILES + "/hrnet_cs_8090_torch11.pth",
            "MIT (HRNet-Semantic-Segmentation repository)",
            "HRNetV2-W48 + 1x1 head, 19 classes, 'model.' prefix plus the class-weighted loss buffer "
            "'loss.criterion.weight' (ignored); HRNet-OCR branch README. The master branch README "
            "publishes hrnet_w48_cityscapes_cls19_1024x2048_trainset.pth (OneDrive/BaiduYun). "
            "align_corners False: set in the seg_hrnet_w48 cityscapes configs.",
            direct=True,
            aliases=("hrnet_w48_cityscapes_cls19_1024x2048_trainset.pth",),
            align_corners=False,
        ),
        WeightsSpec(
            "csail_hrnetv2_encoder",
            "encoder_epoch_30.pth",
            None,
            _CSAIL + "/encoder_epoch_30.pth",
            "BSD-3-Clause (CSAILVision/semantic-segmentation-pytorch)",
            "ade20k-hrnetv2-c1 encoder (HRNetV2-W48 backbone keys, no prefix); pair with the decoder. "
            "Put both in <weights dir>/ade20k-hrnetv2-c1/. CSAIL's SynchronizedBatchNorm saves "
            "_tmp_running_mean/_tmp_running_var/_running_iter per BN (skipped by name). align_corners "
            "False: hard-coded in mit_semseg/models/hrnet.py.",
            direct=True,
            align_corners=False,
        ),
        WeightsSpec(
            "csail_hrnetv2_decoder",
            "decoder_epoch_30.pth",
            None,
            _CSAIL + "/decoder_epoch_30.pth",
            "BSD-3-Clause (CSAILVision/semantic-segmentation-pytorch)",
            "ade20k-hrnetv2-c1 C1 decoder: cbr (3x3 conv 720->180, BN, ReLU) + conv_last (180->150).",
            direct=True,
            align_corners=False,
        ),
        WeightsSpec(
            "sam_vit_b",
            "sam_vit_b_01ec64.pth",
            None,
            _SAM + "/sam_vit_b_01ec64.pth",
            "Apache-2.0",
            "segment-anything ViT-B (image encoder keys 'image_encoder.*').",
            direct=True,
        ),
        WeightsSpec(
            "sam_vit_l",
            "sam_vit_l_0b3195.pth",
            None,
            _SAM + "/sam_vit_l_0b3195.pth",
            "Apache-2.0",
            "segment-anything ViT-L.",
            direct=True,
        ),
        WeightsSpec(
            "sam_vit_h",
            "sam_vit_h_4b8939.pth",
            None,
            _SAM + "/sam_vit_h_4b8939.pth",
            "Apache-2.0",
            "segment-anything ViT-H (the SAM default).",
            direct=True,
        ),
        WeightsSpec(
            "clip_vit_b16_openai",
            "ViT-B-16.pt",
            # published as the folder name of OpenAI's download URL, which the CLIP loader checks
            "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
            "https://openaipublic.azureedge.net/clip/models/"
            "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
            "MIT (OpenAI CLIP)",
            "OpenAI ViT-B/16 (TorchScript archive; CLIPPromptLoss(pretrained=path) rebuilds it with "
            "QuickGELU). open_clip's pretrained='openai' tag fetches the same weights.",
            direct=True,
            torch_loadable=False,
        ),
    )
}

_CSAIL_DIR = "ade20k-hrnetv2-c1"


def default_weights_dir(weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The weights directory: ``weights_dir`` if given, else ``$SEMPRIOR_WEIGHTS``, else ``None``."""
    if weights_dir is not None:
        return Path(weights_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else None


def _spec(name: str) -> WeightsSpec:
    try:
        return KNOWN_WEIGHTS[name]
    except KeyError:
        raise ValueError(f"unknown weights {name!r}; known: {', '.join(sorted(KNOWN_WEIGHTS))}") from None


def resolve_weights(
    name: str,
    path: str | os.PathLike | None = None,
    *,
    weights_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> Path:
    """Find the file of known checkpoint ``name`` (see the module docstring for the order).

    Raises:
        FileNotFoundError: nothing found and ``download`` is False (or no direct link exists);
            the message names the file, where to get it, and where to put it.

    Examples:
        >>> resolve_weights("sam_vit_b", weights_dir="/nonexistent")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: weights 'sam_vit_b' not found: ...
    """
    spec = _spec(name)
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"weights file {str(p)!r} does not exist (given explicitly for {name!r})")
        return p
    wdir = default_weights_dir(weights_dir)
    candidates = []
    if wdir is not None:
        folders = [wdir / _CSAIL_DIR, wdir] if name.startswith("csail_") else [wdir]
        candidates = [d / f for f in spec.filenames for d in folders]
        for c in candidates:
            if c.is_file():
                return c
    if download:
        if not spec.direct:
            raise FileNotFoundError(
                f"weights {name!r} ({spec.filename}) cannot be downloaded automatically: get it from "
                f"{spec.source_url} and put it in {_where(wdir, name)}"
            )
        if wdir is None:
            raise FileNotFoundError(
                f"download=True needs a destination: pass weights_dir=... or set {ENV_VAR} (for {spec.filename})"
            )
        dest = candidates[0]
        dest.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.source_url, str(dest), progress=True)
        if spec.sha256 is not None and sha256_file(dest) != spec.sha256:
            dest.unlink()
            raise RuntimeError(f"downloaded {spec.filename} has the wrong sha256; the file was removed")
        return dest
    looked = ", ".join(str(c) for c in candidates) if candidates else f"no weights directory (set {ENV_VAR})"
    raise FileNotFoundError(
        f"weights {name!r} not found: need file {' or '.join(repr(f) for f in spec.filenames)} (looked in: {looked}). "
        f"Get it from {spec.source_url} and put it in {_where(wdir, name)}, or pass its path explicitly"
        + (", or pass download=True" if spec.direct else "")
    )


def _where(wdir: Path | None, name: str = "") -> str:
    if wdir is None:
        return f"a directory named by ${ENV_VAR} (or pass weights_dir=...)"
    return str(wdir / _CSAIL_DIR) if name.startswith("csail_") else str(wdir)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def load_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """``torch.load(path, map_location="cpu", weights_only=True)`` and unwrap ``state_dict``/``model``.

    Raises ``ValueError`` when the file holds no tensor dictionary.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    from semprior._torch_io import safe_torch_load

    obj = safe_torch_load(p, map_location="cpu")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{p} does not contain a state dict of tensors (got {type(obj).__name__})")
    return dict(obj)


@dataclass(frozen=True)
class LoadReport:
    """What [`load_mapped`][semprior.weights.load_mapped] loaded: ``matched`` of ``total`` model tensors, from
    ``source``.

    ``filled`` lists BatchNorm ``num_batches_tracked`` counters absent from old checkpoints (they
    hold no weights and do not affect eval-mode outputs); every other tensor must be present.
    ``ignored`` counts checkpoint tensors of unused parts (e.g. a training loss's buffers),
    ``skipped`` training bookkeeping buffers recognised by name (e.g. CSAIL's sync-BN
    ``_tmp_running_mean``/``_tmp_running_var``/``_running_iter``); ``settings`` names the
    loader settings that apply (e.g. ``align_corners`` and where it comes from).
    """

    source: str
    matched: int
    total: int
    filled: tuple[str, ...] = ()
    ignored: int = 0
    skipped: int = 0
    settings: str = ""

    def __str__(self) -> str:
        extra = f" ({len(self.filled)} num_batches_tracked counters absent)" if self.filled else ""
        if self.ignored:
            extra += f" ({self.ignored} checkpoint tensors of unused parts ignored)"
        if self.skipped:
            extra += f" ({self.skipped} training bookkeeping buffers skipped)"
        if self.settings:
            extra += f"; {self.settings}"
        return f"loaded {self.matched}/{self.total} tensors from {self.source}{extra}"


def load_mapped(
    module: nn.Module,
    state: Mapping[str, Tensor],
    key_map: Callable[[str], str | None],
    *,
    source: str,
    ignore: Callable[[str], bool] = lambda k: False,
    skip: Callable[[str], bool] = lambda k: False,
) -> LoadReport:
    """Load ``state`` into ``module`` strictly through ``key_map`` (checkpoint key -> module key).

    ``key_map`` returns ``None`` for keys that belong to no module tensor; such keys are an error
    unless ``ignore(key)`` is true (for documented extras, e.g. a training loss's buffers).
    Keys with ``skip(key)`` true are training bookkeeping of the checkpoint's own modules (never
    model tensors); they are dropped before mapping and counted in ``LoadReport.skipped``.
    Missing keys, unexpected keys and shape mismatches raise ``ValueError`` listing them.
    """
    target = module.state_dict()
    mapped: dict[str, Tensor] = {}
    unexpected = []
    ignored = skipped = 0
    for k, v in state.items():
        if skip(k):
            skipped += 1
            continue
        mk = key_map(k)
        if mk is None or mk not in target:
            if ignore(k):
                ignored += 1
            else:
                unexpected.append(k if mk is None or mk == k else f"{k} -> {mk}")
            continue
        if mk in mapped:
            raise ValueError(f"{source}: two checkpoint keys map to {mk!r}")
        if tuple(v.shape) != tuple(target[mk].shape):
            raise ValueError(
                f"{source}: shape mismatch for {k!r} -> {mk!r}: checkpoint {tuple(v.shape)} vs model "
                f"{tuple(target[mk].shape)}; is this the right variant/number of classes?"
            )
        mapped[mk] = v
    missing = [k for k in target if k not in mapped]
    filled = tuple(k for k in missing if k.endswith("num_batches_tracked"))
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(
            f"{source}: checkpoint does not match the model: {len(missing)} missing "
            f"(e.g. {missing[:4]}), {len(unexpected)} unexpected (e.g. {unexpected[:4]}); "
            "check the variant, dataset/number of classes and checkpoint format"
        )
    for k in filled:
        mapped[k] = target[k]
    module.load_state_dict(mapped, strict=True)
    return LoadReport(
        source=source,
        matched=len(mapped) - len(filled),
        total=len(target),
        filled=filled,
        ignored=ignored,
        skipped=skipped,
    )


def check_weights_dir(weights_dir: str | os.PathLike | None = None, *, load: bool = True) -> list[dict[str, str]]:
    """Check every known checkpoint in a directory: present, sha256 (where known), loads.

    Returns one row per known weight with ``name``, ``file``, ``status`` and ``detail``.
    """
    wdir = default_weights_dir(weights_dir)
    if wdir is None:
        raise ValueError(f"no weights directory: pass --dir D or set {ENV_VAR}")
    if not wdir.is_dir():
        raise FileNotFoundError(f"weights directory {str(wdir)!r} does not exist")
    rows = []
    for spec in KNOWN_WEIGHTS.values():
        try:
            p = resolve_weights(spec.name, weights_dir=wdir)
        except FileNotFoundError:
            rows.append(dict(name=spec.name, file=spec.filename, status="missing", detail=spec.source_url))
            continue
        digest = sha256_file(p)
        if spec.sha256 is not None and digest != spec.sha256:
            rows.append(dict(name=spec.name, file=str(p), status="BAD SHA256", detail=f"got {digest}"))
            continue
        status = "sha256 ok" if spec.sha256 else "present (no published sha256)"
        detail = f"found as {p.name}, sha256 {digest[:16]}..."
        if load:
            try:
                if spec.torch_loadable:
                    n = len(load_checkpoint(p))
                else:  # TorchScript: tensors read without running its code
                    from semprior._torchscript import read_torchscript_state

                    n = len(read_torchscript_state(p))
                detail += f", loads ({n} tensors)"
            except Exception as exc:  # noqa: BLE001 - reported per file, the check continues
                status, detail = "DOES NOT LOAD", f"{type(exc).__name__}: {exc}"
        rows.append(dict(name=spec.name, file=str(p), status=status, detail=detail))
    return rows
