"""Read a finished (or paused) training run folder: its ``log.jsonl`` and its candidate weights.

A run folder of ``semprior train`` holds ``log.jsonl`` (one JSON record per logged step and per
validation), ``last.pt`` (raw weights and, with ``train.ema_decay``, their average) and ``best.pt``
(the trainer's choice on validation). Studies that compare runs read them through these functions,
so the trainer's log schema is known in one place:

    >>> log = read_run_log("runs/deepspg")            # doctest: +SKIP
    >>> log.step, round(log.cpu_hours, 2), log.val[-1]["psnr"]  # doctest: +SKIP
    >>> best = score_candidates("runs/deepspg", validate)[0]   # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Candidate", "RunLog", "checkpoint_candidates", "read_run_log", "score_candidates"]


@dataclass(frozen=True)
class RunLog:
    """What a run's ``log.jsonl`` says.

    ``step`` is the last logged training step; ``hours`` and ``cpu_hours`` are summed over the
    segments of a resumed run (the trainer's clocks restart at 0 on ``--resume``); ``cpu_exact`` is
    false when a segment logged no CPU time (its wall time counts instead: an upper bound).
    ``val`` holds one dict per validation: ``{"step": ..., "psnr": ..., "ssim": ..., ...}`` (the
    ``val/`` prefix removed); ``loss`` the ``(step, loss)`` pairs of the training records.
    """

    step: int = 0
    hours: float = 0.0
    cpu_hours: float = 0.0
    cpu_exact: bool = True
    val: list[dict[str, float]] = field(default_factory=list)
    loss: list[tuple[int, float]] = field(default_factory=list)


def read_run_log(folder: str | Path) -> RunLog:
    """Read ``folder/log.jsonl``; a last line cut off mid-write (a killed run) is skipped."""
    path = Path(folder).expanduser() / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: give a run folder of `semprior train` (it writes log.jsonl)")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]
    train = [r for r in records if "loss" in r]
    wall = cpu = last = last_cpu = 0.0
    cpu_exact = True
    for r in train:  # "seconds" and "cpu_seconds" restart at 0 when a run is resumed
        if r["seconds"] < last:
            wall, cpu = wall + last, cpu + last_cpu
        last, last_cpu = r["seconds"], r.get("cpu_seconds", r["seconds"])
        cpu_exact = cpu_exact and "cpu_seconds" in r
    val = [
        {"step": r["step"], **{k[4:]: v for k, v in r.items() if k.startswith("val/")}} for r in records if "val/psnr" in r
    ]
    return RunLog(
        step=int(train[-1]["step"]) if train else 0,
        hours=(wall + last) / 3600,
        cpu_hours=(cpu + last_cpu) / 3600,
        cpu_exact=cpu_exact,
        val=val,
        loss=[(int(r["step"]), float(r["loss"])) for r in train],
    )


@dataclass(frozen=True)
class Candidate:
    """One set of weights a run can be judged by: ``path`` read with ``param_key`` ``key``
    (``"model"`` raw, ``"ema"`` the weight average, ``None`` the file's own choice)."""

    weights: str
    path: Path
    key: str | None
    step: int


def checkpoint_candidates(folder: str | Path) -> list[Candidate]:
    """A run's candidate weights: ``last.pt`` raw and weight-averaged (when the run kept an average),
    and the trainer's ``best.pt`` (when present)."""
    from semprior.engine.checkpoint import load_checkpoint

    folder = Path(folder).expanduser()
    if not (folder / "last.pt").is_file():
        raise FileNotFoundError(f"{folder / 'last.pt'} not found: give a run folder of `semprior train`")
    last = load_checkpoint(folder / "last.pt")
    step = int(last["step"])
    out = [Candidate("last.pt raw weights", folder / "last.pt", "model", step)]
    if "ema" in last:
        out.append(Candidate("last.pt weight average", folder / "last.pt", "ema", step))
    if (folder / "best.pt").is_file():
        best = load_checkpoint(folder / "best.pt")
        out.append(Candidate("best.pt (trainer's choice)", folder / "best.pt", None, int(best["step"])))
    return out


def score_candidates(
    folder: str | Path, validate: Callable[..., Mapping[str, float]], verbose: bool = False
) -> list[dict]:
    """Every candidate of a run scored by ``validate(model)`` (e.g. the trainer's ``make_validate``
    on held-out pairs), best PSNR first. Each row is the candidate's fields plus the scores."""
    import torch

    import semprior

    rows = []
    for c in checkpoint_candidates(folder):
        with torch.no_grad():
            score = validate(semprior.load_model(c.path, param_key=c.key))
        rows.append({**c.__dict__, **{k: float(v) for k, v in score.items()}})
        if verbose:
            print(
                f"{Path(folder).name:15s} {c.weights:28s} step {c.step:5d}: "
                f"val {score['psnr']:.2f} dB / {score['ssim']:.3f}",
                flush=True,
            )
    return sorted(rows, key=lambda r: -r["psnr"])
