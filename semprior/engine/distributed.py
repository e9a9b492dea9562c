"""Multi-process training helpers (``torchrun`` / ``torch.multiprocessing``; gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["init_distributed", "is_distributed", "rank", "world_size", "is_main", "barrier", "cleanup"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def init_distributed(backend: str | None = None) -> bool:
    """Initialise the default process group from ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``, ...).

    Returns ``False`` (and does nothing) when not launched by ``torchrun``. ``backend`` defaults to
    ``nccl`` when CUDA is available and ``gloo`` otherwise.
    """
    if is_distributed():
        return True
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if int(os.environ["WORLD_SIZE"]) <= 1:
        return False
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend=backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return True


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()
