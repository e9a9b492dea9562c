"""Retinexformer (Cai et al., ICCV 2023) assembled from semprior parts.

One-stage Retinex-based transformer: an illumination estimator turns the image and its channel
mean into illumination features and a *light-up map* ``L``; the lit-up image ``I * L + I`` is
restored by a three-level U-Net of illumination-guided attention blocks (IGAB), guided at
every level by the (strided-conv downsampled) illumination features.

Parts used:

- [`semprior.retinex.illumination.IlluminationEstimator`][semprior.retinex.illumination.IlluminationEstimator]
  (``Illumination_Estimator``);
- [`semprior.attention.ig.IGAttentionBlock`][semprior.attention.ig.IGAttentionBlock] (``IGAB``: IG-MSA + pre-norm
  feed-forward, whose channel attention goes through `semprior.kernels`).

Module and attribute names follow the official ``RetinexFormer_arch.py`` (``body.0.estimator``,
``body.0.denoiser.encoder_layers.0.1`` ...), so an official state dict maps one to one.
The official forward needs ``H`` and ``W`` divisible by 4 (the official test script pads);
here `Retinexformer.forward` reflect-pads to a multiple of ``2 ** level`` and crops back.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._checks import check_image, check_module_dtype
from semprior.losses.pixel import pixel_loss
from semprior.models.protocol import config_from_dict
from semprior.models.registry import ModelEntry, Pretrained, l1_training_loss, register_model
from semprior.retinex.illumination import IlluminationEstimator

__all__ = [
    "OFFICIAL_CONFIG_KEYS",
    "RETINEXFORMER_RELEASES",
    "Retinexformer",
    "RetinexformerConfig",
    "RetinexformerDenoiser",
    "RetinexformerStage",
    "light_up",
]


def _ig_block_cls() -> type[nn.Module]:
    # imported on first build (helper-owned module; keeps `import semprior.models.retinexformer` cheap)
    return importlib.import_module("semprior.attention.ig").IGAttentionBlock


def light_up(img: Tensor, light_up_map: Tensor) -> Tensor:
    """Retinexformer's one-stage Retinex light-up: ``I * L + I``.

    Shape:
        - img, light_up_map: `(B, 3, H, W)` -> `(B, 3, H, W)`

    Examples:
        >>> light_up(torch.full((1, 3, 2, 2), 0.2), torch.ones(1, 3, 2, 2))[0, 0, 0, 0].item()
        0.4000000059604645
    """
    if img.shape != light_up_map.shape:
        raise ValueError(
            f"img and light_up_map must have the same shape, got {tuple(img.shape)} and {tuple(light_up_map.shape)}"
        )
    return img * light_up_map + img


#: published configurations (all share one architecture; they differ in training data only):
#: preset name -> the official release file (``pretrained_weights/<file>`` in the official README)
RETINEXFORMER_RELEASES: dict[str, str] = {
    "lol-v1": "LOL_v1.pth",
    "lol-v2-real": "LOL_v2_real.pth",
    "lol-v2-synthetic": "LOL_v2_synthetic.pth",
    "sid": "SID.pth",
    "smid": "SMID.pth",
    "sdsd-indoor": "SDSD_indoor.pth",
    "sdsd-outdoor": "SDSD_outdoor.pth",
    "fivek": "FiveK.pth",
    "ntire": "NTIRE.pth",
}


#: official constructor argument (``network_g`` in the official YAML files) -> semprior field
OFFICIAL_CONFIG_KEYS: dict[str, str] = {"n_feat": "width", "stage": "stages", "num_blocks": "blocks", "level": "depth"}


@dataclass(frozen=True)
class RetinexformerConfig:
    """Retinexformer hyper-parameters in semprior's vocabulary (official names in brackets).

    Attributes:
        in_channels: image channels in.
        out_channels: image channels out.
        width: base width (``n_feat``); also the head width (``dim_head``) of every IGAB, so level
            ``i`` has ``2 ** i`` heads; must be a multiple of ``in_channels + 1`` (the estimator's
            depthwise conv groups).
        stages: number of cascaded single-stage models (``stage``).
        blocks: IGAB depth per level ``(level 0, ..., bottleneck)`` (``num_blocks``); the decoder
            mirrors it.
        depth: number of down-sampling steps (``level``; the official model fixes 2).
        backend: channel-attention backend passed to every IGAB.

    Every published configuration (`RETINEXFORMER_RELEASES`: LOL-v1, LOL-v2, SID, SMID,
    SDSD, FiveK, NTIRE) is ``width=40, stages=1, blocks=(1, 2, 2), depth=2``; the presets differ
    only in the weights they name.

    The official names are read by [`from_official`][semprior.models.retinexformer.RetinexformerConfig.from_official]
    (an official ``network_g``) only; ``from_dict`` takes semprior's names.

    Examples:
        >>> RetinexformerConfig.preset("lol-v1").blocks
        (1, 2, 2)
        >>> RetinexformerConfig.from_dict({"width": 8, "blocks": [1, 1, 1]}).to_dict()["blocks"]
        (1, 1, 1)
    """

    in_channels: int = 3
    out_channels: int = 3
    width: int = 40
    stages: int = 1
    blocks: tuple[int, ...] = (1, 2, 2)
    depth: int = 2
    backend: str = "auto"

    PRESETS: ClassVar[tuple[str, ...]] = tuple(RETINEXFORMER_RELEASES)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(int(n) for n in self.blocks))
        if self.depth < 1:
            raise ValueError(f"RetinexformerConfig.depth must be >= 1, got {self.depth}")
        if len(self.blocks) != self.depth + 1:
            raise ValueError(
                f"RetinexformerConfig.blocks needs depth + 1 = {self.depth + 1} entries "
                f"(encoder levels then bottleneck), got {self.blocks}"
            )
        if any(n < 1 for n in self.blocks):
            raise ValueError(f"RetinexformerConfig.blocks entries must be >= 1, got {self.blocks}")
        if self.stages < 1:
            raise ValueError(f"RetinexformerConfig.stages must be >= 1, got {self.stages}")
        if self.width <= 0 or self.width % (self.in_channels + 1) != 0:
            raise ValueError(
                f"RetinexformerConfig.width must be a positive multiple of in_channels + 1 = {self.in_channels + 1} "
                f"(the illumination estimator's grouped conv), got {self.width}"
            )

    @classmethod
    def preset(cls, name: str = "lol-v1", **overrides: Any) -> RetinexformerConfig:
        """A published configuration by name (see `RETINEXFORMER_RELEASES`), with field overrides."""
        if name not in RETINEXFORMER_RELEASES:
            raise ValueError(f"unknown Retinexformer preset {name!r}; choose one of {sorted(RETINEXFORMER_RELEASES)}")
        return cls.from_dict(overrides)

    @classmethod
    def lol_v1(cls) -> RetinexformerConfig:
        """The published LOL-v1 configuration (1,605,701 parameters)."""
        return cls.preset("lol-v1")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RetinexformerConfig:
        """Strict: an unknown key is an error naming the valid ones (YAML/JSON lists become tuples)."""
        return config_from_dict(cls, data)

    @classmethod
    def from_official(cls, data: dict[str, Any]) -> RetinexformerConfig:
        """From the official constructor's arguments (``n_feat``, ``stage``, ``num_blocks``; the
        official YAML's ``network_g`` without ``type``) through `OFFICIAL_CONFIG_KEYS`.

        Examples:
            >>> RetinexformerConfig.from_official({"type": "RetinexFormer", "n_feat": 40, "stage": 1,
            ...                                    "num_blocks": [1, 2, 2]}) == RetinexformerConfig.preset("lol-v1")
            True
        """
        clash = sorted(k for k, new in OFFICIAL_CONFIG_KEYS.items() if k in data and new in data)
        if clash:
            raise ValueError(f"both official and semprior names given for {clash}; use one vocabulary")
        return cls.from_dict({OFFICIAL_CONFIG_KEYS.get(k, k): v for k, v in data.items() if k != "type"})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RetinexformerDenoiser(nn.Module):
    """Retinexformer's corruption restorer: a U-Net of IGABs guided by illumination features.

    Embedding conv3x3 -> per level [IGAB, conv4x4/2 for features, conv4x4/2 for illumination
    features] -> bottleneck IGAB -> per level [ConvTranspose2x2/2, 1x1 fusion of the skip, IGAB]
    -> mapping conv3x3, plus the input (global residual).

    Shape:
        - x: `(B, in_dim, H, W)` with ``H, W`` divisible by ``2 ** level``
        - illu_fea: `(B, dim, H, W)`
        - output: `(B, out_dim, H, W)`
    """

    def __init__(
        self,
        in_dim: int = 3,
        out_dim: int = 3,
        dim: int = 40,
        level: int = 2,
        num_blocks: tuple[int, ...] = (1, 2, 2),
        backend: str = "auto",
    ) -> None:
        super().__init__()
        igab = _ig_block_cls()
        self.dim = dim
        self.level = level
        self.embedding = nn.Conv2d(in_dim, dim, 3, 1, 1, bias=False)
        self.encoder_layers = nn.ModuleList()
        d = dim
        for i in range(level):
            self.encoder_layers.append(
                nn.ModuleList(
                    [
                        igab(d, dim_head=dim, heads=d // dim, num_blocks=num_blocks[i], backend=backend),
                        nn.Conv2d(d, d * 2, 4, 2, 1, bias=False),
                        nn.Conv2d(d, d * 2, 4, 2, 1, bias=False),
                    ]
                )
            )
            d *= 2
        self.bottleneck = igab(d, dim_head=dim, heads=d // dim, num_blocks=num_blocks[-1], backend=backend)
        self.decoder_layers = nn.ModuleList()
        for i in range(level):
            self.decoder_layers.append(
                nn.ModuleList(
                    [
                        nn.ConvTranspose2d(d, d // 2, kernel_size=2, stride=2, padding=0, output_padding=0),
                        nn.Conv2d(d, d // 2, 1, 1, bias=False),
                        igab(
                            d // 2,
                            dim_head=dim,
                            heads=(d // 2) // dim,
                            num_blocks=num_blocks[level - 1 - i],
                            backend=backend,
                        ),
                    ]
                )
            )
            d //= 2
        self.mapping = nn.Conv2d(dim, out_dim, 3, 1, 1, bias=False)
        self.apply(_init_weights)

    def forward(self, x: Tensor, illu_fea: Tensor) -> Tensor:
        fea = self.embedding(x)
        skips, illus = [], []
        for layer in self.encoder_layers:
            block, down, illu_down = cast(nn.ModuleList, layer)
            fea = block(fea, illu_fea)
            illus.append(illu_fea)
            skips.append(fea)
            fea = down(fea)
            illu_fea = illu_down(illu_fea)
        fea = self.bottleneck(fea, illu_fea)
        for i, layer in enumerate(self.decoder_layers):
            up, fuse, block = cast(nn.ModuleList, layer)
            fea = fuse(torch.cat([up(fea), skips[self.level - 1 - i]], dim=1))
            fea = block(fea, illus[self.level - 1 - i])
        return self.mapping(fea) + x


def _init_weights(m: nn.Module) -> None:
    # the official initialisation: truncated-normal Linear weights, zero biases, unit LayerNorm
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class RetinexformerStage(nn.Module):
    """One Retinexformer stage: estimate, light up (``I * L + I``), restore.

    Shape:
        - img: `(B, 3, H, W)` with ``H, W`` divisible by ``2 ** level`` -> `(B, 3, H, W)`
    """

    def __init__(self, config: RetinexformerConfig) -> None:
        super().__init__()
        self.estimator = IlluminationEstimator(config.width, n_fea_in=config.in_channels + 1)
        self.denoiser = RetinexformerDenoiser(
            config.in_channels, config.out_channels, config.width, config.depth, config.blocks, config.backend
        )

    def forward(self, img: Tensor) -> Tensor:
        illu_fea, illu_map = self.estimator(img)
        return self.denoiser(light_up(img, illu_map), illu_fea)


class Retinexformer(nn.Module):
    """Retinexformer: ``stage`` cascaded one-stage Retinex transformers.

    The output is not clamped (as in the original); clamp to ``[0, 1]`` for display or metrics.
    Inputs of any size are reflect-padded to
    [`required_multiple`][semprior.models.retinexformer.Retinexformer.required_multiple] (``2 ** depth``) and cropped
    back. Inputs must lie in ``[0, 1]`` (checked in eager mode). The training objective is the official one, L1
    ([`loss`][semprior.models.retinexformer.Retinexformer.loss]).

    Args:
        config: hyper-parameters;
            [`RetinexformerConfig.lol_v1`][semprior.models.retinexformer.RetinexformerConfig.lol_v1] when ``None``.

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Examples:
        >>> model = Retinexformer(RetinexformerConfig(width=8, blocks=(1, 1, 1)))
        >>> model(torch.rand(1, 3, 13, 18)).shape
        torch.Size([1, 3, 13, 18])
        >>> sum(p.numel() for p in Retinexformer().parameters())
        1605701
    """

    #: IG-MSA attends across the whole image (per channel): tiles change the output everywhere (`semprior enhance`
    #: warns)
    global_context = True

    def __init__(self, config: RetinexformerConfig | None = None) -> None:
        super().__init__()
        self.config = config or RetinexformerConfig.lol_v1()
        self.body = nn.Sequential(*[RetinexformerStage(self.config) for _ in range(self.config.stages)])

    @property
    def required_multiple(self) -> int:
        """The padding multiple of `forward` (``2 ** depth``); any input size is accepted."""
        return 2**self.config.depth

    def loss(self, low: Tensor, high: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The official objective: L1 between ``self(low)`` and ``high``; returns ``(total, {"l1": ...})``."""
        l1 = pixel_loss(self(low), high, "l1")
        return l1, {"l1": l1.detach()}

    def forward(self, img: Tensor) -> Tensor:
        check_module_dtype(check_image(img, "img", channels=self.config.in_channels, unit_range=True), self, "img")
        h, w = img.shape[-2:]
        m = self.required_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            # reflect needs pad < size; replicate covers tiny inputs
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            img = F.pad(img, (0, pw, 0, ph), mode=mode)
        out = self.body(img)
        return out[..., :h, :w]


def _build(config: RetinexformerConfig, prior: Any = None, text_loss: Any = None) -> Retinexformer:
    return Retinexformer(config)


_OFFICIAL = "https://github.com/caiyuanhao1998/Retinexformer (pretrained_weights/)"
register_model(
    ModelEntry(
        "retinexformer",
        RetinexformerConfig,
        "lol-v1",
        _build,
        training_loss=l1_training_loss,
        pretrained={
            "lolv1-cpu": Pretrained(
                "retinexformer-lolv1-cpu",
                shipped=True,
                dataset="LOL-v1",
                source="semprior CPU run (semprior/pretrained/retinexformer-lolv1-cpu/MODEL_CARD.md)",
            ),
            **{tag: Pretrained(file, dataset=tag, source=_OFFICIAL) for tag, file in RETINEXFORMER_RELEASES.items()},
        },
        tiny={"width": 4, "blocks": (1, 1, 1)},
        description="Retinexformer (1.61 M), official architecture; loads official checkpoints",
    )
)
