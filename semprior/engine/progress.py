"""What the trainer prints while it runs: a tqdm bar, or one console line per log interval."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """A progress bar over ``total`` steps (``enabled`` on the main process), else a stderr line per logged step.

    The bar shows the running loss of each phase (an exponential average, factor 0.9) and the learning rate.
    """

    def __init__(self, total: int, initial: int, enabled: bool, main: bool, multi: bool) -> None:
        self.total, self.main, self.multi = total, main, multi
        self.running: dict[str, float] = {}  # running loss per phase, for the bar
        self.bar = None
        if enabled and main:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc="train", unit="it", dynamic_ncols=True)

    def logged(self, step: int, prefix: str, loss: float, terms: dict[str, float], lr: float, t0: float) -> None:
        """A logged step: without a bar, one console line (step, loss, terms, lr, seconds since ``t0``)."""
        if self.bar is None and self.main:
            extra = " ".join(f"{k} {v:.4g}" for k, v in terms.items())
            print(
                f"step {step}/{self.total} {prefix}loss {loss:.4g} {extra} lr {lr:.2e} {time.perf_counter() - t0:.0f}s",
                file=sys.stderr,
                flush=True,
            )

    def update(self, phase: str, loss: float, lr: float) -> None:
        """One step done: the running loss of ``phase`` moves, the bar advances."""
        run = self.running
        run[phase] = 0.9 * run[phase] + 0.1 * loss if phase in run else loss
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(
                {**{(k if self.multi else "loss"): f"{v:.4g}" for k, v in run.items()}, "lr": f"{lr:.2e}"}
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
