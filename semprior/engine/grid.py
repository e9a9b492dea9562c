"""Side-by-side comparison grids: one row per image, one labelled column per method."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from semprior._checks import check_image

__all__ = ["comparison_grid", "save_grid"]

_LABEL_H = 16


def _label_strip(text: str, width: int) -> Tensor:
    """A ``(3, 16, width)`` white-on-black strip with ``text`` (PIL's built-in bitmap font)."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (width, _LABEL_H), (0, 0, 0))
    draw = ImageDraw.Draw(strip)
    while text and draw.textlength(text) > width - 4:
        text = text[:-1]
    draw.text((2, 2), text, fill=(255, 255, 255))
    arr = np.asarray(strip, dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def _fit(img: Tensor, height: int) -> Tensor:
    h, w = img.shape[-2:]
    if h == height:
        return img
    width = max(1, round(w * height / h))
    return F.interpolate(img, size=(height, width), mode="area" if height < h else "bilinear", align_corners=None)


def comparison_grid(
    rows: Sequence[Sequence[Tensor]],
    labels: Sequence[str],
    *,
    cell_height: int = 160,
    pad: int = 2,
) -> Tensor:
    """Tile images into a labelled grid: ``rows[i][j]`` is image ``i`` under method ``labels[j]``.

    Every cell is resized to ``cell_height`` (aspect kept); a label strip names each column.

    Shape:
        - rows: each cell `(1, 3, H, W)` or `(3, H, W)`, values in [0, 1]
        - output: `(3, H_grid, W_grid)`

    Examples:
        >>> g = comparison_grid([[torch.rand(3, 20, 30), torch.rand(3, 20, 30)]], ["low", "ours"], cell_height=20)
        >>> g.shape
        torch.Size([3, 38, 62])
    """
    if not rows:
        raise ValueError("comparison_grid needs at least one row of images")
    if cell_height < 1:
        raise ValueError(f"cell_height must be >= 1, got {cell_height}")
    ncol = len(labels)
    out_rows = []
    for i, row in enumerate(rows):
        if len(row) != ncol:
            raise ValueError(f"row {i} has {len(row)} images but there are {ncol} labels; give one label per column")
        cells = []
        for j, img in enumerate(row):
            img = img.unsqueeze(0) if img.dim() == 3 else img
            check_image(img, f"rows[{i}][{j}]")
            cells.append(_fit(img[:1].detach().float().cpu().clamp(0, 1), cell_height)[0])
        out_rows.append(cells)
    widths = [max(r[j].shape[-1] for r in out_rows) for j in range(ncol)]
    total_w = sum(widths) + pad * (ncol - 1)
    header = torch.zeros(3, _LABEL_H, total_w)
    x = 0
    for j, w in enumerate(widths):
        header[:, :, x : x + w] = _label_strip(labels[j], w)
        x += w + pad
    parts = [header]
    for cells in out_rows:
        line = torch.ones(3, cell_height, total_w)
        x = 0
        for j, c in enumerate(cells):
            line[:, :, x : x + c.shape[-1]] = c
            x += widths[j] + pad
        parts.append(torch.ones(3, pad, total_w))
        parts.append(line)
    return torch.cat(parts, dim=1)


def save_grid(path: str | Path, rows: Sequence[Sequence[Tensor]], labels: Sequence[str], **kwargs) -> Path:
    """Build [`comparison_grid`][semprior.engine.grid.comparison_grid] and write it as an 8-bit PNG (atomically, via
    ``write_image``); returns the path.

    Examples:
        >>> import tempfile, os
        >>> p = save_grid(os.path.join(tempfile.mkdtemp(), "g.png"), [[torch.rand(3, 8, 8)]], ["x"], cell_height=8)
        >>> p.suffix
        '.png'
    """
    from semprior.data.io import write_image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"grid path must end in .png, got {path.name}")
    write_image(path, comparison_grid(rows, labels, **kwargs))  # 8-bit, atomic
    return path
