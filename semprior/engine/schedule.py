"""Learning-rate schedule and the coarse-to-fine (progressive patch-size) schedule."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["PatchSchedule", "build_lr_scheduler"]


class PatchSchedule:
    """Coarse-to-fine training as a progressive patch-size schedule.

    ``stages`` is a sequence of ``(start_step, patch_size)`` pairs with strictly increasing start
    steps, the first at step 0: from ``start_step`` on, training batches are randomly cropped to
    ``patch_size`` (small patches first = coarse, then larger = finer context). An empty schedule
    never crops.

    Examples:
        >>> s = PatchSchedule([(0, 64), (100, 128)])
        >>> s.patch_size(0), s.patch_size(99), s.patch_size(100)
        (64, 64, 128)
    """

    def __init__(self, stages: Sequence[Sequence[int]] = ()) -> None:
        stages = [tuple(int(v) for v in s) for s in stages]
        for s in stages:
            if len(s) != 2:
                raise ValueError(f"each patch stage must be (start_step, patch_size), got {s}")
            if s[1] < 1:
                raise ValueError(f"patch size must be >= 1, got {s}")
        if stages:
            if stages[0][0] != 0:
                raise ValueError(f"the first patch stage must start at step 0, got {stages[0]}")
            starts = [s[0] for s in stages]
            if any(b <= a for a, b in zip(starts, starts[1:])):
                raise ValueError(f"patch stage start steps must increase strictly, got {starts}")
        self.stages: list[tuple[int, int]] = stages  # type: ignore[assignment]

    def patch_size(self, step: int) -> int | None:
        size = None
        for start, p in self.stages:
            if step >= start:
                size = p
        return size

    @property
    def max_patch(self) -> int | None:
        return max((p for _, p in self.stages), default=None)

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
    if kind == "cosine_restarts":
        if not periods or len(periods) != len(mins) or min(periods) < 1:
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
