"""A new model is one file plus its registration: a 2-conv model registered from this test gets the front door.

``create_model``, ``list_models``, the pretrained table, ``save_pretrained`` / ``from_pretrained`` /
``load_model``, and ``semprior enhance --model`` / ``--checkpoint`` work for it with no other change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pytest
import torch
from torch import nn

import semprior
from semprior.cli.main import main
from semprior.data.io import read_image, write_image
from semprior.models.io import load_model
from semprior.models.registry import MODELS, ModelEntry, Pretrained, l1_training_loss, register_model

NAME = "twoconv-test"


@dataclass(frozen=True)
class TwoConvConfig:
    width: int = 4

    @classmethod
    def preset(cls, name: str = "twoconv", **overrides: Any) -> TwoConvConfig:
        return cls(**overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TwoConv(nn.Module):
    """``low + conv(gelu(conv(low)))``, clamped: the smallest enhancer the protocol allows."""

    required_multiple = 1

    def __init__(self, config: TwoConvConfig) -> None:
        super().__init__()
        self.config = config
        self.a = nn.Conv2d(3, config.width, 3, padding=1)
        self.b = nn.Conv2d(config.width, 3, 3, padding=1)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        return (low + self.b(torch.nn.functional.gelu(self.a(low)))).clamp(0, 1)


@pytest.fixture
def registered(tmp_path):
    """Register the model (its pretrained table names a folder written here), unregister it after."""
    torch.manual_seed(0)
    folder = tmp_path / "twoconv-shipped"
    entry = register_model(
        ModelEntry(
            NAME,
            TwoConvConfig,
            "twoconv",
            lambda cfg, prior=None, text_loss=None: TwoConv(cfg),
            training_loss=l1_training_loss,
            pretrained={"demo": Pretrained(str(folder), shipped=True, dataset="noise")},
            tiny={"width": 2},
            description="two convolutions (a test)",
        )
    )
    semprior.save_pretrained(TwoConv(TwoConvConfig(width=3)), folder, name=NAME)
    yield entry, folder
    MODELS.pop(NAME)


def test_create_list_and_pretrained(registered):
    entry, folder = registered
    assert NAME in semprior.list_models() and semprior.list_models("twoconv*", pretrained=True) == [NAME]
    assert semprior.list_models(verbose=True)[NAME] == "two convolutions (a test)"
    net = semprior.create_model(NAME, width=5)
    assert isinstance(net, TwoConv) and net.a.out_channels == 5
    with pytest.raises(ValueError, match="unknown"):
        semprior.create_model(NAME, depth=2)
    loaded = semprior.create_model(NAME, pretrained=True)
    assert loaded.config.width == 3 and not loaded.training
    assert loaded.pretrained_cfg["tag"] == "demo" and loaded.pretrained_cfg["dataset"] == "noise"
    with pytest.raises(ValueError, match="takes no prior"):
        semprior.create_model(NAME, prior="region")


def test_save_load_round_trip(registered, tmp_path):
    net = semprior.create_model(NAME).eval()
    x = torch.rand(1, 3, 9, 7)
    d = semprior.save_pretrained(net, tmp_path / "saved")
    for back in (semprior.from_pretrained(d), load_model(d / "model.safetensors"), load_model(d, name=NAME)):
        assert type(back) is TwoConv
        torch.testing.assert_close(back(x), net(x))


def test_enhance_command_runs_it(registered, tmp_path):
    _, folder = registered
    write_image(tmp_path / "in" / "dark.png", torch.rand(1, 3, 12, 10) * 0.2)
    for flag, value in (("--model", NAME), ("--checkpoint", str(folder))):
        out = tmp_path / f"out{flag}"
        assert main(["enhance", str(tmp_path / "in"), "-o", str(out), flag, value, "--no-progress"]) == 0
        assert read_image(out / "dark.png").shape[-2:] == (12, 10)
