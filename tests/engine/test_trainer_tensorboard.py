"""``TrainConfig.tensorboard``: every logged value becomes a TensorBoard scalar; without the package the trainer
refuses to start."""

import sys

import pytest
import torch
from _toy import ToyEnhancer, ToyPairs, toy_loss

from semprior.engine import TrainConfig, Trainer


def test_scalars_are_written(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    cfg = TrainConfig(steps=4, batch_size=4, lr=1e-2, progress=False, log_every=2, tensorboard=True, loss_curve=False)
    Trainer(ToyEnhancer(), toy_loss, ToyPairs(), cfg, out_dir=tmp_path).fit()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "train/loss" in tags and "train/lr" in tags
    assert [e.step for e in acc.Scalars("train/loss")] == [2, 4]
    logged = list((tmp_path / "log.jsonl").read_text().splitlines())
    import json

    losses = [json.loads(x)["loss"] for x in logged if "loss" in json.loads(x)]
    assert [round(e.value, 5) for e in acc.Scalars("train/loss")] == [round(v, 5) for v in losses]


def test_without_tensorboard_the_trainer_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    cfg = TrainConfig(steps=2, batch_size=4, progress=False, tensorboard=True, loss_curve=False)
    with pytest.raises(ImportError, match=r"semprior\[tensorboard\]"):
        Trainer(ToyEnhancer(), toy_loss, ToyPairs(), cfg, out_dir=tmp_path)
