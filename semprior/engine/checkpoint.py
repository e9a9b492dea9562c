"""Atomic checkpoints: write to a temporary file in the same folder, fsync, then ``os.replace``.

A crash while saving leaves either the old checkpoint or the new one, never a torn file.
Loading uses ``torch.load(weights_only=True)``: a checkpoint can hold tensors, numbers, strings,
lists, tuples and dicts only, and loading one never runs pickled code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from semprior._atomic import atomic_write, remove_stale_temps
from semprior._torch_io import safe_torch_load

__all__ = ["save_checkpoint", "load_checkpoint", "safe_torch_load", "capture_rng_state", "restore_rng_state"]


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
