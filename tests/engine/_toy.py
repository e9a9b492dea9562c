"""A tiny model and dataset shared by the engine tests (kept importable by spawned DDP workers)."""

import torch
from torch import nn


class ToyEnhancer(nn.Module):
    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(dropout), nn.Conv2d(8, 3, 3, padding=1)
        )

    def forward(self, x):
        return x + self.body(x)


class ToyPairs(torch.utils.data.Dataset):
    def __init__(self, n: int = 16, size: int = 12) -> None:
        g = torch.Generator().manual_seed(123)
        self.high = torch.rand(n, 3, size, size, generator=g)
        self.epochs_seen: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs_seen.append(epoch)

    def __len__(self) -> int:
        return len(self.high)

    def __getitem__(self, i):
        return {"low": self.high[i] * 0.3, "high": self.high[i], "name": str(i)}


def toy_loss(model, batch):
    out = model(batch["low"])
    mse = ((out - batch["high"]) ** 2).mean()
    return mse, {"mse": mse.detach()}


def ddp_worker(rank: int, world: int, init_file: str, out_dir: str, steps: int) -> None:
    """One DDP replica on the CPU (gloo): train the toy model and save its weights."""
    import torch.distributed as dist

    from semprior.engine import TrainConfig, Trainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        cfg = TrainConfig(steps=steps, batch_size=4, lr=1e-2, progress=False)  # global batch: 2 per rank
        trainer = Trainer(ToyEnhancer(dropout=0.0), toy_loss, ToyPairs(), cfg)
        assert trainer.world == world and isinstance(trainer.net, nn.parallel.DistributedDataParallel)
        trainer.fit()
        torch.save(trainer.model.state_dict(), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
