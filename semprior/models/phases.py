"""Multi-source alternating schedules for [`Trainer`][semprior.engine.trainer.Trainer]:
[`Phase`][semprior.models.phases.Phase] and [`PhaseSchedule`][semprior.models.phases.PhaseSchedule].

A *phase* is one kind of optimisation step: which named data source its batches come from,
which loss it computes, and which parameters it updates. A schedule repeats its phases in order,
``phase.steps`` consecutive steps each, so the phase of step ``s`` is a pure function of ``s``.
Everything else follows from that: the number of batches already drawn from each source (the
position of its data iterator after a resume), the log cadence of each phase, and the checks on
resume. A plain ``Trainer(model, loss_fn, dataset)`` is the one-phase schedule
``PhaseSchedule.single(loss_fn)`` over the source ``"train"``.

SLLEN's alternation (an enhancement step on paired images, then a segmentation step on a
segmentation data set, each updating its own parameter groups) is
[`semprior.models.sllen.sllen_phases`][semprior.models.sllen.sllen_phases]::

    schedule = PhaseSchedule((
        Phase("lle", lle_loss, source="train", params=lambda m: [*m.encoder_parameters(), *m.lle_parameters()]),
        Phase("seg", seg_loss, source="segmentation", params=lambda m: [*m.encoder_parameters(), *m.seg_parameters()]),
    ))
    Trainer(model, schedule, {"train": pairs, "segmentation": masks}, config).fit()

The module sits in ``semprior.models``, below the engine, because a model's registry entry names
its schedule; ``semprior.engine`` re-exports ``Phase`` and ``PhaseSchedule``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from torch import Tensor, nn

__all__ = ["Phase", "PhaseSchedule"]

LossFn = Callable[[nn.Module, Any], "tuple[Tensor, Mapping[str, Tensor | float]]"]


@dataclass(frozen=True)
class Phase:
    """One kind of optimisation step of a [`PhaseSchedule`][semprior.models.phases.PhaseSchedule].

    Attributes:
        name: shown in ``log.jsonl`` (``"phase"``) and prefixed to the curves (``"lle/loss"``).
        loss_fn: ``loss_fn(model, batch) -> (total, terms)``; call ``model(...)`` (it may be a
            ``DistributedDataParallel`` wrapper), route other outputs through ``forward``'s arguments.
        source: name of the data source the batches come from (a key of the trainer's ``train_data``).
        params: ``params(model) -> parameters this phase updates`` (called once on the unwrapped
            model); every other trainable parameter has ``requires_grad=False`` during the step
            (no gradient, no update, Adam moments untouched). ``None``: every trainable parameter.
        steps: consecutive steps of this phase in each cycle of the schedule.
        crop: apply ``TrainConfig.patch_stages`` (coarse-to-fine crops of every ``(B, C, H, W)``
            tensor of the batch) to this phase's batches.

    Examples:
        >>> Phase("seg", lambda m, b: (m(b).mean(), {}), source="segmentation", steps=2).steps
        2
    """

    name: str
    loss_fn: LossFn
    source: str = "train"
    params: Callable[[nn.Module], Iterable[nn.Parameter]] | None = None
    steps: int = 1
    crop: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"Phase.name must be a non-empty string without '/', got {self.name!r}")
        if not callable(self.loss_fn):
            raise TypeError(f"Phase {self.name!r}: loss_fn must be callable loss_fn(model, batch) -> (total, terms)")
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"Phase {self.name!r}: source must name a data source, got {self.source!r}")
        if int(self.steps) < 1:
            raise ValueError(f"Phase {self.name!r}: steps must be >= 1, got {self.steps}")


@dataclass(frozen=True)
class PhaseSchedule:
    """Phases repeated in order, ``phase.steps`` consecutive steps each.

    Examples:
        >>> loss = lambda m, b: (m(b).mean(), {})
        >>> s = PhaseSchedule((Phase("a", loss, steps=2), Phase("b", loss, source="other")))
        >>> " ".join(s.phase(i).name for i in range(6))
        'a a b a a b'
        >>> s.count(5, source="train"), s.count(5, phase="b"), s.sources
        (4, 1, ('train', 'other'))
    """

    phases: tuple[Phase, ...]

    def __post_init__(self) -> None:
        phases = tuple(self.phases)
        object.__setattr__(self, "phases", phases)
        if not phases or not all(isinstance(p, Phase) for p in phases):
            raise ValueError("PhaseSchedule needs one or more Phase objects")
        names = [p.name for p in phases]
        if len(set(names)) != len(names):
            raise ValueError(f"PhaseSchedule phase names must be unique, got {names}")

    @classmethod
    def single(cls, loss_fn: LossFn, source: str = "train") -> PhaseSchedule:
        """One phase named ``"train"``: every step, every trainable parameter (the plain trainer)."""
        return cls((Phase("train", loss_fn, source=source),))

    @property
    def cycle(self) -> int:
        """Steps in one pass over the phases."""
        return sum(p.steps for p in self.phases)

    @property
    def sources(self) -> tuple[str, ...]:
        """The data sources used, in order of first use (the first one keeps ``TrainConfig.seed`` as it is)."""
        return tuple(dict.fromkeys(p.source for p in self.phases))

    @property
    def restricts_parameters(self) -> bool:
        """Whether some step leaves some trainable parameter without a gradient (DDP must allow unused ones)."""
        return len(self.phases) > 1 or any(p.params is not None for p in self.phases)

    def phase(self, step: int) -> Phase:
        """The phase of (0-based) step ``step``."""
        r = step % self.cycle
        for p in self.phases:
            if r < p.steps:
                return p
            r -= p.steps
        raise AssertionError("unreachable")

    def count(self, step: int, *, source: str | None = None, phase: str | None = None) -> int:
        """How many of the steps ``0 .. step-1`` use ``source`` (or belong to ``phase``).

        After a resume at step ``s``, ``count(s, source=name)`` batches of ``name`` were consumed.
        """
        if (source is None) == (phase is None):
            raise ValueError("give exactly one of source= or phase=")
        hit = [(p.source == source) if source is not None else (p.name == phase) for p in self.phases]
        full, rest = divmod(step, self.cycle)
        n = full * sum(p.steps for p, h in zip(self.phases, hit) if h)
        for p, h in zip(self.phases, hit):
            take = min(rest, p.steps)
            n += take if h else 0
            rest -= take
        return n

    def with_steps(self, steps: Mapping[str, int]) -> PhaseSchedule:
        """The same phases with new consecutive-step counts, e.g. ``{"lle": 2, "seg": 1}``."""
        unknown = sorted(set(steps) - {p.name for p in self.phases})
        if unknown:
            raise ValueError(f"unknown phase(s) {unknown}; this schedule's phases are {[p.name for p in self.phases]}")
        return PhaseSchedule(tuple(replace(p, steps=int(steps.get(p.name, p.steps))) for p in self.phases))

    def describe(self) -> list[dict[str, Any]]:
        """Plain data a checkpoint records, compared on resume: name, source and steps of each phase."""
        return [{"name": p.name, "source": p.source, "steps": int(p.steps)} for p in self.phases]

    def __repr__(self) -> str:
        return "PhaseSchedule(" + ", ".join(f"{p.name}@{p.source}x{p.steps}" for p in self.phases) + ")"


def frozen_per_phase(
    schedule: PhaseSchedule, model: nn.Module, trainable: list[nn.Parameter]
) -> dict[str, list[nn.Parameter]]:
    """Phase name -> the trainable parameters it must leave alone (checked: each phase updates some,
    and only trainable parameters of ``model``)."""
    known = {id(p) for p in trainable}
    out: dict[str, list[nn.Parameter]] = {}
    for ph in schedule.phases:
        if ph.params is None:
            out[ph.name] = []
            continue
        chosen = {id(p) for p in ph.params(model)}
        if not chosen:
            raise ValueError(f"phase {ph.name!r}: params(model) returned no parameters; it would update nothing")
        if not chosen <= known:
            raise ValueError(
                f"phase {ph.name!r}: params(model) returned {len(chosen - known)} parameter(s) that are not trainable "
                "parameters of the model (frozen, or from another module)"
            )
        out[ph.name] = [p for p in trainable if id(p) not in chosen]
    return out


@contextmanager
def frozen(params: list[nn.Parameter]) -> Iterator[None]:
    """``requires_grad=False`` on ``params`` for the duration (restored to ``True`` afterwards, also on errors)."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
