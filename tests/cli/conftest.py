"""The CLI tests' pair folders and ``semprior eval`` command lines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from semprior.data.io import write_image


@pytest.fixture
def pair_dirs(tmp_path):
    """``low/`` and ``high/`` with three random 24 x 33 pairs ``a``, ``b``, ``c`` (low = 0.15 x high)."""
    g = torch.Generator().manual_seed(0)
    for d in ("low", "high"):
        (tmp_path / d).mkdir()
    for name in ("a", "b", "c"):
        high = torch.rand(3, 24, 33, generator=g)
        write_image(tmp_path / "high" / f"{name}.png", high)
        write_image(tmp_path / "low" / f"{name}.png", high * 0.15)
    return tmp_path


@pytest.fixture(scope="session")
def eval_argv():
    """``eval_argv(pairs, *args)``: ``semprior eval`` on ``pairs/low`` + ``pairs/high`` with ``args`` (models,
    options) and no progress bar."""

    def argv(pairs: Path, *args: str) -> list[str]:
        return ["eval", "--low", str(pairs / "low"), "--high", str(pairs / "high"), *args, "--no-progress"]

    return argv
