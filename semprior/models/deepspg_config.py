"""The configuration of [`DeepSPG`][semprior.models.deepspg.DeepSPG]: architecture, the paper's
ablation switches, paper-literal options and loss weights (one frozen dataclass, saved beside the
weights as JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar

from semprior.attention.sem import SCALINGS
from semprior.losses.composite import LossWeights
from semprior.models.protocol import config_from_dict

__all__ = ["ABLATIONS", "DeepSPGConfig", "KL_DIRECTIONS", "MEMORY_FORMATS"]


#: Tables 2/3 of the paper as config switches: name -> (image_prior, text_prior, coarse_to_fine)
ABLATIONS: dict[str, tuple[bool, bool, bool]] = {
    "baseline": (False, False, False),
    "image-prior": (True, False, False),
    "text-prior": (False, True, False),
    "image+text": (True, True, False),
    "full": (True, True, True),
}


#: semantic-KL directions: ours (KL(seg(gt) ‖ seg(out))) and the other one
KL_DIRECTIONS = ("target||output", "output||target")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


@dataclass(frozen=True)
class DeepSPGConfig:
    """Architecture, ablation switches and loss weights of [`DeepSPG`][semprior.models.deepspg.DeepSPG].

    The paper gives only the totals (0.55 M params / 6.91 G MACs for ``deepspg``, 2.13 M /
    26.03 G for ``deepspg-large``, at 256x256, prior excluded). Our choices that land on them:

    Attributes:
        width: channels ``C`` of U-Net level 1; levels 2 and 3 use ``2C`` and ``4C`` (Restormer /
            Retinexformer doubling). 32 for ``deepspg``, 64 for ``deepspg-large`` (4x params, ~4x MACs).
            The U-Net's depth is fixed (two down-samplings, three levels), so there is no ``depth`` field.
        blocks: SEM blocks at (level 1, level 2, level 3); the decoder repeats levels 1 and 2, so the
            network has ``2 * blocks[0] + 2 * blocks[1] + blocks[2]`` SEM blocks. ``(1, 1, 1)``: five SEM
            blocks land on the paper's budget (``(1, 2, 1)`` would give 0.69 M / 9.1 G, ``(1, 2, 2)`` 0.90 M / 10.0 G).
        heads: attention heads per level, ``(1, 2, 4)`` (one head per 32 channels at ``C = 32``).
        ffn_expansion: GDFN hidden-width factor, 2.66 as Restormer.
        retinex_width: width of the Retinex decomposer's illumination features (multiple of 4).
        illum_width: width of the illumination-adjustment CNN.
        curve_gamma: initial exponent ``g`` of the illumination curve ``L ** g`` (learned; 0.4 lifts
            an illumination of 0.1 to 0.4 and leaves 1 at 1).
        prior_levels: which prior feature level guides each U-Net level; ``None`` maps U-Net level
            ``i`` to prior level ``min(i, levels - 1)`` (fine to coarse, as the prior declares).
        image_prior: use the semantic prior (SEM queries from prior features + semantic KL loss).
            ``False`` is the paper's baseline: the SEM blocks take their queries from the image
            features themselves (channel self-attention) and no prior is used. It records whether
            a prior is given: built by name (``create_model``, a run config) it follows ``prior``.
        text_prior: use the CLIP prompt loss (λ4); off by default (it needs CLIP's weights).
            Built by name it follows ``text``; the paper's full model is ``.ablation("full")``.
        coarse_to_fine: recorded for the training recipe: when true, the trainer uses a
            progressive patch-size schedule (``TrainConfig.patch_stages``); it does not change the network.
        bias: biases in the SEM convolutions.
        backend: channel-attention backend for SEM (``"auto"``, ``"reference"``, ``"streaming"``, ``"triton"``).
        attention_scaling: SEM's attention scaling. ``"l2-temperature"`` (ours, default): q and k
            L2-normalised over positions, a learned per-head temperature (Restormer). ``"inv-sqrt-c"``:
            the paper's Eq. 7 literally, ``softmax(q kᵀ / √c)``, no temperature parameter (so no
            ``temperature`` keys in the state dict). See [`SEM`][semprior.attention.sem.SEM].
        kl_direction: direction of the semantic KL (λ3). ``"target||output"`` (ours, default):
            KL(seg(gt) ‖ seg(out)), the distillation direction. ``"output||target"``: KL(seg(out) ‖ seg(gt)).
        edge_normalized: edge loss (λ2) on kornia's normalised Sobel kernels (default, ``True``: the
            kernel is divided by 8, the sum of its absolute weights) or on the raw Sobel kernel
            (``False``: the textbook operator; the loss is 64 times larger, so λ2 means 64x more).
        activation_checkpointing: in training, recompute each SEM block's activations in the
            backward pass instead of storing them (``torch.utils.checkpoint``): less memory for a
            larger batch or patch, about one more forward of the SEM blocks in time. Same gradients.
        memory_format: layout of the activations in the plain graph. ``"auto"`` (default):
            channels-last on a CPU (training, and inference of the whole-image graph), where oneDNN's
            depthwise convolutions and the layer norms need no layout copies (docs/performance.md);
            the default layout otherwise (GPUs). ``"channels_last"`` / ``"contiguous"`` force one. Same results to float
            rounding; the output is always contiguous; the weights are not touched.
        loss: the loss weights λ1..λ4.

    Examples:
        >>> DeepSPGConfig.preset("deepspg-large").width
        64
    """

    width: int = 32
    blocks: tuple[int, int, int] = (1, 1, 1)
    heads: tuple[int, int, int] = (1, 2, 4)
    ffn_expansion: float = 2.66
    retinex_width: int = 16
    illum_width: int = 16
    curve_gamma: float = 0.4
    prior_levels: tuple[int, int, int] | None = None
    image_prior: bool = True
    text_prior: bool = False
    coarse_to_fine: bool = True
    bias: bool = False
    backend: str = "auto"
    attention_scaling: str = "l2-temperature"
    kl_direction: str = "target||output"
    edge_normalized: bool = True
    activation_checkpointing: bool = False
    memory_format: str = "auto"
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        for name in ("blocks", "heads"):
            v = tuple(int(x) for x in getattr(self, name))
            if len(v) != 3 or min(v) < (0 if name == "blocks" else 1):
                raise ValueError(f"DeepSPGConfig.{name} must be 3 ints (one per level), got {getattr(self, name)}")
            object.__setattr__(self, name, v)
        if self.prior_levels is not None:
            pl = tuple(int(x) for x in self.prior_levels)
            if len(pl) != 3 or min(pl) < 0:
                raise ValueError(
                    f"DeepSPGConfig.prior_levels must be 3 non-negative ints or None, got {self.prior_levels}"
                )
            object.__setattr__(self, "prior_levels", pl)
        if self.width < 1:
            raise ValueError(f"DeepSPGConfig.width must be >= 1, got {self.width}")
        for i, h in enumerate(self.heads):
            if (self.width * 2**i) % h:
                raise ValueError(f"DeepSPGConfig.heads[{i}]={h} must divide the level width {self.width * 2**i}")
        if self.retinex_width % 4:
            raise ValueError(f"DeepSPGConfig.retinex_width must be a multiple of 4, got {self.retinex_width}")
        if not 0 < self.curve_gamma <= 1:
            raise ValueError(f"DeepSPGConfig.curve_gamma must be in (0, 1], got {self.curve_gamma}")
        if self.attention_scaling not in SCALINGS:
            raise ValueError(
                f"DeepSPGConfig.attention_scaling must be one of {SCALINGS}, got {self.attention_scaling!r}"
            )
        if self.kl_direction not in KL_DIRECTIONS:
            raise ValueError(f"DeepSPGConfig.kl_direction must be one of {KL_DIRECTIONS}, got {self.kl_direction!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(f"DeepSPGConfig.memory_format must be one of {MEMORY_FORMATS}, got {self.memory_format!r}")
        for name in ("edge_normalized", "activation_checkpointing"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"DeepSPGConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if isinstance(self.loss, dict):
            object.__setattr__(self, "loss", LossWeights(**self.loss))

    PRESETS: ClassVar[tuple[str, ...]] = ("deepspg", "deepspg-large")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> DeepSPGConfig:
        """``"deepspg"`` (0.55 M params) or ``"deepspg-large"`` (2.13 M), with field overrides."""
        base = {
            "deepspg": {},
            "deepspg-large": {"width": 64, "heads": (2, 4, 8), "retinex_width": 32, "illum_width": 32},
        }
        if name not in base:
            raise ValueError(f"unknown DeepSPG preset {name!r}; choose one of {sorted(base)}")
        return cls.from_dict({**base[name], **overrides})

    def ablation(self, name: str) -> DeepSPGConfig:
        """This config with the switches of one of [`ABLATIONS`][semprior.models.deepspg_config.ABLATIONS] (the paper's
        Tables 2/3)."""
        if name not in ABLATIONS:
            raise ValueError(f"unknown ablation {name!r}; choose one of {sorted(ABLATIONS)}")
        image, text, c2f = ABLATIONS[name]
        return replace(self, image_prior=image, text_prior=text, coarse_to_fine=c2f)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DeepSPGConfig:
        """Build a config from a mapping (``to_dict``'s output, a YAML section); strict: unknown keys are an error.

        Examples:
            >>> cfg = DeepSPGConfig.preset("deepspg-large")
            >>> DeepSPGConfig.from_dict(cfg.to_dict()) == cfg
            True
        """
        return config_from_dict(cls, data, cls.__name__)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
