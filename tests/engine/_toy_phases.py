"""A two-task toy (shared trunk, enhancement head, classification head) for the alternating-schedule tests.

Kept importable by spawned DDP workers.
"""

import torch
import torch.nn.functional as F
from torch import nn

from semprior.engine import Phase, PhaseSchedule


class TwoTask(nn.Module):
    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(dropout))
        self.enh = nn.Conv2d(8, 3, 3, padding=1)
        self.cls = nn.Conv2d(8, 2, 1)

    def forward(self, x, task: str = "enhance"):
        # each task's output also reads the other head (as SLLEN's enhancement reads the segmentation
        # branch's features), so only freezing keeps a phase off the other head
        f = self.trunk(x)
        e, c = self.enh(f), self.cls(f)
        if task == "enhance":
            return x + e + 0.1 * c.mean(1, keepdim=True)
        return c + 0.1 * e.mean(1, keepdim=True)


class ToyMasks(torch.utils.data.Dataset):
    """Images whose class is "brighter than 0.5"; the content changes with the epoch (so set_epoch matters)."""

    def __init__(self, n: int = 10, size: int = 8) -> None:
        g = torch.Generator().manual_seed(321)
        self.base = torch.rand(n, 3, size, size, generator=g)
        self.epoch = 0
        self.epochs_seen: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.epochs_seen.append(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        img = (self.base[i] * (1 + 0.05 * self.epoch)).clamp(0, 1)
        return {"image": img, "mask": (img.mean(0) > 0.5).long()}


def enh_loss(model, batch):
    mse = ((model(batch["low"]) - batch["high"]) ** 2).mean()
    return mse, {"mse": mse.detach()}


def cls_loss(model, batch):
    ce = F.cross_entropy(model(batch["image"], task="classify"), batch["mask"])
    return ce, {"ce": ce.detach()}


def schedule(enh_steps: int = 2, cls_steps: int = 1) -> PhaseSchedule:
    return PhaseSchedule(
        (
            Phase(
                "enh",
                enh_loss,
                source="train",
                steps=enh_steps,
                params=lambda m: [*m.trunk.parameters(), *m.enh.parameters()],
            ),
            Phase(
                "cls",
                cls_loss,
                source="masks",
                steps=cls_steps,
                crop=False,
                params=lambda m: [*m.trunk.parameters(), *m.cls.parameters()],
            ),
        )
    )


def ddp_phases_worker(rank: int, world: int, init_file: str, out_dir: str, steps: int) -> None:
    """One DDP replica on the CPU (gloo) training the two-task toy on the alternating schedule."""
    import torch.distributed as dist
    from _toy import ToyPairs  # importable here: a spawned process starts with its parent's sys.path

    from semprior.engine import TrainConfig, Trainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        cfg = TrainConfig(steps=steps, batch_size=4, lr=1e-2, progress=False)
        trainer = Trainer(TwoTask(dropout=0.0), schedule(), {"train": ToyPairs(), "masks": ToyMasks()}, cfg)
        assert trainer.world == world and isinstance(trainer.net, nn.parallel.DistributedDataParallel)
        trainer.fit()
        torch.save(trainer.model.state_dict(), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
