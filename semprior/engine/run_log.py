"""A run's log, written and read: ``log.jsonl`` (one JSON record a line), TensorBoard scalars, the trim after a resume.

[`RunLogWriter`][semprior.engine.run_log.RunLogWriter] is the trainer's (rank 0 only; a
[`Trainer`][semprior.engine.trainer.Trainer] without ``out_dir`` logs nothing).
[`read_run_log`][semprior.engine.run_log.read_run_log] and the candidate functions read a finished (or
paused) run folder, so the log's schema is known in this one file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semprior.engine import distributed as D

__all__ = ["Candidate", "RunLog", "RunLogWriter", "checkpoint_candidates", "read_run_log", "score_candidates"]


class RunLogWriter:
    """``log.jsonl`` (when ``log_file``) and TensorBoard scalars (when ``tensorboard``) under ``out_dir``.

    Args:
        out_dir: the run folder (``None``: nothing is written).
        log_file: append each record to ``out_dir/log.jsonl``.
        tensorboard: write each record's numbers under ``out_dir/tensorboard`` (the ``tensorboard``
            extra is checked here, so a missing package stops the run before training).
    """

    def __init__(self, out_dir: Path | None, log_file: bool = True, tensorboard: bool = False) -> None:
        self.out_dir, self.log_file, self.tensorboard = out_dir, log_file, tensorboard and out_dir is not None
        self._tb: Any = None
        if self.tensorboard:  # fail before training, not after it
            from semprior._optional import require

            require("tensorboard", extra="tensorboard", purpose="TrainConfig.tensorboard (or set tensorboard: false)")

    def write(self, record: dict[str, Any], multi_phase: bool = False) -> None:
        """Log ``record`` (``{"step", "phase"?, name: number, ...}``); ``multi_phase`` tags scalars by phase."""
        if self.out_dir is None or not D.is_main():
            return
        if self.tensorboard:
            self._scalars(record, multi_phase, self.out_dir)
        if self.log_file:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _scalars(self, record: dict[str, Any], multi_phase: bool, out_dir: Path) -> None:
        """The record's numbers as TensorBoard scalars (``train/loss``, ``train/<term>``, ``val/psnr``, ...)."""
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(out_dir / "tensorboard"))
        phase = record.get("phase")
        for k, v in record.items():
            if k in ("step", "phase") or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            tag = k if k.startswith("val/") else f"{phase if phase and multi_phase else 'train'}/{k}"
            self._tb.add_scalar(tag, v, record["step"])
        self._tb.flush()

    def trim(self, step: int) -> None:
        """After a resume at ``step``, move log lines past it (they are recomputed exactly) to ``log.superseded.jsonl``.

        ``log.jsonl`` then reads as one uninterrupted run; nothing logged is ever deleted.
        """
        path = self.out_dir / "log.jsonl" if self.out_dir is not None else None
        if path is None or not path.is_file() or not D.is_main():
            return
        from semprior._atomic import atomic_write_text

        keep: list[str] = []
        moved: list[str] = []
        for ln in path.read_text().splitlines():
            try:
                rec = json.loads(ln)
            except json.JSONDecodeError:  # a line torn by a kill mid-append
                rec = None
            (keep if isinstance(rec, dict) and rec.get("step", 0) <= step else moved).append(ln)
        if not moved:
            return
        with open(path.parent / "log.superseded.jsonl", "a") as f:
            f.write("".join(ln + "\n" for ln in moved))
        atomic_write_text(path, "".join(ln + "\n" for ln in keep))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


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
        {"step": r["step"], **{k[4:]: v for k, v in r.items() if k.startswith("val/")}}
        for r in records
        if "val/psnr" in r
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

    from semprior.models.io import load_model

    rows = []
    for c in checkpoint_candidates(folder):
        with torch.no_grad():
            score = validate(load_model(c.path, param_key=c.key))
        rows.append({**c.__dict__, **{k: float(v) for k, v in score.items()}})
        if verbose:
            print(
                f"{Path(folder).name:15s} {c.weights:28s} step {c.step:5d}: "
                f"val {score['psnr']:.2f} dB / {score['ssim']:.3f}",
                flush=True,
            )
    return sorted(rows, key=lambda r: -r["psnr"])
