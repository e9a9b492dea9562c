"""Same seed -> identical weights after N CPU training steps (DeepSPG on synthetic pairs, through the Trainer)."""

from __future__ import annotations

import pytest
import torch
from _rel_helpers import tiny_deepspg_config

from semprior.data.synthesis import SyntheticPairs
from semprior.engine.trainer import TrainConfig, Trainer, seed_everything
from semprior.models.deepspg import DeepSPG, deepspg_training_loss


def _train(seed: int, steps: int = 3) -> dict[str, torch.Tensor]:
    seed_everything(seed)
    model = DeepSPG(tiny_deepspg_config())
    clean = [torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    data = SyntheticPairs(clean, patch_size=16, length=4, seed=seed)  # random crops, flips and degradations
    cfg = TrainConfig(steps=steps, batch_size=2, lr=1e-3, seed=seed, progress=False)
    Trainer(model, deepspg_training_loss, data, cfg, device="cpu").fit()
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_same_seed_gives_identical_weights():
    a, b = _train(0), _train(0)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs between two runs with the same seed"
    seed_everything(0)
    init = DeepSPG(tiny_deepspg_config()).state_dict()  # the same initial weights
    assert any(not torch.equal(a[k], init[k]) for k in a if a[k].is_floating_point()), "training changed nothing"


def test_different_seed_gives_different_weights():
    a, c = _train(0, steps=1), _train(1, steps=1)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())
