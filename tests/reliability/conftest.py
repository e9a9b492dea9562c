"""Fixtures for the reliability suite: image files in every awkward mode, a tiny DeepSPG checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _rel_helpers import tiny_deepspg_config, write_bad_files, write_mode_files


@pytest.fixture(scope="session")
def mode_files(tmp_path_factory) -> dict[str, Path]:
    return write_mode_files(tmp_path_factory.mktemp("modes"))


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    return write_bad_files(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A DeepSPG checkpoint (random init, 4 channels, no priors) in the trainer's key layout."""
    from semprior.engine.checkpoint import save_checkpoint
    from semprior.models.deepspg import DeepSPG

    cfg = tiny_deepspg_config()
    torch.manual_seed(0)
    model = DeepSPG(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint({"model": model.state_dict(), "model_config": cfg.to_dict()}, path)
    return path
