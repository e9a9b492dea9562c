"""Loss-curve PNGs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from semprior._atomic import atomic_write

__all__ = ["plot_curves"]


def plot_curves(
    curves: Mapping[str, Sequence[Sequence[float]]], path: str | Path, title: str = "training", logy: bool = True
) -> Path:
    """Plot ``{name: [(step, value), ...]}`` into one PNG; curves named ``val/...`` go to a second axis.

    The file is written atomically (`semprior._atomic.atomic_write`).

    Examples:
        >>> import tempfile, os
        >>> p = plot_curves({"loss": [(0, 1.0), (1, 0.5)]}, os.path.join(tempfile.mkdtemp(), "c.png"))
        >>> p.suffix
        '.png'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    train = {k: v for k, v in curves.items() if not k.startswith("val/") and len(v)}
    val = {k: v for k, v in curves.items() if k.startswith("val/") and len(v)}
    if not train and not val:
        raise ValueError("no curve has any point to plot")
    ncols = 2 if val else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4), squeeze=False)
    ax = axes[0, 0]
    for name, pts in train.items():
        xs, ys = zip(*pts)
        ax.plot(xs, ys, label=name, linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if logy and train and all(y > 0 for pts in train.values() for _, y in pts):
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train:
        ax.legend(fontsize=8)
    if val:
        ax2 = axes[0, 1]
        for name, pts in val.items():
            xs, ys = zip(*pts)
            ax2.plot(xs, ys, marker="o", label=name)
        ax2.set_xlabel("step")
        ax2.set_title("validation")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_write(path) as f:
            fig.savefig(f, dpi=100, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)
    return path
