"""A compact Gaussian diffusion toolkit: noise schedules, the epsilon objective, a DDIM sampler.

- [`NoiseSchedule`][semprior.models.diffusion.NoiseSchedule]: ``beta_t`` for ``t = 0 .. T-1`` (``"linear"``: Ho et al.
  2020, ``1e-4 .. 0.02``; ``"cosine"``: Nichol & Dhariwal 2021, ``s = 0.008``, betas clipped to 0.999)
  and ``alpha_bar_t = prod(1 - beta)``;
- [`epsilon_loss`][semprior.models.diffusion.epsilon_loss]:
  ``E_t,eps || eps - eps_theta(sqrt(a_t) x0 + sqrt(1 - a_t) eps, t) ||^2``;
- [`v_loss`][semprior.models.diffusion.v_loss]: the same with the velocity target
  ``v = sqrt(a_t) eps - sqrt(1 - a_t) x0`` (Salimans & Ho 2022), whose implied ``x0`` stays well conditioned
  where ``a_t -> 0``;
- [`ddim_sample`][semprior.models.diffusion.ddim_sample]: DDIM (Song et al. 2021) over an evenly spaced sub-sequence of
  ``steps`` timesteps; ``eta = 0`` is deterministic given the initial noise, and every random draw comes
  from the ``generator`` argument, so a seeded generator reproduces the sample bit for bit.

``eps_fn(x_t, t)`` is any callable predicting the noise, ``t`` a ``(B,)`` int64 tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["NoiseSchedule", "make_betas", "epsilon_loss", "v_loss", "ddim_timesteps", "ddim_sample"]

EpsFn = Callable[[Tensor, Tensor], Tensor]
_KINDS = ("linear", "cosine")


def make_betas(timesteps: int, kind: str = "cosine") -> Tensor:
    """The ``(T,)`` float64 beta schedule.

    Examples:
        >>> b = make_betas(1000, "linear")
        >>> round(b[0].item(), 6), round(b[-1].item(), 6)
        (0.0001, 0.02)
    """
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    if kind == "linear":
        scale = 1000.0 / timesteps
        return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
        ab = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi / 2) ** 2
        ab = ab / ab[0]
        return (1 - ab[1:] / ab[:-1]).clamp(0, 0.999)
    raise ValueError(f"unknown noise schedule {kind!r}; choose one of {_KINDS}")


class NoiseSchedule(nn.Module):
    """Betas and cumulative alphas as non-persistent buffers (they follow ``.to(device)``).

    Examples:
        >>> s = NoiseSchedule(100, "cosine")
        >>> s.alphas_cumprod.shape, bool(s.alphas_cumprod[0] > s.alphas_cumprod[-1])
        (torch.Size([100]), True)
    """

    betas: Tensor
    alphas_cumprod: Tensor

    def __init__(self, timesteps: int = 1000, kind: str = "cosine") -> None:
        super().__init__()
        betas = make_betas(timesteps, kind)
        self.timesteps, self.kind = int(timesteps), kind
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, 0).float(), persistent=False)

    def _ab(self, t: Tensor, like: Tensor) -> Tensor:
        if t.dtype != torch.int64 or t.dim() != 1 or t.shape[0] != like.shape[0]:
            raise ValueError(f"t must be a (B,) int64 tensor with B={like.shape[0]}, got {t.dtype} {tuple(t.shape)}")
        if bool((t < 0).any()) or bool((t >= self.timesteps).any()):
            raise ValueError(f"t must be in [0, {self.timesteps}), got min {int(t.min())} max {int(t.max())}")
        return self.alphas_cumprod.to(like.device)[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Forward process ``x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise``."""
        ab = self._ab(t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def predict_x0(self, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """Invert the forward process given predicted noise."""
        ab = self._ab(t, x_t)
        return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()

    def extra_repr(self) -> str:
        return f"timesteps={self.timesteps}, kind={self.kind!r}"


def _draw(x0: Tensor, schedule: NoiseSchedule, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
    """``(t, noise, x_t)`` with ``t ~ U{0..T-1}`` and ``noise ~ N(0, I)`` drawn on the CPU from ``generator``."""
    b = x0.shape[0]
    t = torch.randint(0, schedule.timesteps, (b,), generator=generator, device="cpu").to(x0.device)
    noise = torch.randn(x0.shape, generator=generator, device="cpu", dtype=x0.dtype).to(x0.device)
    return t, noise, schedule.q_sample(x0, t, noise)


def epsilon_loss(
    eps_fn: EpsFn, x0: Tensor, schedule: NoiseSchedule, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The noise-prediction objective for one batch, with ``t ~ U{0..T-1}`` and ``eps ~ N(0, I)``.

    Returns:
        ``(loss, x0_hat, t, x_t)``: the mean squared error, the implied clean estimate (for extra
        losses on the result), the timesteps and the noisy input.

    Examples:
        >>> s = NoiseSchedule(50)
        >>> loss, x0_hat, t, _ = epsilon_loss(lambda x, t: torch.zeros_like(x), torch.zeros(2, 3, 4, 4), s)
        >>> round(float(loss), 1) > 0, t.shape
        (True, torch.Size([2]))
    """
    t, noise, x_t = _draw(x0, schedule, generator)
    eps = eps_fn(x_t, t)
    if eps.shape != x0.shape:
        raise RuntimeError(f"eps_fn returned {tuple(eps.shape)}, expected {tuple(x0.shape)}")
    return torch.mean((eps - noise) ** 2), schedule.predict_x0(x_t, t, eps), t, x_t


def v_loss(
    v_fn: EpsFn, x0: Tensor, schedule: NoiseSchedule, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The velocity objective ``E || v - v_theta(x_t, t) ||^2``, ``v = sqrt(a_t) eps - sqrt(1 - a_t) x0``.

    The same draws as [`epsilon_loss`][semprior.models.diffusion.epsilon_loss] (one ``generator`` gives
    the same ``t`` and noise); the implied clean estimate is ``x0_hat = sqrt(a_t) x_t - sqrt(1 - a_t) v_hat``,
    whose error is at most the velocity's where ``a_t -> 0`` (the noise prediction's is amplified by
    ``1 / sqrt(a_t)`` there). The noise estimate for a sampler is ``sqrt(1 - a_t) x_t + sqrt(a_t) v_hat``.

    Returns:
        ``(loss, x0_hat, t, x_t)``, as ``epsilon_loss``.

    Examples:
        >>> s = NoiseSchedule(50)
        >>> loss, x0_hat, t, _ = v_loss(lambda x, t: torch.zeros_like(x), torch.zeros(2, 3, 4, 4), s)
        >>> bool(loss > 0), x0_hat.shape
        (True, torch.Size([2, 3, 4, 4]))
    """
    t, noise, x_t = _draw(x0, schedule, generator)
    v = v_fn(x_t, t)
    if v.shape != x0.shape:
        raise RuntimeError(f"v_fn returned {tuple(v.shape)}, expected {tuple(x0.shape)}")
    ab = schedule._ab(t, x0)
    target = ab.sqrt() * noise - (1 - ab).sqrt() * x0
    return torch.mean((v - target) ** 2), ab.sqrt() * x_t - (1 - ab).sqrt() * v, t, x_t


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """Evenly spaced, strictly decreasing timesteps from ``T - 1`` down to ``0``.

    Examples:
        >>> ddim_timesteps(1000, 5)
        [999, 749, 500, 250, 0]
    """
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in [1, timesteps={timesteps}], got {steps}")
    if steps == 1:
        return [timesteps - 1]
    # plain Python (no tensor -> list round trip, so torch.export can trace the sampler); the same
    # arithmetic as torch.linspace(T - 1, 0, steps, dtype=float64) (first half from the start, second
    # half from the end) and round-half-to-even as Tensor.round()
    start, delta = float(timesteps - 1), -float(timesteps - 1) / (steps - 1)
    half = steps // 2
    seq = [round(start + i * delta) if i < half else round(0.0 - (steps - 1 - i) * delta) for i in range(steps)]
    return list(dict.fromkeys(seq))


@torch.no_grad()
def ddim_sample(
    eps_fn: EpsFn,
    shape: tuple[int, ...],
    schedule: NoiseSchedule,
    steps: int = 10,
    *,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    clip: float | None = 1.0,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """DDIM sampling from pure noise in ``steps`` steps.

    Args:
        eps_fn: noise predictor ``eps_fn(x_t, t)``.
        shape: sample shape, e.g. ``(B, 3, H, W)``.
        schedule: the training schedule.
        steps: number of denoising steps.
        eta: ``0`` = deterministic DDIM, ``1`` = DDPM-like stochasticity.
        generator: a CPU generator for every random draw (initial noise and, with ``eta > 0``, step noise).
        device: where the sample lives.
        clip: clamp the predicted ``x0`` to ``[-clip, clip]`` at every step (``None`` = no clamp).
        dtype: floating dtype of the sample (the noise is drawn in float32, then cast, so a seeded
            generator gives the same draw in every dtype).

    Returns:
        The sample ``x0``.

    Shape:
        - output: ``shape``
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    ts = ddim_timesteps(schedule.timesteps, steps)
    ab = schedule.alphas_cumprod.to(device=device, dtype=dtype)
    x = torch.randn(shape, generator=generator, device="cpu").to(device=device, dtype=dtype)
    for i, t in enumerate(ts):
        tt = torch.full((shape[0],), t, dtype=torch.int64, device=device)
        eps = eps_fn(x, tt)
        a_t = ab[t]
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        if i == len(ts) - 1:
            x = x0
            break
        a_prev = ab[ts[i + 1]]
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).clamp_min(0).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp_min(0).sqrt() * eps
        if eta > 0:
            x = x + sigma * torch.randn(shape, generator=generator, device="cpu").to(device=device, dtype=dtype)
    return x
