"""Loss-curve PNGs (matplotlib, Agg backend: no display needed).

matplotlib is an extra (``pip install 'semprior[plot]'``, included in ``semprior[all]``). Without
it, [`plot_curves`][semprior.engine.curves.plot_curves] raises an ``ImportError`` naming the extra.
The trainer's ``loss_curve`` option decides whether a run draws ``loss_curve.png`` at all; when it
does, the trainer calls [`require_matplotlib`][semprior.engine.curves.require_matplotlib] before
the first step, so a missing matplotlib stops the run at the start, not after hours of training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

from semprior._atomic import atomic_write
from semprior._optional import require

__all__ = ["plot_curves", "require_matplotlib"]


def require_matplotlib(alternative: str | None = None) -> ModuleType:
    """Import matplotlib with the non-interactive Agg backend, or raise an ``ImportError`` naming the extra.

    Args:
        alternative: appended to the error, e.g. how to switch the plot off
            (``"or set train.loss_curve: false"``).

    Raises:
        ImportError: ``optional dependency 'matplotlib' is not installed (needed for loss-curve PNGs);
            install it with: pip install 'semprior[plot]'`` (+ ``alternative``).
    """
    try:
        mpl = require("matplotlib", extra="plot", purpose="loss-curve PNGs")
    except ImportError as exc:
        if alternative:
            raise ImportError(f"{exc}; {alternative}") from exc.__cause__
        raise
    mpl.use("Agg", force=False)
    return mpl


def plot_curves(
    curves: Mapping[str, Sequence[Sequence[float]]], path: str | Path, title: str = "training", logy: bool = True
) -> Path:
    """Plot ``{name: [(step, value), ...]}`` into one PNG; curves named ``val/...`` go to a second axis.

    The file is written atomically (`semprior._atomic.atomic_write`).

    Raises:
        ImportError: matplotlib is not installed (``pip install 'semprior[plot]'``).
        ValueError: no curve has a point.

    Examples:
        >>> import tempfile, os
        >>> p = plot_curves({"loss": [(0, 1.0), (1, 0.5)]}, os.path.join(tempfile.mkdtemp(), "c.png"))
        >>> p.suffix
        '.png'
    """
    require_matplotlib()
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
