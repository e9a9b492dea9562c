"""SIGTERM as a flag the training loop reads between steps (used by
[`Trainer.fit`][semprior.engine.trainer.Trainer.fit])."""

from __future__ import annotations

import signal
import threading

import torch

__all__ = ["SigtermFlag"]


class SigtermFlag:
    """Turns SIGTERM into a flag the training loop reads between steps (never inside an update).

    Installed only in the main thread (Python's rule for signal handlers); elsewhere it is inert.
    Under DDP any rank's flag stops every rank at the same step."""

    def __init__(self) -> None:
        self.received = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.received = True

    def is_set(self, world: int, device: torch.device) -> bool:
        if world > 1:
            flag = torch.tensor([int(self.received)], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            self.received = bool(flag.item())
        return self.received

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def pass_on(self) -> None:
        """After the save: re-deliver SIGTERM to the handler that was there before (default: exit)."""
        if self._previous is not None:
            signal.raise_signal(signal.SIGTERM)
