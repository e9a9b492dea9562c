"""A run's log: ``log.jsonl`` (one JSON record a line), TensorBoard scalars, and the trim after a resume.

Written by rank 0 only; a [`Trainer`][semprior.engine.trainer.Trainer] without ``out_dir`` logs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from semprior.engine import distributed as D

__all__ = ["RunLog"]


class RunLog:
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
            self._scalars(record, multi_phase)
        if self.log_file:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _scalars(self, record: dict[str, Any], multi_phase: bool) -> None:
        """The record's numbers as TensorBoard scalars (``train/loss``, ``train/<term>``, ``val/psnr``, ...)."""
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
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

        keep, moved = [], []
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
