"""CUGD: a conditional diffusion enhancer guided by a segmentation prior's context (SAM).

After "Low-light image enhancement via context understanding guided diffusion" (CUGD): a
denoising diffusion model conditioned on the low-light image, whose denoiser injects the
context of a frozen segmentation prior through the CUIE block, trained with the
noise-prediction objective plus a semantic context regularisation that pulls the result's
segmentation features toward the normal-light reference's.

semprior parts:

- [`semprior.attention.cuie.CUIEBlock`][semprior.attention.cuie.CUIEBlock] at the denoiser's bottleneck (self-attention
  over image tokens, cross-attention to the prior's tokens from
  [`feature_tokens`][semprior.attention.cuie.feature_tokens] and, when region masks are given,
  [`region_tokens`][semprior.attention.cuie.region_tokens]);
- `semprior.models.diffusion` (schedule, epsilon objective, DDIM sampler);
- [`semprior.losses.context.semantic_context_loss`][semprior.losses.context.semantic_context_loss] on the implied clean
  estimate;
- any prior: a [`semprior.priors.base.SegPrior`][semprior.priors.base.SegPrior] (e.g. ``SAMPrior``) or a module
  returning features.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._checks import check_image, check_same_shape
from semprior.attention.cuie import CUIEBlock, feature_tokens, region_masks_from_map, region_tokens
from semprior.losses.context import _as_levels, semantic_context_loss
from semprior.models.diffusion import NoiseSchedule, ddim_sample, epsilon_loss, v_loss
from semprior.models.protocol import call_method, config_from_dict
from semprior.models.registry import ModelEntry, register_model

__all__ = ["CUGDConfig", "CUGD", "CUGDDenoiser", "cugd_training_loss"]


@dataclass(frozen=True)
class CUGDConfig:
    """CUGD hyper-parameters.

    Attributes:
        width: channels of the denoiser's first level (level ``i`` has ``width * 2**i``).
        depth: stride-2 down-samplings of the denoiser U-Net (CUIE runs at stride ``2**depth``).
        heads: attention heads of the CUIE block.
        context_dim: channels of the prior features used as context; ``None`` = read from
            ``prior.spec.channels[context_level]`` (a ``SegPrior``).
        context_level: which prior feature level gives the context tokens.
        token_grid: the prior features are pooled to ``token_grid x token_grid`` tokens.
        timesteps: diffusion steps ``T`` of the training schedule.
        schedule: ``"cosine"`` or ``"linear"``.
        sampling_steps: DDIM steps at inference.
        eta: DDIM stochasticity (``0`` = deterministic given the initial noise).
        residual: diffuse the residual ``high - low`` (``True``) or the image ``2 * high - 1``.
        context_weight: weight of the semantic context regularisation (``0`` = off).
        prediction: what the denoiser predicts: ``"eps"``, the noise (trained with the epsilon
            objective), or ``"v"``, the velocity ``sqrt(a_t) eps - sqrt(1 - a_t) x0`` (Salimans & Ho 2022;
            trained with the velocity objective, noise estimate ``sqrt(1 - a_t) x_t + sqrt(a_t) v_hat``). With
            ``"eps"`` the implied ``x0`` multiplies the network's error by ``1 / sqrt(a_t)`` (2e4 at the
            cosine schedule's last step, where DDIM starts); with ``"v"`` it does not.
        eps_skip: with ``prediction="eps"``, precondition the noise prediction with an input skip,
            ``eps_hat = sqrt(1 - alpha_bar_t) * x_t + net(...)`` (the best guess of the noise when
            ``x0`` is standard normal, so the network learns a correction; much faster early training).
        max_regions: at most this many region tokens from a prior's ``extras["regions"]`` map
            (SAM's automatic masks, largest first).

    Examples:
        >>> CUGDConfig(width=8, depth=1, context_dim=4).sampling_steps
        10
        >>> CUGDConfig.preset("cugd", width=16).to_dict()["width"]
        16
    """

    PRESETS: ClassVar[tuple[str, ...]] = ("cugd",)

    width: int = 32
    depth: int = 2
    heads: int = 4
    context_dim: int | None = None
    context_level: int = -1
    token_grid: int = 8
    timesteps: int = 1000
    schedule: str = "cosine"
    sampling_steps: int = 10
    eta: float = 0.0
    residual: bool = True
    context_weight: float = 0.0
    max_regions: int = 16
    eps_skip: bool = True
    prediction: str = "eps"

    def __post_init__(self) -> None:
        if self.width < 1 or self.depth < 1:
            raise ValueError(f"CUGDConfig needs width >= 1 and depth >= 1, got {self.width}, {self.depth}")
        if (self.width * 2**self.depth) % self.heads:
            raise ValueError(
                f"CUGDConfig.heads={self.heads} must divide the bottleneck width {self.width * 2**self.depth}"
            )
        if self.width % 4:
            raise ValueError(f"CUGDConfig.width must be a multiple of 4 (GroupNorm with 4 groups), got {self.width}")
        if self.schedule not in ("cosine", "linear"):
            raise ValueError(f"CUGDConfig.schedule must be 'cosine' or 'linear', got {self.schedule!r}")
        if not 1 <= self.sampling_steps <= self.timesteps:
            raise ValueError(
                f"CUGDConfig.sampling_steps must be in [1, timesteps={self.timesteps}], got {self.sampling_steps}"
            )
        if self.prediction not in ("eps", "v"):
            raise ValueError(f"CUGDConfig.prediction must be 'eps' or 'v', got {self.prediction!r}")
        if self.eta < 0 or self.context_weight < 0 or self.token_grid < 1 or self.max_regions < 1:
            raise ValueError("CUGDConfig.eta and context_weight must be >= 0, token_grid and max_regions >= 1")

    @classmethod
    def preset(cls, name: str = "cugd", **overrides: Any) -> CUGDConfig:
        """``"cugd"`` (width 32, depth 2, 4 heads, 10 DDIM steps), with field overrides."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown CUGD preset {name!r}; choose one of {list(cls.PRESETS)}")
        return cls.from_dict(overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CUGDConfig:
        """Strict: an unknown key is an error naming the valid ones."""
        return config_from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of integer timesteps, ``(B,) -> (B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


class _TimeResBlock(nn.Module):
    def __init__(self, ch: int, tdim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(4, ch), nn.Conv2d(ch, ch, 3, 1, 1)
        self.temb = nn.Linear(tdim, ch)
        self.norm2, self.conv2 = nn.GroupNorm(4, ch), nn.Conv2d(ch, ch, 3, 1, 1)

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.temb(temb)[:, :, None, None]
        return x + self.conv2(F.silu(self.norm2(h)))


class CUGDDenoiser(nn.Module):
    """Noise predictor: a time-conditioned U-Net on ``cat(x_t, low)`` with a CUIE bottleneck.

    Any input size works (stride-2 convs round up; up-sampling resizes to the skip).

    Shape:
        - x_t, low: `(B, 3, H, W)`; t: `(B,)` int64; context: `(B, T, context_dim)`
        - output: `(B, 3, H, W)`
    """

    def __init__(self, width: int, depth: int, context_dim: int, heads: int) -> None:
        super().__init__()
        tdim = 4 * width
        self.width = width
        self.time_mlp = nn.Sequential(nn.Linear(width, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.inp = nn.Conv2d(6, width, 3, 1, 1)
        chans = [width * 2**i for i in range(depth + 1)]
        self.enc = nn.ModuleList(_TimeResBlock(c, tdim) for c in chans[:-1])
        self.down = nn.ModuleList(nn.Conv2d(c, 2 * c, 3, 2, 1) for c in chans[:-1])
        self.mid1 = _TimeResBlock(chans[-1], tdim)
        self.cuie = CUIEBlock(chans[-1], context_dim, heads=heads)
        self.mid2 = _TimeResBlock(chans[-1], tdim)
        self.up = nn.ModuleList(nn.Conv2d(2 * c, c, 3, 1, 1) for c in reversed(chans[:-1]))
        self.fuse = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in reversed(chans[:-1]))
        self.dec = nn.ModuleList(_TimeResBlock(c, tdim) for c in reversed(chans[:-1]))
        self.out_norm = nn.GroupNorm(4, width)
        self.out = nn.Conv2d(width, 3, 3, 1, 1)
        for p in self.out.parameters():  # weight and bias
            nn.init.zeros_(p)

    def forward(self, x_t: Tensor, low: Tensor, t: Tensor, context: Tensor) -> Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.width).to(x_t.dtype))
        h = self.inp(torch.cat([x_t, low], dim=1))
        skips = []
        for block, down in zip(self.enc, self.down):
            h = block(h, temb)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.cuie(self.mid1(h, temb), context), temb)
        for up, fuse, block, skip in zip(self.up, self.fuse, self.dec, reversed(skips)):
            h = up(F.interpolate(h, size=skip.shape[-2:], mode="nearest"))
            h = block(fuse(torch.cat([h, skip], dim=1)), temb)
        return self.out(F.silu(self.out_norm(h)))


class CUGD(nn.Module):
    """Context-understanding-guided diffusion enhancer.

    ``model(low)`` enhances (DDIM, ``config.sampling_steps``), like every semprior model;
    [`loss`][semprior.models.cugd.CUGD.loss] is the training objective ``(total, terms)``, which
    ``cugd_training_loss`` calls for the trainer.
    The prior is frozen (``requires_grad=False``, kept in eval mode by `train`) and is **not
    a submodule**: its weights are not in `state_dict` nor in ``parameters()`` (a checkpoint
    records the prior by name, see `semprior.models.io`). A ``SegPrior`` follows the input's device
    and dtype by itself; another module is moved to them on first use.

    Args:
        prior: a ``SegPrior`` or a module ``f(img) -> Tensor | list[Tensor] | PriorOutput``.
        config: hyper-parameters.

    Shape:
        - low, high: `(B, 3, H, W)`; masks (optional region masks): `(B, R, h, w)`
        - output of ``model(low)``: `(B, 3, H, W)` in ``[0, 1]``

    Examples:
        >>> prior = torch.nn.Conv2d(3, 4, 4, stride=4)
        >>> model = CUGD(prior, CUGDConfig(width=8, depth=1, heads=2, context_dim=4, sampling_steps=2))
        >>> model(torch.rand(1, 3, 9, 11), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([1, 3, 9, 11])
    """

    def __init__(self, prior: nn.Module, config: CUGDConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or CUGDConfig()
        prior = _as_prior(prior)
        self._frozen = (prior.requires_grad_(False).eval(),)
        context_dim = cfg.context_dim
        if context_dim is None:
            spec = getattr(prior, "spec", None)
            if spec is None:
                raise ValueError(
                    "CUGDConfig.context_dim is None and the prior has no .spec; set context_dim to its feature channels"
                )
            context_dim = spec.channels[cfg.context_level]
        self.context_dim = int(context_dim)
        self.denoiser = CUGDDenoiser(cfg.width, cfg.depth, self.context_dim, cfg.heads)
        self.schedule = NoiseSchedule(cfg.timesteps, cfg.schedule)

    #: DDIM runs at any size (stride-2 convs round up, up-sampling resizes to the skip)
    required_multiple = 1

    @property
    def prior(self) -> nn.Module:
        """The frozen prior (not a submodule: outside ``state_dict`` and ``parameters()``)."""
        return self._frozen[0]

    def train(self, mode: bool = True) -> CUGD:
        super().train(mode)
        self.prior.eval()  # frozen prior: BatchNorm/Dropout never switch to training
        return self

    def _follow(self, low: Tensor) -> None:
        # a SegPrior follows its input itself; a plain module is moved (it has no optimizer state)
        t = next(iter([*self.prior.parameters(), *self.prior.buffers()]), None)
        if t is not None and (t.device != low.device or (t.is_floating_point() and t.dtype != low.dtype)):
            self.prior.to(device=low.device, dtype=low.dtype)

    def context(self, low: Tensor, masks: Tensor | None = None) -> Tensor:
        """Context tokens of the prior on the low-light image: grid tokens (+ one per region mask).

        Region masks are ``masks`` when given, else the prior's ``extras["regions"]`` map when it
        has one (``SAMPrior(region_map=True)``), else there are no region tokens.

        Shape:
            - low: `(B, 3, H, W)`; masks: `(B, R, h, w)` -> `(B, token_grid**2 (+ R), context_dim)`
        """
        self._follow(low)
        with torch.no_grad():
            out = self.prior(low)
        feats = _as_levels(out)[self.config.context_level]
        extras = getattr(out, "extras", None) or {}
        if masks is None and "regions" in extras:
            masks = region_masks_from_map(extras["regions"], self.config.max_regions)
        if feats.shape[1] != self.context_dim:
            raise ValueError(
                f"prior feature level {self.config.context_level} has {feats.shape[1]} channels but CUGD was built "
                f"with context_dim={self.context_dim}; set CUGDConfig.context_dim={feats.shape[1]}"
            )
        tokens = feature_tokens(feats, self.config.token_grid)
        if masks is not None:
            tokens = torch.cat([tokens, region_tokens(feats, masks)], dim=1)
        return tokens.detach()

    def predict_eps(self, x_t: Tensor, low: Tensor, t: Tensor, context: Tensor) -> Tensor:
        """The noise estimate ``eps_hat(x_t, t | low, context)`` (with the optional input skip)."""
        out = self.denoiser(x_t, low, t, context)
        ab = self.schedule.alphas_cumprod.to(x_t.device)[t].to(x_t.dtype).view(-1, 1, 1, 1)
        if self.config.prediction == "v":
            return (1 - ab).sqrt() * x_t + ab.sqrt() * out
        return out + (1 - ab).sqrt() * x_t if self.config.eps_skip else out

    def _to_x0(self, low: Tensor, high: Tensor) -> Tensor:
        return high - low if self.config.residual else 2 * high - 1

    def _to_image(self, low: Tensor, x0: Tensor) -> Tensor:
        return (low + x0 if self.config.residual else (x0 + 1) / 2).clamp(0, 1)

    def loss(
        self, low: Tensor, high: Tensor, masks: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Epsilon objective (+ ``context_weight`` x semantic context loss); returns ``(total, terms)``.

        The context loss compares the implied clean estimate ``x0_hat`` with ``high``, per sample
        weighted by ``alpha_bar_t`` (near-pure-noise estimates carry little semantics).
        """
        check_image(low, "low", unit_range=True)
        check_same_shape(low, high, ("low", "high"))
        ctx = self.context(low, masks)
        x0 = self._to_x0(low, high)
        if self.config.prediction == "v":
            v_fn = lambda x_t, t: self.denoiser(x_t, low, t, ctx)  # noqa: E731
            mse, x0_hat, t, _ = v_loss(v_fn, x0, self.schedule, generator)
        else:
            eps_fn = lambda x_t, t: self.predict_eps(x_t, low, t, ctx)  # noqa: E731
            mse, x0_hat, t, _ = epsilon_loss(eps_fn, x0, self.schedule, generator)
        terms: dict[str, Tensor] = {f"{self.config.prediction}_mse": mse.detach()}
        total = mse
        if self.config.context_weight > 0:
            # functional form: the prior is used as a frozen function (never a submodule)
            per = semantic_context_loss(self._to_image(low, x0_hat.clamp(-1, 1)), high, self.prior, reduction="none")
            ctx_loss = (self.schedule.alphas_cumprod.to(per.device)[t] * per).mean()
            terms["context"] = ctx_loss.detach()
            total = total + self.config.context_weight * ctx_loss
        return total, terms

    @torch.no_grad()
    def enhance(
        self,
        low: Tensor,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        masks: Tensor | None = None,
    ) -> Tensor:
        """DDIM-sample the enhanced image; deterministic for a seeded CPU ``generator`` (``eta = 0`` or not)."""
        check_image(low, "low", unit_range=True)
        ctx = self.context(low, masks)
        x0 = ddim_sample(
            lambda x_t, t: self.predict_eps(x_t, low, t, ctx),
            tuple(low.shape),
            self.schedule,
            steps or self.config.sampling_steps,
            eta=self.config.eta,
            generator=generator,
            device=low.device,
            dtype=low.dtype,
        )
        return self._to_image(low, x0)

    def forward(self, low: Tensor, *, masks: Tensor | None = None, generator: Any = None) -> Tensor:
        """Enhance ``low`` (the [`enhance`][semprior.models.cugd.CUGD.enhance] of ``config.sampling_steps``)."""
        return self.enhance(low, generator=generator, masks=masks)


def cugd_training_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """``loss_fn`` for [`semprior.engine.Trainer`][semprior.engine.trainer.Trainer]:
    [`CUGD.loss`][semprior.models.cugd.CUGD.loss] on ``batch``, called through a DDP wrapper's forward (so gradients are
    synchronised)."""
    return call_method(model, "loss", batch["low"], batch["high"])


def _as_prior(prior: object) -> nn.Module:
    """``prior`` itself, checked: CUGD needs a prior module."""
    if not isinstance(prior, nn.Module):
        raise TypeError(f"prior must be an nn.Module (a SegPrior or a feature network), got {type(prior).__name__}")
    return prior


def _build(config: CUGDConfig, prior: nn.Module | None = None, text_loss: Any = None) -> CUGD:
    return CUGD(_as_prior(prior), config)


register_model(
    ModelEntry(
        "cugd",
        CUGDConfig,
        "cugd",
        _build,
        prior="region",
        training_loss=cugd_training_loss,
        tiny={"width": 4, "depth": 1, "heads": 2, "timesteps": 20, "sampling_steps": 2},
        description="CUGD, conditional diffusion guided by a frozen prior's context",
    )
)
