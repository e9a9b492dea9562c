"""DeepSPG: Retinex decomposition, a three-level SEM U-Net on the reflectance guided by a frozen
semantic prior, an illumination adjustment (a learned correction on top of a gamma curve) and
recomposition. Text guidance (CLIP prompts) enters through the training loss only.

Assembly only: the blocks come from `semprior.retinex`, `semprior.attention` and
`semprior.priors`; the loss from `semprior.losses.composite`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, cast

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor, nn

from semprior._bands import MODEL_BAND_PIXELS, conv_rows, halo, local_chain_rows, row_bands
from semprior._bands import band_rows as default_band_rows
from semprior._checks import check_image, check_module_dtype
from semprior.attention.sem import SEM, banded_applies
from semprior.attention.sem_banded import sem_forward_banded
from semprior.losses.composite import DeepSPGLoss, LossWeights
from semprior.models.deepspg_config import ABLATIONS, DeepSPGConfig
from semprior.models.protocol import unwrap
from semprior.models.registry import ModelEntry, Pretrained, register_model
from semprior.priors.base import PriorOutput, SegPrior
from semprior.retinex.decomposer import RetinexDecomposer

__all__ = ["ABLATIONS", "DeepSPG", "DeepSPGConfig", "LossWeights", "deepspg_training_loss"]


def _stage(n: int, dim: int, sem_channels: int, heads: int, cfg: DeepSPGConfig) -> nn.ModuleList:
    return nn.ModuleList(
        SEM(
            dim,
            sem_channels,
            heads=heads,
            ffn_expansion=cfg.ffn_expansion,
            bias=cfg.bias,
            backend=cfg.backend,
            scaling=cfg.attention_scaling,
        )
        for _ in range(n)
    )


class DeepSPG(nn.Module):
    """DeepSPG low-light enhancer (Retinex + semantic-prior-guided reflectance U-Net).

    Pipeline on a low-light image ``I``:

    1. [`RetinexDecomposer`][semprior.retinex.decomposer.RetinexDecomposer]: ``R = clamp(I / L)``, gray illumination
       ``L``, illumination features ``F``;
    2. reflectance restoration: a three-level U-Net (widths ``C, 2C, 4C``, strided-conv down,
       transposed-conv up, skip concatenation) with [`SEM`][semprior.attention.sem.SEM] blocks at every
       level; the queries come from the prior's features (computed on ``I``) of the matching level,
       resized inside SEM; ``R' = R + U(R)``;
    3. illumination adjustment: ``L' = L ** g + δ(L, F)`` with a learned exponent ``g`` and a small
       CNN ``δ`` predicting a correction on top of the curve;
    4. recomposition ``clamp(R' * L', 0, 1)``.

    Inputs of any size are padded (replicate) to a multiple of 4 and cropped back. Pixel values
    outside ``[0, 1]`` are rejected with an error that names the fix (eager mode; the check is
    skipped while compiling, exporting or tracing).

    Args:
        config: [`DeepSPGConfig`][semprior.models.deepspg_config.DeepSPGConfig] (``DeepSPGConfig.preset("deepspg")``
            when ``None``).
        prior: a frozen [`SegPrior`][semprior.priors.base.SegPrior]; required when
            ``config.image_prior`` and refused otherwise. It is **not** a submodule: its weights are
            not in this model's ``state_dict`` or parameter count.
        text_loss: callable ``img -> scalar`` (e.g. [`CLIPPromptLoss`][semprior.losses.clip_prompt.CLIPPromptLoss]);
            required when ``config.text_prior`` and refused otherwise; used by
            [`loss`][semprior.models.deepspg.DeepSPG.loss] only.

    Shape:
        - low: `(B, 3, H, W)` in ``[0, 1]``
        - output: `(B, 3, H, W)` in ``[0, 1]``

    Examples:
        >>> from semprior.priors.region import RegionPrior
        >>> cfg = DeepSPGConfig(width=8, heads=(1, 1, 1), text_prior=False)
        >>> net = DeepSPG(cfg, prior=RegionPrior())
        >>> net(torch.rand(1, 3, 30, 21)).shape
        torch.Size([1, 3, 30, 21])
    """

    #: H and W are padded to this multiple inside forward (two 2x downsamplings); tiling reads it too.
    required_multiple = 4
    #: channel attention spans the whole image: tiles change the output everywhere (`semprior enhance` warns)
    global_context = True
    #: without autograd on a CPU, images up to this many pixels (padded) run the whole-image graph in
    #: channels-last (each SEM block still banded inside): faster than the fully banded path, for
    #: about twice its extra memory (docs/performance.md). Larger images run
    #: [`forward_banded`][semprior.models.deepspg.DeepSPG.forward_banded]. Set it on an instance to move the switch
    #: (``0``: always banded).
    whole_graph_max_pixels = 2_500_000
    #: worst PSNR (dB) of the bfloat16-autocast output against fp32 measured on LOL-v1 eval15 with
    #: the shipped weights (benchmarks/results/precision_eval15.md); `semprior.engine.precision`
    #: lets ``precision="auto"`` use bfloat16 for this model because it is above 40 dB
    bf16_inference_psnr_db = 53.0

    def __init__(
        self, config: DeepSPGConfig | None = None, prior: SegPrior | None = None, text_loss: Any = None
    ) -> None:
        super().__init__()
        cfg = self.config = config or DeepSPGConfig.preset("deepspg")
        if cfg.image_prior and prior is None:
            raise ValueError(
                "config.image_prior is True but no prior was given; pass prior=RegionPrior() (weight-free) or "
                "HRNetPrior(...), or use config.ablation('baseline') / image_prior=False"
            )
        if not cfg.image_prior and prior is not None:
            raise ValueError(
                "a prior was given but config.image_prior is False; drop the prior or set image_prior=True"
            )
        if cfg.text_prior and text_loss is None:
            raise ValueError(
                "config.text_prior is True but no text_loss was given; pass text_loss=CLIPPromptLoss(...) or set "
                "text_prior=False"
            )
        if not cfg.text_prior and text_loss is not None:
            raise ValueError("a text_loss was given but config.text_prior is False; drop it or set text_prior=True")
        if prior is not None:
            prior.freeze()
        self._frozen = (prior, text_loss)

        c = cfg.width
        dims = (c, 2 * c, 4 * c)
        if prior is not None:
            n = prior.spec.num_levels
            levels = cfg.prior_levels or tuple(min(i, n - 1) for i in range(3))
            if max(levels) >= n:
                raise ValueError(f"prior_levels {levels} index past the prior's {n} levels ({prior.spec.name})")
            self.prior_levels: tuple[int, ...] = levels
            sem_ch = tuple(prior.spec.channels[j] for j in levels)
        else:
            self.prior_levels = ()
            sem_ch = dims  # baseline: queries from the image features themselves

        self.decomposer = RetinexDecomposer(cfg.retinex_width, illumination="gray")
        b1, b2, b3 = cfg.blocks
        h1, h2, h3 = cfg.heads
        self.embed = nn.Conv2d(3, dims[0], 3, padding=1, bias=False)
        self.enc1 = _stage(b1, dims[0], sem_ch[0], h1, cfg)
        self.down1 = nn.Conv2d(dims[0], dims[1], 4, stride=2, padding=1, bias=False)
        self.enc2 = _stage(b2, dims[1], sem_ch[1], h2, cfg)
        self.down2 = nn.Conv2d(dims[1], dims[2], 4, stride=2, padding=1, bias=False)
        self.mid = _stage(b3, dims[2], sem_ch[2], h3, cfg)
        self.up2 = nn.ConvTranspose2d(dims[2], dims[1], 2, stride=2)
        self.fuse2 = nn.Conv2d(2 * dims[1], dims[1], 1, bias=False)
        self.dec2 = _stage(b2, dims[1], sem_ch[1], h2, cfg)
        self.up1 = nn.ConvTranspose2d(dims[1], dims[0], 2, stride=2)
        self.fuse1 = nn.Conv2d(2 * dims[0], dims[0], 1, bias=False)
        self.dec1 = _stage(b1, dims[0], sem_ch[0], h1, cfg)
        self.head = nn.Conv2d(dims[0], 3, 3, padding=1, bias=False)

        ic = cfg.illum_width
        self.illum_adjust = nn.Sequential(
            nn.Conv2d(1 + cfg.retinex_width, ic, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(ic, ic, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(ic, 1, 3, padding=1),
        )
        for p in self.illum_adjust[-1].parameters():  # weight and bias: start exactly on the curve
            nn.init.zeros_(p)
        self.log_gamma = nn.Parameter(torch.tensor(math.log(cfg.curve_gamma)))
        self.criterion = DeepSPGLoss(
            self.effective_loss_weights,
            prior,
            text_loss,
            kl_reverse=cfg.kl_direction == "output||target",
            edge_normalized=cfg.edge_normalized,
        )

    # ------------------------------------------------------------------ properties
    @property
    def prior(self) -> SegPrior | None:
        return self._frozen[0]

    @property
    def text_loss(self) -> Any:
        return self._frozen[1]

    @property
    def effective_loss_weights(self) -> LossWeights:
        """``config.loss`` with λ3 zeroed without an image prior and λ4 zeroed without a text prior."""
        w = self.config.loss
        return replace(
            w,
            semantic_kl=w.semantic_kl if self.config.image_prior else 0.0,
            text=w.text if self.config.text_prior else 0.0,
        )

    # ------------------------------------------------------------------ forward
    def _run(self, blocks: nn.ModuleList, x: Tensor, sem: Tensor | None) -> Tensor:
        ckpt = self.config.activation_checkpointing and self.training and torch.is_grad_enabled()
        for blk in blocks:
            s = x if sem is None else sem
            x = torch.utils.checkpoint.checkpoint(blk, x, s, use_reentrant=False) if ckpt else blk(x, s)
        return x

    def reflectance_unet(self, r: Tensor, sems: list[Tensor | None]) -> Tensor:
        """Residual restoration of the reflectance; ``sems`` holds one prior map (or ``None``) per level."""
        return r + self.head(self._unet(self.embed(r), sems, self._run, _down, _fuse))

    def _unet(self, e1: Tensor, sems: list[Tensor | None], run: Any, down: Any, fuse: Any) -> Tensor:
        """The U-Net wiring (embedded input -> last decoder features), shared by the plain and the banded graph.

        ``run(blocks, x, sem)``, ``down(conv, x)`` and ``fuse(up, fuse, low, skip)`` compute the
        parts: whole tensors (with activation checkpointing inside ``run`` when training) or row
        bands written in place ([`forward_banded`][semprior.models.deepspg.DeepSPG.forward_banded]).
        """
        e1 = run(self.enc1, e1, sems[0])
        e2 = run(self.enc2, down(self.down1, e1), sems[1])
        m = run(self.mid, down(self.down2, e2), sems[2])
        d2 = run(self.dec2, fuse(self.up2, self.fuse2, m, e2), sems[1])
        del m, e2  # the banded parts overwrite the skips in place: each level keeps one feature map
        s1 = fuse(self.up1, self.fuse1, d2, e1)
        del d2, e1
        return run(self.dec1, s1, sems[0])

    def adjust_illumination(self, illum: Tensor, features: Tensor) -> Tensor:
        """``L ** g + δ(L, F)``, kept positive."""
        return self._adjusted(illum, self.illum_adjust(torch.cat([illum, features], 1)))

    def _adjusted(self, illum: Tensor, delta: Tensor) -> Tensor:
        return (illum.clamp(min=1e-4) ** self.log_gamma.exp() + delta).clamp(min=1e-3)

    def forward(self, low: Tensor, prior_out: PriorOutput | None = None) -> Tensor:
        """Enhance ``low``; ``prior_out`` lets callers pass precomputed prior features of ``low``.

        Without autograd and with SEM's backend resolving to ``"streaming"`` (``"auto"`` on a CPU)
        images up to ``whole_graph_max_pixels`` run the whole-image graph in channels-last
        with every SEM block banded inside, larger ones
        [`forward_banded`][semprior.models.deepspg.DeepSPG.forward_banded] (same result to float rounding, bounded
        memory); otherwise (autograd, another backend) the plain graph.
        """
        x, sems = self._prepare(low, prior_out)
        h, w = low.shape[-2:]
        banded = self._runs_banded(x, sems)
        if banded and x.shape[-2] * x.shape[-1] > self.whole_graph_max_pixels:
            out = self._forward_banded(x, sems)
        else:
            if self._channels_last(x, banded):  # convolutions propagate the input's layout through the graph
                x = x.contiguous(memory_format=torch.channels_last)
            dec = self.decomposer(x)
            refl = self.reflectance_unet(dec.reflectance, sems)
            illum = self.adjust_illumination(dec.illumination, dec.features)
            out = (refl * illum).clamp(0.0, 1.0).contiguous()
        return out[..., :h, :w]

    def _prepare(self, low: Tensor, prior_out: PriorOutput | None) -> tuple[Tensor, list[Tensor | None]]:
        """``low`` checked and padded (replicate) to `required_multiple`, and the prior's maps per level."""
        check_module_dtype(check_image(low, "low", unit_range=True), self, "low")
        h, w = low.shape[-2:]
        sems = self._semantics(low, prior_out)
        ph, pw = (-h) % self.required_multiple, (-w) % self.required_multiple
        return (F.pad(low, (0, pw, 0, ph), mode="replicate") if (ph or pw) else low), sems

    def _channels_last(self, x: Tensor, no_grad_cpu: bool = False) -> bool:
        fmt = self.config.memory_format
        return fmt == "channels_last" or (
            fmt == "auto" and x.device.type == "cpu" and (torch.is_grad_enabled() or no_grad_cpu)
        )

    def _semantics(self, low: Tensor, prior_out: PriorOutput | None) -> list[Tensor | None]:
        if self.prior is not None:
            if prior_out is None:
                prior_out = self.prior(low)
            return [prior_out.features[j] for j in self.prior_levels]
        if prior_out is not None:
            raise ValueError("prior_out was given but this DeepSPG has no image prior (config.image_prior=False)")
        return [None, None, None]

    def _runs_banded(self, x: Tensor, sems: list[Tensor | None]) -> bool:
        c, heads = self.config.width, self.config.heads
        per_head = min(c * 2**i // heads[i] for i in range(3))
        return banded_applies(self.config.backend, per_head, x, *sems, *self.parameters())

    # ------------------------------------------------------------------ exact low-memory inference
    def forward_banded(self, low: Tensor, prior_out: PriorOutput | None = None, band_rows: int | None = None) -> Tensor:
        """[`forward`][semprior.models.deepspg.DeepSPG.forward] computed band by band over rows, without autograd (same
        result to float rounding).

        Every full-resolution stage is local except SEM's attention map (global, a ``c×c`` matrix
        per head, accumulated in a first pass over bands), so: the decomposer, ``embed``, the
        down/up-sampling convs, the skip fusions, the GDFN and the illumination branch run in
        row bands with their halos; SEM blocks run banded *in place*; the level-1 skip tensor is
        the only full-size feature map (``C`` channels), the level-2 one the only half-size one.
        [`forward`][semprior.models.deepspg.DeepSPG.forward] picks this path by itself when it applies; call it directly
        to force it (for example with a Triton backend on a GPU) or to choose ``band_rows`` (even, >= 2).

        Shape:
            - low: `(B, 3, H, W)` -> `(B, 3, H, W)`
        """
        if band_rows is not None and (band_rows < 2 or band_rows % 2):
            raise ValueError(f"band_rows must be an even number >= 2, got {band_rows}")
        x, sems = self._prepare(low, prior_out)
        return self._forward_banded(x, sems, band_rows)[..., : low.shape[-2], : low.shape[-1]]

    @torch.no_grad()
    def _forward_banded(self, x: Tensor, sems: list[Tensor | None], band: int | None = None) -> Tensor:
        b, _, h, w = x.shape
        band = band or default_band_rows(w, multiple=2, pixels=MODEL_BAND_PIXELS)
        dec = self.decomposer

        def run(blocks: nn.ModuleList, t: Tensor, sem: Tensor | None) -> Tensor:
            for blk in blocks:  # in place: t is this level's only feature map; the same rows at every
                # level (width halves as channels double): about the same bytes per band
                sem_forward_banded(blk, t, t if sem is None else sem, band_rows=band, out=t)
            return t

        e1 = x.new_empty(b, self.embed.out_channels, h, w)
        for r0, r1 in row_bands(h, band):
            a0, a1 = halo(r0, r1, h)
            e1[:, :, r0:r1] = conv_rows(dec.rows(x, a0, a1).reflectance, self.embed, r0, r1, h, a0)
        e1 = self._unet(
            e1,
            sems,
            run,
            lambda conv, t: _down_rows(conv, t, band),
            lambda up, fuse, low, skip: _fuse_rows(up, fuse, low, skip, band),
        )

        out = x.new_empty(b, 3, h, w)
        k = sum(cast(tuple[int, int], m.padding)[0] for m in self.illum_adjust if isinstance(m, nn.Conv2d))
        for r0, r1 in row_bands(h, band):
            g0, g1 = halo(r0, r1, h, k)
            d = dec.rows(x, g0, g1)
            refl = d.reflectance[:, :, r0 - g0 : r1 - g0] + conv_rows(e1, self.head, r0, r1, h)
            delta = local_chain_rows(self.illum_adjust, torch.cat([d.illumination, d.features], 1), r0, r1, h, g0)
            out[:, :, r0:r1] = (refl * self._adjusted(d.illumination[:, :, r0 - g0 : r1 - g0], delta)).clamp(0.0, 1.0)
        return out

    def parameter_count(self) -> int:
        """Trainable parameters of this DeepSPG, as built for its prior (the frozen prior itself excluded).

        The semantic projections depend on the prior's channels, so the count differs per prior:
        575,713 with [`RegionPrior`][semprior.priors.region.RegionPrior], 607,969 with HRNet-W48 and
        594,657 without a prior for the ``deepspg`` preset (``ffn_expansion=2.0``: 519,517 /
        551,773 / 538,461).
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def loss(self, low: Tensor, high: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The training objective (the protocol's ``loss(low, high)``): the paper's loss of ``self(low)`` against
        ``high``.

        Returns ``(total, {unweighted term: value})``. On an output already computed, call
        ``self.criterion(output, high)`` (a [`DeepSPGLoss`][semprior.losses.composite.DeepSPGLoss]), as
        [`deepspg_training_loss`][semprior.models.deepspg.deepspg_training_loss] does.

        Shape:
            - low, high: `(B, 3, H, W)` in ``[0, 1]``
        """
        return self.criterion(self(low), high)

    def extra_repr(self) -> str:
        prior = self.prior.spec.name if self.prior is not None else None
        return (
            f"prior={prior!r}, prior_levels={self.prior_levels}, text_prior={self.config.text_prior}, "
            f"params={self.parameter_count():,}"
        )


def _down(conv: nn.Conv2d, x: Tensor) -> Tensor:
    return conv(x)


def _fuse(up: nn.ConvTranspose2d, fuse: nn.Conv2d, low: Tensor, skip: Tensor) -> Tensor:
    """``fuse(cat(up(low), skip))``: a decoder level's input."""
    return fuse(torch.cat([up(low), skip], 1))


def _down_rows(conv: nn.Conv2d, src: Tensor, band: int) -> Tensor:
    """``conv(src)`` (a strided conv) computed over bands of output rows."""
    h, w = src.shape[-2:]
    # the model's strided convs are built with numeric padding
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, cast(tuple[int, int], conv.padding)
    out = src.new_empty(src.shape[0], conv.out_channels, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    for r0, r1 in row_bands(out.shape[-2], max(1, band // sh)):
        out[:, :, r0:r1] = conv_rows(src, conv, r0, r1, h)
    return out


def _fuse_rows(up: nn.ConvTranspose2d, fuse: nn.Conv2d, low: Tensor, skip: Tensor, band: int) -> Tensor:
    """``skip <- fuse(cat(up(low), skip))`` in place, over bands of rows (``up``: kernel 2, stride 2); returns
    ``skip``."""
    if up.kernel_size != (2, 2) or up.stride != (2, 2) or up.padding != (0, 0) or band % 2:
        raise ValueError(f"_fuse_rows needs a 2x2 stride-2 transposed conv and an even band, got {up}, band {band}")
    for r0, r1 in row_bands(skip.shape[-2], band):
        skip[:, :, r0:r1] = _fuse(up, fuse, low[:, :, r0 // 2 : r1 // 2], skip[:, :, r0:r1])
    return skip


def deepspg_training_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """``loss_fn`` for [`semprior.engine.Trainer`][semprior.engine.trainer.Trainer]: the value of
    [`DeepSPG.loss`][semprior.models.deepspg.DeepSPG.loss] on ``batch``.

    Calls the (possibly DDP-wrapped) ``model`` itself so gradients are synchronised, then the
    unwrapped model's ``criterion`` on the output.
    """
    from semprior.losses.precision import fp32_loss

    out = model(batch["low"])
    return fp32_loss(cast(DeepSPG, unwrap(model)).criterion, out, batch["high"])


def _prior_switch(data: dict[str, Any], *, prior: bool, text: bool, saved: bool) -> dict[str, Any]:
    """DeepSPG's config rule: ``image_prior`` / ``text_prior`` record whether a prior / a text loss is given.

    The prior switch is the prior itself (``prior=`` / ``prior:``; the text loss likewise): a
    config that says otherwise is an error naming the switch. A saved model loads without its
    text loss (it shapes training only; inference never needs CLIP).
    """
    given = {"image_prior": prior, "text_prior": text}
    for key in ("image_prior",) if saved else ("image_prior", "text_prior"):
        if key in data and bool(data[key]) != given[key]:
            what, switch = ("the prior", "prior") if key == "image_prior" else ("the text loss", "text")
            state = f"{key}={data[key]} but {what} is {'given' if given[key] else 'missing'}"
            if saved:
                raise ValueError(
                    f"the saved model's DeepSPG config has {state}; load it with the prior it was "
                    "trained with (prior=, --prior)"
                )
            raise ValueError(
                f"the DeepSPG config has {state}; {key} follows the {switch}: set `{switch}` "
                "(prior=/text_loss= in Python, prior:/text: in a run config), not the field"
            )
    return {**data, **given}


def _build(config: DeepSPGConfig, prior: SegPrior | None = None, text_loss: Any = None) -> DeepSPG:
    return DeepSPG(config, prior=prior, text_loss=text_loss)


_TINY = {"width": 8, "heads": (1, 1, 1), "retinex_width": 4, "illum_width": 4}


def _entry(name: str, description: str, pretrained: dict[str, Pretrained] | None = None) -> ModelEntry:
    """A DeepSPG registry entry: ``name`` is both the registry name and the config preset."""
    return ModelEntry(
        name,
        DeepSPGConfig,
        name,
        _build,
        prior="region",
        text=True,
        rules=_prior_switch,
        training_loss=deepspg_training_loss,
        pretrained=pretrained or {},
        tiny=_TINY,
        description=description,
    )


register_model(
    _entry(
        "deepspg",
        "DeepSPG (0.55 M), Retinex + SEM U-Net guided by a frozen prior",
        {
            "lolv1-cpu": Pretrained(
                "deepspg-lolv1-cpu",
                shipped=True,
                dataset="LOL-v1",
                source="semprior CPU run, no prior (semprior/pretrained/deepspg-lolv1-cpu/MODEL_CARD.md)",
            )
        },
    )
)
register_model(_entry("deepspg-large", "DeepSPG large (2.13 M)"))
