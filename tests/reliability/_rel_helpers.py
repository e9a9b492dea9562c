"""Helpers for the reliability suite (imported by its conftest and tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def _rgb(h: int = 20, w: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_mode_files(folder: Path) -> dict[str, Path]:
    """One file per awkward image kind; returns ``kind -> path``."""
    from PIL import Image

    from semprior.data.io import write_image

    folder.mkdir(parents=True, exist_ok=True)
    rgb = _rgb()
    files: dict[str, Path] = {}

    def save(kind: str, im: Image.Image, suffix: str = ".png", **kw) -> None:
        files[kind] = folder / f"{kind}{suffix}"
        im.save(files[kind], **kw)

    save("rgb", Image.fromarray(rgb))
    save("gray", Image.fromarray(rgb[..., 0]))
    save("rgba", Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), mode="RGBA"))
    save("la", Image.fromarray(rgb[..., 0]).convert("LA"))
    save("palette", Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16))
    save("bilevel", Image.fromarray(rgb[..., 0]).convert("1"))
    save("cmyk", Image.fromarray(rgb).convert("CMYK"), ".jpg", quality=95)
    save("jpeg", Image.fromarray(rgb), ".jpg", quality=90)
    gray16 = (np.random.default_rng(1).integers(0, 65536, rgb.shape[:2])).astype(np.uint16)
    save("gray16", Image.fromarray(gray16))
    files["rgb16"] = folder / "rgb16.png"
    write_image(files["rgb16"], torch.rand(3, 20, 24, generator=torch.Generator().manual_seed(2)), bits=16)
    save("tiff_rgb", Image.fromarray(rgb), ".tif")
    save("tiny1x1", Image.fromarray(rgb[:1, :1]))
    save("odd", Image.fromarray(_rgb(13, 7)))
    return files


def write_bad_files(folder: Path) -> dict[str, Path]:
    """Files that are not decodable images (but have image suffixes); returns ``kind -> path``."""
    folder.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    good = folder / "_good.png"
    Image.fromarray(_rgb(32, 32)).save(good)
    png = good.read_bytes()
    good.unlink()
    bad = {
        "text": b"this is not an image\n",
        "empty": b"",
        "truncated_png": png[: len(png) // 2],
        "png_header_only": png[:33],
        "random": np.random.default_rng(3).integers(0, 256, 512, dtype=np.uint8).tobytes(),
    }
    files = {}
    for kind, data in bad.items():
        files[kind] = folder / f"{kind}.png"
        files[kind].write_bytes(data)
    files["truncated_jpeg"] = folder / "truncated_jpeg.jpg"
    jp = folder / "_j.jpg"
    Image.fromarray(_rgb(64, 64)).save(jp, quality=90)
    files["truncated_jpeg"].write_bytes(jp.read_bytes()[:300])
    jp.unlink()
    return files


def tiny_deepspg_config():
    from semprior.models.deepspg import DeepSPGConfig

    return DeepSPGConfig(
        width=4,
        heads=(1, 1, 1),
        retinex_width=4,
        illum_width=4,
        image_prior=False,
        text_prior=False,
        coarse_to_fine=False,
    )


class ToyEnhancer(torch.nn.Module):
    """Tiny conv net with dropout (so resume must restore the RNG too)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Dropout2d(0.2),
            torch.nn.Conv2d(8, 3, 3, padding=1),
        )

    def forward(self, x):
        return x + self.body(x)


class ToyPairs(torch.utils.data.Dataset):
    def __init__(self, n: int = 12, size: int = 12) -> None:
        self.high = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(123))

    def __len__(self) -> int:
        return len(self.high)

    def __getitem__(self, i):
        return {"low": self.high[i] * 0.3, "high": self.high[i]}


def toy_loss(model, batch):
    mse = ((model(batch["low"]) - batch["high"]) ** 2).mean()
    return mse, {"mse": mse.detach()}


def toy_trainer(out_dir=None, steps: int = 6, seed: int = 0):
    """Seeded toy model + Trainer (Adam, cosine LR, grad clip, 2-item batches)."""
    from semprior.engine.trainer import TrainConfig, Trainer, seed_everything

    seed_everything(seed)
    cfg = TrainConfig(steps=steps, batch_size=2, lr=1e-2, seed=seed, progress=False, log_every=1)
    return Trainer(ToyEnhancer(), toy_loss, ToyPairs(), cfg, out_dir=out_dir, device="cpu")
