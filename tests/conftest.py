"""Shared fixtures. No test touches the network: sockets are patched to fail for the whole run."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SEMPRIOR_SHARED_DATA", REPO.parent / "shared" / "data"))


class NetworkAccessError(RuntimeError):
    pass


def _refuse(*args, **kwargs):
    raise NetworkAccessError("a test tried to open a network connection; tests must never touch the network")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test runs with outgoing connections refused (AF_UNIX socketpairs still work)."""
    real_connect = socket.socket.connect

    def guarded_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse()
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    yield


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin contention on a loaded 2-core machine (~50x here)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` or skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="session")
def load_script():
    """``load_script("tools/x.py")``: a repository script (benchmarks/, experiments/, tools/) as a module,
    loaded from its file (those folders are not packages; nothing is added to ``sys.path``)."""
    import importlib.util

    def load(relpath: str):
        path = REPO / relpath
        spec = importlib.util.spec_from_file_location(f"_script_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


#: the tiny Retinexformer the recipe tests train
TINY_RETINEXFORMER = {"name": "retinexformer", "width": 8, "blocks": [1, 1, 1]}


@pytest.fixture(scope="session")
def write_pairs():
    """``write_pairs(root, n=6, size=(16, 24))``: ``n`` random ``root/high/{i}.png`` (seed 0) and ``root/low/{i}.png``
    at a fifth of their brightness; returns ``root``."""
    from semprior.data.io import write_image

    def write(root: Path, n: int = 6, size: tuple[int, int] = (16, 24)) -> Path:
        g = torch.Generator().manual_seed(0)
        for d in ("low", "high"):
            (root / d).mkdir(parents=True)
        for i in range(n):
            high = torch.rand(3, *size, generator=g)
            write_image(root / "high" / f"{i}.png", high)
            write_image(root / "low" / f"{i}.png", high * 0.2)
        return root

    return write


@pytest.fixture(scope="session")
def run_config_dict():
    """``run_config_dict(pairs, out, model=..., prior=..., data={...}, train={...})``: the run config (a dict, as the
    YAML gives it) of a tiny run on ``pairs/low`` + ``pairs/high``: the tiny Retinexformer (``model=None``: the
    default model), no prior, 8-pixel patches, batch 2, no progress bar; ``data``/``train`` add or replace fields."""

    def make(
        pairs: Path,
        out: Path | None = None,
        *,
        model: dict | None = TINY_RETINEXFORMER,
        prior: str = "none",
        data: dict | None = None,
        train: dict | None = None,
    ) -> dict:
        cfg: dict = {} if model is None else {"model": dict(model)}
        cfg["prior"] = prior
        cfg["data"] = {
            "kind": "paired",
            "low_dir": str(pairs / "low"),
            "high_dir": str(pairs / "high"),
            "patch_size": 8,
            **(data or {}),
        }
        cfg["train"] = {"batch_size": 2, "progress": False, **(train or {})}
        if out is not None:
            cfg["out_dir"] = str(out)
        return cfg

    return make
