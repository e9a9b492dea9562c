"""Classical, parameter-free enhancers as ``nn.Module`` baselines: ``(B, 3, H, W) -> (B, 3, H, W)``.

They have no learnable parameters and no training; they exist so that learned models are
always reported beside honest baselines under the same [`MetricProtocol`][semprior.metrics.protocol.MetricProtocol].
``CLASSICAL`` maps a CLI name to the class.

Each follows the enhancer protocol (`semprior.models.protocol`): a frozen config dataclass
(``config``, with ``from_dict`` / ``to_dict``), ``required_multiple = 1`` (any size) and inputs
checked at ``forward`` (float RGB in ``[0, 1]``; values outside are rejected, never clamped).
The keyword constructors (``Gamma(0.4)``) build the config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprior._checks import check_image
from semprior._config import from_dict
from semprior.models.registry import ModelEntry, register_model
from semprior.retinex.classical import smooth_illumination

__all__ = [
    "CLAHE",
    "CLAHEConfig",
    "CLASSICAL",
    "Gamma",
    "GammaConfig",
    "HistogramEqualization",
    "HistogramEqualizationConfig",
    "Identity",
    "IdentityConfig",
    "LIMERetinex",
    "LIMERetinexConfig",
]


class _Config:
    """``to_dict`` / ``from_dict`` shared by the classical configs (strict: unknown keys are an error)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Any:
        return from_dict(cls, data, cls.__name__)


@dataclass(frozen=True)
class IdentityConfig(_Config):
    """[`Identity`][semprior.models.classical.Identity] has no settings."""


@dataclass(frozen=True)
class GammaConfig(_Config):
    """[`Gamma`][semprior.models.classical.Gamma]'s exponent (``gamma < 1`` brightens)."""

    gamma: float = 0.4

    def __post_init__(self) -> None:
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")


@dataclass(frozen=True)
class HistogramEqualizationConfig(_Config):
    """[`HistogramEqualization`][semprior.models.classical.HistogramEqualization] has no settings."""


@dataclass(frozen=True)
class CLAHEConfig(_Config):
    """[`CLAHE`][semprior.models.classical.CLAHE]'s clip limit, grid (rows, columns of cells) and colour space."""

    clip_limit: float = 2.0
    grid_size: tuple[int, int] = (8, 8)
    space: Literal["lab", "hsv"] = "lab"

    def __post_init__(self) -> None:
        if not self.clip_limit > 0:
            raise ValueError(f"clip_limit must be > 0, got {self.clip_limit}")
        grid = tuple(int(g) for g in self.grid_size)
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"grid_size must be two ints >= 1 (rows, columns), got {self.grid_size}")
        object.__setattr__(self, "grid_size", grid)
        if self.space not in ("lab", "hsv"):
            raise ValueError(f"space must be 'lab' or 'hsv', got {self.space!r}")


@dataclass(frozen=True)
class LIMERetinexConfig(_Config):
    """[`LIMERetinex`][semprior.models.classical.LIMERetinex]'s illumination gamma, smoothing and floor."""

    gamma: float = 0.8
    smooth: float = 2.0
    method: Literal["gaussian", "guided"] = "gaussian"
    eps: float = 1e-3

    def __post_init__(self) -> None:
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        if self.smooth < 0:
            raise ValueError(f"smooth must be >= 0, got {self.smooth}")
        if self.method not in ("gaussian", "guided"):
            raise ValueError(f"method must be 'gaussian' or 'guided', got {self.method!r}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")


def _image(img: Tensor) -> Tensor:
    """The input rule of every enhancer: ``(B, 3, H, W)`` float in ``[0, 1]`` (skipped while tracing)."""
    return check_image(img, "img", unit_range=True)


class Identity(nn.Module):
    """Return the input unchanged (the "raw input" row of a results table).

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Examples:
        >>> x = torch.rand(1, 3, 4, 4)
        >>> bool(torch.equal(Identity()(x), x))
        True
    """

    required_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.config = IdentityConfig()

    def forward(self, img: Tensor) -> Tensor:
        return _image(img)


class Gamma(nn.Module):
    r"""Global gamma curve $I^{\gamma}$ (``gamma < 1`` brightens).

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Examples:
        >>> Gamma(0.5)(torch.full((1, 3, 2, 2), 0.25))[0, 0, 0, 0].item()
        0.5
    """

    required_multiple = 1

    def __init__(self, gamma: float = 0.4) -> None:
        super().__init__()
        self.config = GammaConfig(float(gamma))
        self.gamma = self.config.gamma

    def forward(self, img: Tensor) -> Tensor:
        return _image(img).clamp(0.0, 1.0).pow(self.gamma)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


def _apply_on_value(img: Tensor, fn) -> Tensor:
    import kornia

    hsv = kornia.color.rgb_to_hsv(img.clamp(0.0, 1.0))
    v = fn(hsv[:, 2:3].contiguous())
    return kornia.color.hsv_to_rgb(torch.cat([hsv[:, :2], v.clamp(0.0, 1.0)], dim=1)).clamp(0.0, 1.0)


class HistogramEqualization(nn.Module):
    """Global histogram equalisation of the HSV value channel (``kornia.enhance.equalize``).

    Hue and saturation are kept. Not differentiable (histogram binning). A global method
    (``tileable = False``): [`enhance_image`][semprior.engine.tiling.enhance_image] runs it on the whole
    image even when tiling is asked for, since tiles would each get their own histogram.

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Examples:
        >>> HistogramEqualization()(torch.rand(1, 3, 16, 16) * 0.2).shape
        torch.Size([1, 3, 16, 16])
    """

    tileable = False
    required_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.config = HistogramEqualizationConfig()

    def forward(self, img: Tensor) -> Tensor:
        import kornia

        return _apply_on_value(_image(img), kornia.enhance.equalize)


class CLAHE(nn.Module):
    """Contrast-limited adaptive histogram equalisation (``kornia.enhance.equalize_clahe``).

    Applied to the Lab lightness ``L`` (default, chroma kept) or to the HSV value channel.
    ``clip_limit`` follows kornia's convention (relative to the uniform bin height, as OpenCV's).
    The ``grid_size`` cells divide the whole image, so CLAHE is not tileable (``tileable = False``):
    [`enhance_image`][semprior.engine.tiling.enhance_image] runs it on the whole image.

    Small images: kornia needs more pixels than cells along each axis, so an axis of ``n <=
    grid`` pixels is divided into ``n - 1`` cells instead ([`grid_for`][semprior.models.classical.CLAHE.grid_for]; an
    8x8 grid on a 6x9 image becomes 5x8 cells); an axis of one pixel is duplicated to two (replicate padding,
    which leaves each cell's histogram unchanged) and cropped back.

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Examples:
        >>> CLAHE()(torch.rand(1, 3, 32, 32) * 0.2).shape
        torch.Size([1, 3, 32, 32])
    """

    tileable = False
    required_multiple = 1

    def __init__(
        self, clip_limit: float = 2.0, grid_size: tuple[int, int] = (8, 8), space: Literal["lab", "hsv"] = "lab"
    ) -> None:
        super().__init__()
        self.config = CLAHEConfig(float(clip_limit), tuple(grid_size), space)  # type: ignore[arg-type]
        self.clip_limit, self.grid_size, self.space = self.config.clip_limit, self.config.grid_size, self.config.space

    def grid_for(self, height: int, width: int) -> tuple[int, int]:
        """The grid used on a ``height x width`` image: ``grid_size``, with at most ``n - 1`` cells on an axis of
        ``n > 1``."""
        return tuple(max(1, min(g, n - 1)) for g, n in zip(self.grid_size, (height, width)))  # type: ignore[return-value]

    def _clahe(self, ch: Tensor) -> Tensor:
        import kornia

        h, w = ch.shape[-2:]
        x = F.pad(ch, (0, int(w < 2), 0, int(h < 2)), mode="replicate") if min(h, w) < 2 else ch
        y = kornia.enhance.equalize_clahe(x, clip_limit=self.clip_limit, grid_size=self.grid_for(h, w))
        return y[..., :h, :w]

    def forward(self, img: Tensor) -> Tensor:
        import kornia

        _image(img)
        if self.space == "hsv":
            return _apply_on_value(img, self._clahe)
        lab = kornia.color.rgb_to_lab(img.clamp(0.0, 1.0))
        lum = self._clahe((lab[:, :1] / 100.0).clamp(0.0, 1.0).contiguous()) * 100.0
        return kornia.color.lab_to_rgb(torch.cat([lum, lab[:, 1:]], dim=1), clip=True)

    def extra_repr(self) -> str:
        return f"clip_limit={self.clip_limit}, grid_size={self.grid_size}, space={self.space!r}"


class LIMERetinex(nn.Module):
    r"""LIME-style Retinex enhancement (Guo et al., TIP 2017), simplified.

    Illumination: the max-RGB map, smoothed (Gaussian sigma ``smooth`` or kornia's guided
    filter), kept at least ``eps``; gamma-adjusted $L^{\gamma}$ (``gamma=0.8``); output
    $\mathrm{clamp}(I / L^{\gamma}, 0, 1)$. LIME's structure-aware optimisation of ``L``
    is replaced by the smoothing filter; there is no denoising step.

    Shape:
        - Input: `(B, 3, H, W)`
        - Output: `(B, 3, H, W)`

    Examples:
        >>> y = LIMERetinex()(torch.rand(1, 3, 16, 16) * 0.2)
        >>> y.shape, bool(y.max() <= 1)
        (torch.Size([1, 3, 16, 16]), True)
    """

    required_multiple = 1

    def __init__(
        self,
        gamma: float = 0.8,
        smooth: float = 2.0,
        method: Literal["gaussian", "guided"] = "gaussian",
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.config = LIMERetinexConfig(float(gamma), float(smooth), method, float(eps))
        c = self.config
        self.gamma, self.smooth, self.method, self.eps = c.gamma, c.smooth, c.method, c.eps

    def illumination(self, img: Tensor) -> Tensor:
        """The gamma-adjusted illumination `(B, 1, H, W)` that the image is divided by."""
        return self._illumination(_image(img))

    def _illumination(self, img: Tensor) -> Tensor:
        lmax = img.clamp(0.0, 1.0).amax(dim=1, keepdim=True)
        return smooth_illumination(lmax, self.smooth, self.method).clamp(self.eps, 1.0).pow(self.gamma)

    def forward(self, img: Tensor) -> Tensor:
        return (_image(img).clamp(0.0, 1.0) / self._illumination(img)).clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, smooth={self.smooth}, method={self.method!r}"


#: CLI name -> class (the one table for this family; construct with defaults or keyword args).
CLASSICAL: dict[str, type[nn.Module]] = {
    "identity": Identity,
    "gamma": Gamma,
    "he": HistogramEqualization,
    "clahe": CLAHE,
    "lime": LIMERetinex,
}

_DESCRIPTIONS = {
    "identity": "the input unchanged",
    "gamma": "gamma curve (0.4)",
    "he": "global histogram equalisation of the HSV value",
    "clahe": "CLAHE on Lab lightness",
    "lime": "LIME-style Retinex (max-RGB illumination)",
}


def _builder(cls: type[nn.Module]) -> Any:
    def build(config: Any, prior: Any = None, text_loss: Any = None) -> nn.Module:
        return cls(**config.to_dict())

    return build


for _name, _cls in CLASSICAL.items():
    register_model(
        ModelEntry(
            _name,
            globals()[f"{_cls.__name__}Config"],
            None,
            _builder(_cls),
            description=f"classical: {_DESCRIPTIONS[_name]}",
        )
    )
