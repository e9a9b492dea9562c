"""A tiny model and dataset shared by the engine tests (kept importable by spawned DDP workers)."""

import torch
from torch import nn


class ToyEnhancer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.1), nn.Conv2d(8, 3, 3, padding=1))

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
