"""Atomic checkpoints: write to a temporary file in the same folder, fsync, then ``os.replace``.

A crash while saving leaves either the old checkpoint or the new one, never a torn file.
Loading uses ``torch.load(weights_only=True)``: a checkpoint can hold tensors, numbers, strings,
lists, tuples and dicts only, and loading one never runs pickled code.

The trainer's own checkpoints (``last.pt``, ``best.pt``) are built and read back here too:
[`trainer_state`][semprior.engine.checkpoint.trainer_state] is what ``last.pt`` holds,
[`restore_trainer_state`][semprior.engine.checkpoint.restore_trainer_state] checks a checkpoint
against the run and puts it back, [`best_state`][semprior.engine.checkpoint.best_state] is what
``best.pt`` holds. [`Trainer`][semprior.engine.trainer.Trainer] calls them from ``state_dict``,
``load_state_dict`` and validation.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import Tensor, nn

from semprior._atomic import atomic_write, remove_stale_temps
from semprior._torch_io import safe_torch_load
from semprior.engine.train_config import TrainConfig
from semprior.models.phases import PhaseSchedule
from semprior.models.protocol import unwrap

__all__ = [
    "TRAINER_FORMAT",
    "TrainerParts",
    "best_state",
    "capture_rng_state",
    "check_extra",
    "load_checkpoint",
    "restore_rng_state",
    "restore_trainer_state",
    "safe_torch_load",
    "save_checkpoint",
    "trainer_state",
]

#: the ``format`` entry of a trainer checkpoint (``last.pt``)
TRAINER_FORMAT = "semprior-trainer-v1"
#: the entries a trainer checkpoint holds itself; ``extra`` entries take other keys
TRAINER_KEYS = frozenset(
    {
        "format",
        "model",
        "optimizer",
        "scheduler",
        "step",
        "best",
        "bad_evals",
        "curves",
        "rng",
        "train_config",
        "phases",
    }
)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temp file + fsync + ``os.replace`` + directory fsync).

    Uses the package's one atomic writer, `semprior._atomic.atomic_write`. Temporary files
    left in the folder by an earlier writer that was killed are removed first
    (`semprior._atomic.remove_stale_temps`).

    Examples:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> p = save_checkpoint({"step": 3}, os.path.join(d, "last.pt"))
        >>> load_checkpoint(p)["step"]
        3
    """
    path = Path(path)
    remove_stale_temps(path.parent)
    with atomic_write(path) as f:
        torch.save(state, f)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by [`save_checkpoint`][semprior.engine.checkpoint.save_checkpoint] with
    ``weights_only=True`` (see `safe_torch_load`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = safe_torch_load(path, map_location)
    if not isinstance(state, dict):
        raise RuntimeError(
            f"checkpoint {path} does not hold a dict (got {type(state).__name__}); not a semprior checkpoint"
        )
    return state


def capture_rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA), NumPy and Python RNG states in a ``weights_only``-loadable form."""
    # the legacy global generator is always MT19937: its state is the legacy tuple, never the dict form
    np_state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class TrainerParts(Protocol):
    """What a trainer checkpoint saves and restores of a [`Trainer`][semprior.engine.trainer.Trainer]: the parts
    (read), the counters and the weight average (read and restored)."""

    step: int
    best: float | None
    bad_evals: int
    curves: dict[str, list[tuple[int, float]]]
    ema: dict[str, Tensor] | None

    @property
    def net(self) -> nn.Module: ...
    @property
    def optimizer(self) -> torch.optim.Optimizer: ...
    @property
    def scheduler(self) -> torch.optim.lr_scheduler.LRScheduler: ...
    @property
    def scaler(self) -> torch.amp.GradScaler | None: ...
    @property
    def config(self) -> TrainConfig: ...
    @property
    def schedule(self) -> PhaseSchedule: ...
    @property
    def extra(self) -> dict[str, Any]: ...
    @property
    def device(self) -> torch.device: ...


def check_extra(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """``extra`` checkpoint entries as a dict; a key that clashes with the trainer's own entries is refused."""
    out = dict(extra or {})
    clash = set(out) & TRAINER_KEYS
    if clash:
        raise ValueError(f"extra checkpoint keys {sorted(clash)} clash with the trainer's own entries; rename them")
    return out


def trainer_state(t: TrainerParts) -> dict[str, Any]:
    """The full training state of ``t`` (``last.pt``): weights, optimizer, schedule, counters, RNG, config, extra."""
    return {
        "format": TRAINER_FORMAT,
        "model": unwrap(t.net).state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict(),
        "step": t.step,
        "best": t.best,
        "bad_evals": t.bad_evals,
        "curves": {k: [list(p) for p in v] for k, v in t.curves.items()},
        "rng": capture_rng_state(),
        "train_config": asdict(t.config),
        "phases": t.schedule.describe(),
        **({"ema": t.ema} if t.ema is not None else {}),
        **({"scaler": t.scaler.state_dict()} if t.scaler is not None else {}),
        **t.extra,
    }


def best_state(t: TrainerParts, weights: Mapping[str, Tensor], monitor: str, score: float) -> dict[str, Any]:
    """What ``best.pt`` holds: the validated ``weights``, the step, the ``monitor`` score and ``extra``."""
    return {"model": weights, "step": t.step, monitor: score, "ema": t.ema is not None, **t.extra}


def restore_trainer_state(t: TrainerParts, state: dict[str, Any], allow_changed: bool = False) -> None:
    """Put a [`trainer_state`][semprior.engine.checkpoint.trainer_state] back into ``t``; a differing run is refused.

    The checkpoint's ``train_config`` and the ``extra`` entries both sides have (model config,
    prior, data config, ...) are compared with ``t``'s; fields that change the weights or the
    data order and differ are listed in a
    [`RunFolderError`][semprior.engine.run_folder.RunFolderError] unless ``allow_changed``.
    """
    from semprior.engine.run_folder import INCIDENTAL_FIELDS, RunFolderError, changed_fields

    if state.get("format") != TRAINER_FORMAT:
        raise ValueError(f"not a semprior trainer checkpoint (missing format {TRAINER_FORMAT!r})")
    saved = state.get("phases", [{"name": "train", "source": "train", "steps": 1}])  # older checkpoints: one phase
    if saved != t.schedule.describe():
        raise ValueError(
            f"the checkpoint was trained with phases {saved}, this trainer has "
            f"{t.schedule.describe()}; resume with the same phases, sources and steps"
        )
    if t.ema is not None and "ema" not in state:
        raise ValueError(
            "this run averages weights (ema_decay > 0) but the checkpoint has no 'ema'; "
            "resume with the ema_decay it was trained with"
        )
    recorded = {"train": state.get("train_config", {}), **{k: state[k] for k in t.extra if k in state}}
    now = {"train": asdict(t.config), **t.extra}
    changed = changed_fields(recorded, now, ignore=INCIDENTAL_FIELDS)
    if changed and not allow_changed:
        raise RunFolderError(
            f"resuming changes {len(changed)} field(s) of the run: {'; '.join(changed)}; resume with the recorded "
            "values, or accept the change with --allow-changed (Python: allow_changed=True)"
        )
    unwrap(t.net).load_state_dict(state["model"], strict=True)
    t.optimizer.load_state_dict(state["optimizer"])
    t.scheduler.load_state_dict(state["scheduler"])
    t.step = int(state["step"])
    t.best = state["best"]
    t.bad_evals = int(state["bad_evals"])
    t.curves = {k: [(int(p[0]), float(p[1])) for p in v] for k, v in state["curves"].items()}
    if t.ema is not None:
        t.ema = {k: v.to(t.device) for k, v in state["ema"].items()}
    if t.scaler is not None and "scaler" in state:
        t.scaler.load_state_dict(state["scaler"])
    restore_rng_state(state["rng"])
