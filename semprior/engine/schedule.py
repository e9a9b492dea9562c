"""Learning-rate schedule and the coarse-to-fine (progressive patch-size) schedule."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["PatchSchedule", "build_lr_scheduler"]


class PatchSchedule:
    """Coarse-to-fine training as a progressive schedule of training views.

    ``stages`` is a sequence of ``(start_step, patch_size)`` or ``(start_step, patch_size, scale)``
    entries with strictly increasing start steps, the first at step 0. From ``start_step`` on,
    every training batch is first resized by ``scale`` (``0 < scale <= 1``, antialiased; default 1)
    and then randomly cropped to ``patch_size`` (small patches first = coarse, then larger = finer
    context). ``patch_size`` 0 takes the **whole frame** (at ``scale``), trimmed to the model's
    ``required_multiple``: the model then sees whole scenes, which is what it meets at test time.
    Whole frames need a dataset that returns whole images (``data.patch_size: 0``). An empty
    schedule never crops.

    Examples:
        >>> s = PatchSchedule([(0, 64), (100, 128), (200, 0, 0.5)])
        >>> s.patch_size(0), s.patch_size(99), s.patch_size(100), s.view(250)
        (64, 64, 128, (0, 0.5))
    """

    def __init__(self, stages: Sequence[Sequence[float]] = ()) -> None:
        norm: list[tuple] = []
        for s in stages:
            s = tuple(s)
            if len(s) not in (2, 3):
                raise ValueError(
                    f"each patch stage must be (start_step, patch_size) or (start_step, patch_size, scale), got {s}"
                )
            if any(isinstance(v, bool) for v in s) or any(float(v) != int(v) for v in s[:2]):
                raise ValueError(f"a patch stage's start_step and patch_size are whole numbers, got {s}")
            start, patch = int(s[0]), int(s[1])
            if patch < 0:
                raise ValueError(f"patch size must be >= 1, or 0 for the whole frame, got {s}")
            if len(s) == 3:
                scale = float(s[2])
                if not 0 < scale <= 1:
                    raise ValueError(f"a patch stage's scale must be in (0, 1], got {s}")
                norm.append((start, patch, scale))
            else:
                norm.append((start, patch))
        if norm:
            if norm[0][0] != 0:
                raise ValueError(f"the first patch stage must start at step 0, got {norm[0]}")
            starts = [s[0] for s in norm]
            if any(b <= a for a, b in zip(starts, starts[1:])):
                raise ValueError(f"patch stage start steps must increase strictly, got {starts}")
        self.stages: list[tuple] = norm

    def view(self, step: int) -> tuple[int, float] | None:
        """``(patch_size, scale)`` of ``step`` (``patch_size`` 0 = whole frame), or ``None`` before any stage."""
        out = None
        for s in self.stages:
            if step >= s[0]:
                out = (s[1], s[2] if len(s) == 3 else 1.0)
        return out

    def patch_size(self, step: int) -> int | None:
        v = self.view(step)
        return None if v is None else v[0]

    @property
    def max_patch(self) -> int | None:
        return max((s[1] for s in self.stages), default=None)

    @property
    def whole_frames(self) -> bool:
        """Whether a stage takes whole frames (``patch_size`` 0)."""
        return any(s[1] == 0 for s in self.stages)

    def __bool__(self) -> bool:
        return bool(self.stages)

    def __repr__(self) -> str:
        return f"PatchSchedule({self.stages})"


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer,
    kind: str,
    total_steps: int,
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.0,
    restart_periods: Sequence[int] = (),
    restart_min_lrs: Sequence[float] = (),
) -> torch.optim.lr_scheduler.LambdaLR:
    """``"constant"``, ``"cosine"`` (to ``min_lr_ratio * lr``) or ``"cosine_restarts"``, with optional linear warm-up.

    ``"cosine_restarts"`` is BasicSR's ``CosineAnnealingRestartCyclicLR`` (Retinexformer's recipe):
    period ``i`` lasts ``restart_periods[i]`` steps and anneals from the base lr to the absolute
    ``restart_min_lrs[i]`` (which may be above the base lr, as in Retinexformer's first period).

    Examples:
        >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> sch = build_lr_scheduler(opt, "cosine", total_steps=10)
        >>> round(sch.get_last_lr()[0], 3)
        1.0
    """
    if kind not in ("constant", "cosine", "cosine_restarts"):
        raise ValueError(f"lr schedule must be 'constant', 'cosine' or 'cosine_restarts', got {kind!r}")
    if total_steps < 1 or warmup_steps < 0:
        raise ValueError(f"need total_steps >= 1 and warmup_steps >= 0, got {total_steps}, {warmup_steps}")
    periods, mins = [int(p) for p in restart_periods], [float(m) for m in restart_min_lrs]
    if kind == "cosine_restarts" and (not periods or len(periods) != len(mins) or min(periods) < 1):
        raise ValueError(
            "lr_schedule 'cosine_restarts' needs restart_periods (positive step counts) and restart_min_lrs of the "
            f"same length, got {periods} and {mins}"
        )
    base = [g["lr"] for g in optimizer.param_groups]

    def restart_factor(step: int) -> float:
        start = 0
        for i, (period, eta) in enumerate(zip(periods, mins)):
            if step < start + period or i == len(periods) - 1:  # past the last period: stay at its minimum
                t = min(1.0, (step - start) / period)
                return (eta + (base[0] - eta) * 0.5 * (1 + math.cos(math.pi * t))) / base[0]
            start += period
        raise AssertionError("unreachable")

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind == "constant":
            return 1.0
        if kind == "cosine_restarts":
            return restart_factor(step)
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
