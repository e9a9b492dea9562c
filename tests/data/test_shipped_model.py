"""The DeepSPG that ships inside semprior: it loads by tag and by default, and its model card's
eval15 numbers are what `semprior eval` measures (data test; skips without ../shared/data)."""

from __future__ import annotations

import json

import pytest
import torch

from semprior.cli.main import main
from semprior.data.io import read_image, write_image
from semprior.models import get_model_entry, list_models
from semprior.models.registry import PRETRAINED_DIR

FOLDER = PRETRAINED_DIR / get_model_entry("deepspg").pretrained["lolv1-cpu"].file
pytestmark = pytest.mark.skipif(not (FOLDER / "config.json").is_file(), reason=f"no shipped weights in {FOLDER}")


def test_shipped_deepspg_loads_by_tag_and_enhances():
    from semprior import create_model

    assert get_model_entry("deepspg").shipped_tags[0] == "lolv1-cpu"
    model = create_model("deepspg", pretrained="lolv1-cpu")
    assert not model.training and type(model).__name__ == "DeepSPG"
    dark = torch.rand(1, 3, 37, 53) * 0.1
    with torch.no_grad():
        out = model(dark)
    assert out.shape == dark.shape and out.mean() > 2 * dark.mean()  # it brightens
    card = (FOLDER / "MODEL_CARD.md").read_text()
    assert "LOL" in card and "research" in card.lower()


def test_enhance_uses_the_shipped_model_by_default(tmp_path):
    write_image(tmp_path / "night.png", torch.rand(3, 40, 60) * 0.1)
    assert main(["enhance", str(tmp_path / "night.png"), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    assert read_image(tmp_path / "out" / "night.png").mean() > 2 * 0.05


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("name", list_models(pretrained=True))
def test_model_card_eval15_numbers_reproduce(name, shared_data, tmp_path):
    if not get_model_entry(name).shipped_tags:
        pytest.skip(f"no shipped weights for {name}")
    folder = PRETRAINED_DIR / get_model_entry(name).pretrained["lolv1-cpu"].file
    sel = json.loads((folder / "selection.json").read_text())["eval15"]
    eval15 = shared_data / "lol_v1_eval15"
    rc = main(
        [
            "eval",
            "--low",
            str(eval15 / "low"),
            "--high",
            str(eval15 / "high"),
            "--model",
            name,
            "--out",
            str(tmp_path),
            "--grid",
            "0",
            "--no-progress",
        ]
    )
    assert rc == 0
    means = json.loads((tmp_path / "metrics.json").read_text())["means"][name]
    assert means["psnr"] == pytest.approx(sel["psnr"], abs=0.01)
    assert means["ssim"] == pytest.approx(sel["ssim"], abs=0.001)
    assert means["psnr_gtmean"] == pytest.approx(sel["psnr_gtmean"], abs=0.01)
    card = (folder / "MODEL_CARD.md").read_text()
    assert f"PSNR {sel['psnr']:.2f} dB" in card  # the card quotes the measured numbers
