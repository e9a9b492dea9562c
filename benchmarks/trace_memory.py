"""Peak live tensor memory of DeepSPG's banded whole-image inference, traced on the ``meta`` device.

Every aten op is intercepted (``TorchDispatchMode``); each freshly allocated output adds its
storage size to a live total, and is subtracted when the tensor is freed. The peak of that total is
the memory the tensors need — without running any arithmetic (``meta`` tensors have shapes, no
data), so 3840×2160 and 7680×4320 take seconds and the figure does not depend on machine load.
It leaves out what the allocator and oneDNN add on top (scratch buffers, fragmentation): compare
with the resident-set measurement of ``bench_models.py`` where both exist (docs/performance.md).

Usage::

    python benchmarks/trace_memory.py --sizes 1920x1080 3840x2160 7680x4320
"""

from __future__ import annotations

import argparse
import weakref

import torch
from _harness import parse_size
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of live tensors created by aten ops (views and in-place results excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.largest: list[tuple[int, str, tuple[int, ...]]] = []
        self._items: dict[int, tuple[int, str, tuple[int, ...]]] = {}
        self._next = 0

    def _free(self, key: int) -> None:
        self.live -= self._items.pop(key)[0]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        rets = func._schema.returns
        flat, _ = tree_flatten(out)
        for i, t in enumerate(flat):
            if not isinstance(t, torch.Tensor) or (rets and rets[min(i, len(rets) - 1)].alias_info is not None):
                continue
            n = t.untyped_storage().nbytes()
            self._next += 1
            self._items[self._next] = (n, str(func), tuple(t.shape))
            self.live += n
            if self.live > self.peak:
                self.peak = self.live
                self.largest = sorted(self._items.values(), reverse=True)[:5]
            weakref.finalize(t, self._free, self._next)
        return out


def trace(preset: str, h: int, w: int, device: str = "meta") -> LiveTensorBytes:
    """Peak live bytes of ``DeepSPG(preset)``'s banded forward (no prior) on one ``h×w`` image."""
    from semprior.models.deepspg import DeepSPG, DeepSPGConfig

    net = DeepSPG(DeepSPGConfig.preset(preset, text_prior=False).ablation("baseline")).eval().to(device)
    x = torch.rand(1, 3, h, w, device=device)
    with torch.no_grad(), LiveTensorBytes() as mode:
        net._forward_banded(x, [None, None, None])  # the checks in forward() read values; meta has none
    return mode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["600x400", "1920x1080", "3840x2160", "7680x4320"])
    p.add_argument("--presets", nargs="+", default=["deepspg", "deepspg-large"])
    args = p.parse_args(argv)
    print("| model | size | peak live tensors GB | output GB | largest live tensors at the peak |")
    print("|---|---|---|---|---|")
    for preset in args.presets:
        for s in args.sizes:
            h, w = parse_size(s)
            m = trace(preset, h, w)
            big = ", ".join(f"{n / 1e9:.2f} GB {list(shape)}" for n, _, shape in m.largest[:3])
            print(f"| {preset} | {s} | {m.peak / 1e9:.3f} | {3 * h * w * 4 / 1e9:.3f} | {big} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
