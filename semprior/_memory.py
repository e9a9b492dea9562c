"""How much memory (and how many cores) the machine leaves this process, and whether a model built from a config
fits, decided before allocating.

[`available_bytes`][semprior._memory.available_bytes] reads ``MemAvailable`` from ``/proc/meminfo``
and the cgroup limit (``memory.max`` minus ``memory.current``), whichever is smaller.
[`usable_cores`][semprior._memory.usable_cores] counts the cores the process may run on.
[`check_model_fits`][semprior._memory.check_model_fits] builds the model on the ``meta`` device
(shapes only, no memory), counts the bytes of its parameters and buffers, and refuses a config
that needs more than is available, naming the field that makes it large. A config whose model would
have more than `MAX_MODULES` submodules is refused as soon as the build passes that count.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["ModelTooLarge", "available_bytes", "check_model_fits", "meta_model_bytes", "usable_cores"]

GiB = 1024**3


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity on Linux, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ModelTooLarge(ValueError):
    """A config asks for more memory than the machine has (one line naming the source and the field)."""


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes() -> int | None:
    """Memory this process can still allocate: ``MemAvailable``, capped by the cgroup's limit and ``ulimit -v``;
    ``None`` if unknown."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        found.append(max(0, limit - used))
    try:  # `ulimit -v`: the address space left to this process
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            pages = int(Path("/proc/self/statm").read_text().split()[0])
            found.append(max(0, soft - pages * os.sysconf("SC_PAGE_SIZE")))
    except (ImportError, OSError, ValueError, IndexError):
        pass
    if not found:
        try:  # POSIX without /proc/meminfo: free physical pages
            found.append(int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE")))
        except (ValueError, OSError, AttributeError):  # no way to tell: the check is skipped
            return None
    return min(found)


MAX_MODULES = 20_000
"""Most submodules a config may build: far above any LLIE model (hundreds), far below what makes
Python run out of memory building them (each module costs kilobytes, even on the meta device)."""


class _TooBig(Exception):
    """A meta build that had to stop: its reason, phrased to follow "the model"."""


class _TooManyModules(_TooBig):
    """Raised from inside a meta build once it registers more than `MAX_MODULES` submodules."""

    def __init__(self) -> None:
        super().__init__(f"would have more than {MAX_MODULES:,} submodules (the models here have hundreds)")


@contextlib.contextmanager
def _module_budget() -> Iterator[None]:
    """Count the submodules this thread registers and stop the build (``_TooManyModules``) past
    `MAX_MODULES`: a config asking for a billion layers is refused at once instead of built (tensors
    on the meta device are free, Python modules are not)."""
    owner, seen = threading.get_ident(), [0]

    def count(_module: nn.Module, _name: str, _sub: nn.Module | None) -> None:
        if threading.get_ident() == owner:
            seen[0] += 1
            if seen[0] > MAX_MODULES:
                raise _TooManyModules

    handle = nn.modules.module.register_module_module_registration_hook(count)
    try:
        yield
    finally:
        handle.remove()


def meta_model_bytes(build: Callable[[], nn.Module]) -> int | None:
    """Bytes of the parameters and buffers of ``build()``, built on the meta device (nothing allocated).

    ``None`` when the model cannot be built on the meta device (then nothing can be said in advance).
    Raises ``_TooBig`` when it would have more than `MAX_MODULES` submodules (the build stops there) or
    a tensor whose byte size overflows 64 bits.
    """
    try:
        with torch.device("meta"), _module_budget():
            model = build()
    except _TooBig:
        raise
    except RuntimeError as exc:
        if "overflow" in str(exc).lower():  # torch: "Storage size calculation overflowed with sizes=[...]"
            raise _TooBig("has a tensor too large to address (its size overflows 64 bits)") from None
        return None  # a model that needs real tensors to build: no estimate
    except Exception:  # noqa: BLE001 - a model that needs real tensors to build: no estimate
        return None
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers()) if t.is_meta}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _culprit(build: Callable[[Any], nn.Module], cfg: Any, total: float) -> str:
    """`` `width: 20000` (default 32)``: the field whose default value shrinks the model most
    (``total`` is ``inf`` for a model over `MAX_MODULES`)."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        return ""
    best, best_size = "", total
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            continue
        if value == default or isinstance(value, bool) or not isinstance(value, (int, float, tuple)):
            continue
        try:
            smaller = dataclasses.replace(cfg, **{f.name: default})
        except Exception:  # noqa: BLE001 - the default does not fit the other fields
            continue
        try:
            size = meta_model_bytes(functools.partial(build, smaller))
        except _TooBig:
            continue
        if size is not None and size < best_size:
            best, best_size = f"`{f.name}: {value}` (default {default})", size
    return best


def _blame(build: Callable[[Any], nn.Module], cfg: Any, total: float) -> str:
    """The advice that ends a `ModelTooLarge` message: the culprit field, or width and depth in general."""
    culprit = _culprit(build, cfg, total)
    return f" The size comes from {culprit}: lower it." if culprit else " Lower the model's width or depth."


def check_model_fits(
    build: Callable[[Any], nn.Module], cfg: Any, source: str, *, copies: float = 1.0, what: str = "weights"
) -> int | None:
    """Refuse ``cfg`` when ``copies`` x its model's parameter bytes exceed the memory available.

    Args:
        build: ``build(cfg) -> nn.Module`` (called on the meta device only).
        cfg: the model config (a dataclass: its fields are searched for the one that makes it large).
        source: where the config comes from (a file), named in the error.
        copies: how many copies of the weights the work needs (1 to load, 4 to train with Adam:
            weights, gradients and two moments).
        what: how those copies are described in the error.

    Returns the estimated bytes (``None`` when no estimate is possible). The limit can be
    lowered with the environment variable ``SEMPRIOR_MAX_MODEL_MB`` (tests, shared machines).

    Raises:
        ModelTooLarge: ``SOURCE: the model needs 74.5 GiB for its weights (20.0 G parameters); 21.3 GiB are available.
            The size comes from `width: 20000` (default 32): lower it``; also when the model would have more
            than `MAX_MODULES` submodules (then the build stops there) or a tensor too large to address.
    """
    try:
        size = meta_model_bytes(lambda: build(cfg))
    except _TooBig as too_big:
        raise ModelTooLarge(f"{source}: the model {too_big}.{_blame(build, cfg, float('inf'))}") from None
    if size is None:
        return None
    need = int(size * copies)
    avail = available_bytes()
    cap = os.environ.get("SEMPRIOR_MAX_MODEL_MB")
    if cap:
        capped = int(float(cap) * 2**20)
        avail = capped if avail is None else min(avail, capped)
    if avail is None or need <= avail:
        return need
    blame = _blame(build, cfg, size)
    params = size / 4
    raise ModelTooLarge(
        f"{source}: the model needs {need / GiB:.1f} GiB for its {what} (about {params / 1e9:.2f} G float32 "
        f"parameters); {avail / GiB:.1f} GiB are available.{blame}"
    )
