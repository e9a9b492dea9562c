"""CLIP prompt loss: push an image away from a "low-light" text prompt and towards a "high-light" one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._checks import check_image, check_reduction, reduce
from semprior._optional import require
from semprior._torchscript import is_torchscript

__all__ = ["CLIPPromptLoss", "clip_prompt_loss"]

_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _published_torchscript() -> dict[str, str]:
    """``{sha256: file name}`` of the TorchScript files `semprior.weights` knows (OpenAI's CLIP)."""
    from semprior.weights import KNOWN_WEIGHTS

    return {w.sha256: w.filename for w in KNOWN_WEIGHTS.values() if not w.torch_loadable and w.sha256}


def _load_openai_torchscript(open_clip, path: Path, allow_unverified: bool = False) -> nn.Module:
    """OpenAI's TorchScript CLIP -> a plain open_clip model (QuickGELU), tensors loaded strictly.

    The file's sha256 is checked against the published ones first; an unpublished TorchScript
    file is refused unless ``allow_unverified``. Either way no TorchScript code runs: the tensors
    are read by `semprior._torchscript.read_torchscript_state` (a restricted unpickler),
    never by ``torch.jit.load``. ``build_model_from_openai_state_dict`` drops
    ``input_resolution``/``context_length``/``vocab_size`` and loads the rest with ``strict=True``.
    """
    from semprior._torchscript import read_torchscript_state
    from semprior.weights import sha256_file

    published = _published_torchscript()
    digest = sha256_file(path)
    if digest not in published and not allow_unverified:
        known = ", ".join(f"{name} {sha[:16]}..." for sha, name in published.items())
        raise ValueError(
            f"{path} is a TorchScript archive whose sha256 {digest[:16]}... is not a published one ({known}); "
            "it may be damaged, altered or another model. Use the published file, or pass allow_unverified=True "
            "to CLIPPromptLoss to read its tensors anyway (no TorchScript code is run either way)"
        )
    sd = read_torchscript_state(path)
    sd.pop("attn_mask", None)
    return open_clip.model.build_model_from_openai_state_dict(sd).float()


def clip_prompt_loss(
    image_features: Tensor,
    text_features: Tensor,
    variant: Literal["cosine", "softmax"] = "cosine",
    logit_scale: float = 100.0,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> Tensor:
    r"""The prompt loss on already-encoded features.

    With $c_k = \cos(f_{img}, t_k)$ for the two prompts ``(negative, positive)``:

    - ``"cosine"`` (the DeepSPG paper): $L = c_0 - c_1$ (in ``[-2, 2]``);
    - ``"softmax"``: $L = -\log \mathrm{softmax}(s \cdot c)_1$, cross-entropy towards the
      positive prompt with CLIP's logit scale ``s``.

    Args:
        image_features: ``(B, D)`` image embeddings (any norm).
        text_features: ``(2, D)`` prompt embeddings (negative, positive).

    Shape:
        - Output: scalar, or ``(B,)`` with ``reduction="none"``

    Examples:
        >>> t = torch.eye(2, 4)
        >>> clip_prompt_loss(torch.tensor([[0.0, 1.0, 0, 0]]), t).item()  # aligned with the positive prompt
        -1.0
    """
    check_reduction(reduction)
    if image_features.dim() != 2 or text_features.dim() != 2 or image_features.shape[1] != text_features.shape[1]:
        raise ValueError(
            f"need image features (B, D) and text features (2, D), got {tuple(image_features.shape)} and "
            f"{tuple(text_features.shape)}"
        )
    if text_features.shape[0] != 2:
        raise ValueError(f"need exactly two prompts (negative, positive), got {text_features.shape[0]}")
    cos = F.normalize(image_features, dim=-1) @ F.normalize(text_features, dim=-1).T  # (B, 2)
    if variant == "cosine":
        loss = cos[:, 0] - cos[:, 1]
    elif variant == "softmax":
        loss = -F.log_softmax(logit_scale * cos, dim=-1)[:, 1]
    else:
        raise ValueError(f"variant must be 'cosine' or 'softmax', got {variant!r}")
    return reduce(loss, reduction)


class CLIPPromptLoss(nn.Module):
    """Frozen-CLIP prompt loss ``L = cos(img, T_low) - cos(img, T_high)`` (or its softmax variant).

    The image goes through a differentiable torch pipeline: resize to the model's image size
    (bilinear, antialiased, aspect ratio not kept: CLIP sees the whole image), CLIP
    normalisation (the model's ``image_mean``/``image_std``, OpenAI's by default), then the
    image tower. Text features of the prompts are encoded **once** at construction and kept as
    a non-persistent buffer. CLIP is frozen (no parameter gets gradients, always eval mode);
    gradients reach the image only. The loss follows the input's device and dtype (the CLIP
    model is moved to them on first use).

    Args:
        model: an open_clip model name (``"ViT-B-16"`` is the paper's).
        pretrained: ``None`` (random init: for tests only, no semantic signal), an open_clip
            pretrained tag (e.g. ``"openai"``; fetched by open_clip, so it needs
            ``download=True``), or a local file: OpenAI's TorchScript ``ViT-B-16.pt`` (its sha256
            is checked against the published one **before** it is opened; its tensors are then
            read without running any TorchScript code, and the model is rebuilt by open_clip's
            ``build_model_from_openai_state_dict``, strict) or an open_clip state-dict file
            (loaded by open_clip with ``weights_only=True`` and strict key matching).
        prompts: ``(negative, positive)`` prompt texts.
        variant: ``"cosine"`` or ``"softmax"`` (see [`clip_prompt_loss`][semprior.losses.clip_prompt.clip_prompt_loss]).
        download: allow open_clip to download a pretrained tag.
        model_obj: an already-built open_clip model (then ``model``/``pretrained`` are ignored).
        tokenizer: tokenizer for ``model_obj``; default: open_clip's BPE tokenizer with the
            model's context length.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
        quick_gelu: build the model with QuickGELU for a local state-dict file of OpenAI weights
            (open_clip sets it itself for the ``"openai"`` tag; OpenAI's own TorchScript
            ``ViT-B-16.pt`` is recognised and always rebuilt with QuickGELU).
        allow_unverified: read a TorchScript file whose sha256 is not a published one (a
            fine-tuned or re-saved CLIP). Its tensors are still read without running its code;
            without this flag such a file is refused with an error naming this argument.

    Shape:
        - Input: ``(B, 3, H, W)`` in ``[0, 1]``
        - Output: scalar, or ``(B,)`` with ``reduction="none"``

    Examples:
        >>> import open_clip
        >>> clip = open_clip.CLIP(embed_dim=32, vision_cfg=dict(layers=2, width=64, patch_size=16, image_size=32,
        ...     head_width=32), text_cfg=dict(context_length=16, vocab_size=49408, width=64, heads=2, layers=2))
        >>> loss_fn = CLIPPromptLoss(model_obj=clip)
        >>> img = torch.rand(2, 3, 40, 50, requires_grad=True)
        >>> loss = loss_fn(img)
        >>> loss.backward(); img.grad.abs().sum().item() > 0
        True
    """

    text_features: Tensor  # buffers, declared for the type checker
    mean: Tensor
    std: Tensor
    clip: Any  # an open_clip model (untyped: encode_image, encode_text, logit_scale)

    def __init__(
        self,
        model: str = "ViT-B-16",
        pretrained: str | os.PathLike | None = None,
        prompts: tuple[str, str] = ("low-light image", "high-light image"),
        variant: Literal["cosine", "softmax"] = "cosine",
        download: bool = False,
        model_obj: nn.Module | None = None,
        tokenizer: Callable[[list[str]], Tensor] | None = None,
        reduction: Literal["mean", "sum", "none"] = "mean",
        quick_gelu: bool = False,
        allow_unverified: bool = False,
    ) -> None:
        super().__init__()
        if variant not in ("cosine", "softmax"):
            raise ValueError(f"variant must be 'cosine' or 'softmax', got {variant!r}")
        check_reduction(reduction)
        pair = tuple(prompts)  # any sequence of two strings
        if len(pair) != 2 or not all(isinstance(p, str) and p.strip() for p in pair):
            raise ValueError(f"prompts must be two non-empty strings (negative, positive), got {pair!r}")
        open_clip = require("open_clip", purpose="CLIPPromptLoss")
        if model_obj is None:
            model_obj = self._create(open_clip, model, pretrained, download, quick_gelu, allow_unverified)
            ctx = getattr(model_obj, "context_length", None)
            tokenizer = tokenizer or open_clip.get_tokenizer(model, context_length=ctx)
        if not hasattr(model_obj, "encode_image") or not hasattr(model_obj, "encode_text"):
            raise TypeError(
                f"model_obj must be an open_clip model with encode_image/encode_text, got {type(model_obj).__name__}"
            )
        if tokenizer is None:
            ctx = int(getattr(model_obj, "context_length", 77))
            tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=ctx)
        self.clip = model_obj
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self.clip.eval()
        self.prompts, self.variant, self.reduction = pair, variant, reduction
        visual = getattr(self.clip, "visual", self.clip)
        size = getattr(visual, "image_size", 224)
        self.image_size = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
        mean = getattr(visual, "image_mean", None) or _OPENAI_MEAN
        std = getattr(visual, "image_std", None) or _OPENAI_STD
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        scale = getattr(self.clip, "logit_scale", None)
        self.logit_scale = float(scale.exp()) if isinstance(scale, Tensor) else 100.0
        with torch.no_grad():
            text = self.clip.encode_text(tokenizer(list(prompts)))
        self.register_buffer("text_features", F.normalize(text.float(), dim=-1), persistent=False)

    @staticmethod
    def _create(
        open_clip, model: str, pretrained, download: bool, quick_gelu: bool = False, allow_unverified: bool = False
    ) -> nn.Module:
        if pretrained is None:
            return open_clip.create_model(model, pretrained=None)
        p = Path(str(pretrained)).expanduser()
        if p.suffix or os.sep in str(pretrained):  # looks like a file path
            if not p.is_file():
                raise FileNotFoundError(
                    f"CLIP checkpoint {str(p)!r} does not exist; pass an existing file or an open_clip tag "
                    f"(see open_clip.list_pretrained_tags_by_model({model!r}))"
                )
            if is_torchscript(p):
                return _load_openai_torchscript(open_clip, p, allow_unverified)
            return open_clip.create_model(model, pretrained=str(p), force_quick_gelu=quick_gelu)
        tags = open_clip.list_pretrained_tags_by_model(model)
        if str(pretrained) not in tags:
            raise ValueError(f"{pretrained!r} is not an open_clip pretrained tag of {model!r}; known tags: {tags}")
        if not download:
            raise FileNotFoundError(
                f"CLIP weights {model}/{pretrained} are fetched by open_clip from the network: pass download=True, "
                "or download them once and pass the local file path as pretrained=..."
            )
        return open_clip.create_model(model, pretrained=str(pretrained))

    def train(self, mode: bool = True) -> CLIPPromptLoss:  # noqa: ARG002 - CLIP stays in eval mode
        return super().train(False)

    def _follow(self, img: Tensor) -> None:
        t = self.text_features
        if t.device != img.device or t.dtype != img.dtype:
            self.to(device=img.device, dtype=img.dtype)

    def encode_image(self, img: Tensor) -> Tensor:
        """Differentiable resize + normalise + CLIP image tower: ``(B, 3, H, W)`` -> ``(B, D)``."""
        x = img
        if tuple(x.shape[-2:]) != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False, antialias=True)
        return self.clip.encode_image((x - self.mean) / self.std)

    def forward(self, img: Tensor) -> Tensor:
        check_image(img, "image")
        self._follow(img)
        self.train(False)
        return clip_prompt_loss(
            self.encode_image(img), self.text_features, self.variant, self.logit_scale, self.reduction
        )

    def extra_repr(self) -> str:
        return f"prompts={self.prompts}, variant={self.variant!r}, image_size={self.image_size}"
