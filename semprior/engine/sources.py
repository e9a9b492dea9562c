"""Named training data sources read in seeded, rank-sharded, resumable epoch order (used by the trainer).

Source ``i`` (in the schedule's order of first use) is read in epochs; the permutation of epoch
``e`` is drawn from ``(seed_i, e)`` with ``seed_i = seed + 1_000_033 * i`` (so the first source
keeps ``TrainConfig.seed`` itself), split across DDP ranks, and datasets with ``set_epoch`` are
told the epoch. Batch number ``n`` of a source is therefore fixed by ``(seed, i, n)``: a resumed
run restarts each source's iterator at the number of batches it had consumed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from semprior.models.phases import PhaseSchedule

__all__ = ["DataSources", "resolve_sources"]


class _EpochSampler(torch.utils.data.Sampler[int]):
    """Permutation of epoch ``e`` from ``seed + e``, split across ranks, optionally skipping a prefix."""

    def __init__(self, n: int, seed: int, epoch: int, rank: int, world: int, per_rank: int, skip: int = 0) -> None:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
        self.indices = perm[rank::world][:per_rank][skip:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a batch (tensor, dict, list or tuple, nested) to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class DataSources:
    """Map-style datasets by name, each batched with the same global ``batch_size``.

    Args:
        datasets: name -> dataset, in the schedule's order of first use.
        batch_size: the global batch; each of ``world`` processes takes ``batch_size / world``.
        seed: base seed of the data order.
        rank, world: this process and the number of processes.
        num_workers, pin_memory: DataLoader settings.
    """

    def __init__(
        self,
        datasets: Mapping[str, torch.utils.data.Dataset],
        batch_size: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if batch_size % world:
            raise ValueError(
                f"batch_size={batch_size} is the global batch and must divide evenly over {world} processes; "
                f"use a multiple of {world}"
            )
        self.datasets = dict(datasets)
        self.rank, self.world, self.seed = rank, world, seed
        self.rank_batch = batch_size // world
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.per_rank_batches: dict[str, int] = {}
        for name, data in self.datasets.items():
            n = len(data)  # type: ignore[arg-type]
            if n // batch_size < 1:
                which = "the dataset" if len(self.datasets) == 1 else f"data source {name!r}"
                raise ValueError(
                    f"{which} has {n} items, fewer than the global batch_size={batch_size}; "
                    "lower batch_size or give the dataset a larger length"
                )
            self.per_rank_batches[name] = n // batch_size

    def seed_of(self, name: str) -> int:
        return self.seed + 1_000_033 * list(self.datasets).index(name)

    def batches(self, name: str, start: int = 0) -> Iterator[Any]:
        """Endless batches of source ``name``, beginning with its batch number ``start``."""
        data, per_epoch, seed = self.datasets[name], self.per_rank_batches[name], self.seed_of(name)
        epoch, offset = divmod(start, per_epoch)
        while True:
            if hasattr(data, "set_epoch"):
                data.set_epoch(epoch)
            sampler = _EpochSampler(
                len(data),  # type: ignore[arg-type]  # map-style datasets (sized), checked in __init__
                seed,
                epoch,
                self.rank,
                self.world,
                per_epoch * self.rank_batch,
                skip=offset * self.rank_batch,
            )
            loader = torch.utils.data.DataLoader(
                data,
                batch_size=self.rank_batch,
                sampler=sampler,
                drop_last=True,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                generator=torch.Generator().manual_seed(seed * 100_003 + epoch),  # keeps the global RNG untouched
            )
            yield from loader
            epoch, offset = epoch + 1, 0


def resolve_sources(loss_fn: Any, train_data: Any) -> tuple[PhaseSchedule, dict[str, Any]]:
    """The trainer's ``(schedule, {source: dataset})``; a plain ``loss_fn`` is one phase over source ``"train"``."""
    if not isinstance(loss_fn, PhaseSchedule):
        if isinstance(train_data, Mapping):
            raise TypeError(
                "train_data is a mapping of named sources; pass a PhaseSchedule as loss_fn to say "
                "which phase reads which source (or pass one dataset)"
            )
        return PhaseSchedule.single(loss_fn), {"train": train_data}
    if not isinstance(train_data, Mapping):
        raise TypeError(
            f"a PhaseSchedule reads named sources {list(loss_fn.sources)}: pass train_data as {{name: dataset}}"
        )
    missing = [n for n in loss_fn.sources if n not in train_data]
    unused = sorted(set(train_data) - set(loss_fn.sources))
    if missing or unused:
        raise ValueError(
            f"the schedule's phases read sources {list(loss_fn.sources)}, train_data has "
            f"{sorted(train_data)} (missing {missing}, unused {unused}); give exactly those"
        )
    return loss_fn, {n: train_data[n] for n in loss_fn.sources}
