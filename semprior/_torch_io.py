"""Reading ``.pt`` files safely: ``torch.load(weights_only=True)`` with one-line errors.

The one reader behind checkpoints ([`semprior.engine.checkpoint`][semprior.engine.checkpoint]),
weight files ([`semprior.weights`][semprior.weights]) and the model loaders
([`semprior.models.io`][semprior.models.io]); it lives below all of them.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

__all__ = ["safe_torch_load"]


def _one_line(text: str, limit: int = 200) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def safe_torch_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors that say what is wrong.

    A file holding pickled Python objects (anything beyond tensors, numbers, strings, lists,
    tuples and dicts) is refused before any of its code can run; a truncated or foreign file
    gives an error naming it.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = (
            f"it references {found.group(1)!r}" if found else _one_line(str(exc).split("WeightsUnpickler error:")[-1])
        )
        raise RuntimeError(
            f"refusing to load checkpoint {path} with weights_only=True: it holds pickled Python objects, not only "
            f"tensors ({what}), and unpickling them could run code; re-save only the state dict "
            "(torch.save(model.state_dict(), path)) from a copy you trust"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        raise RuntimeError(
            f"could not load checkpoint {path} with weights_only=True ({type(exc).__name__}: {_one_line(str(exc))}); "
            "the file is truncated or corrupt, or not a PyTorch checkpoint"
        ) from exc
