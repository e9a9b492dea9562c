"""``semprior eval --save-images DIR``: every method's enhanced images, one folder per method, scores unchanged."""

from __future__ import annotations

import json

import pytest
import torch

from semprior.cli.main import main
from semprior.data.io import read_image, write_image
from semprior.metrics import psnr


@pytest.fixture
def pairs(tmp_path):
    g = torch.Generator().manual_seed(0)
    for name in ("a", "b"):
        high = torch.rand(3, 24, 32, generator=g)
        write_image(tmp_path / "high" / f"{name}.png", high)
        write_image(tmp_path / "low" / f"{name}.png", high * 0.2)
    return tmp_path


def test_save_images(pairs, capsys, eval_argv):
    saved = pairs / "saved"
    models = ["--model", "gamma", "--model", "identity"]
    rc = main(eval_argv(pairs, *models, "--save-images", str(saved), "--out", str(pairs / "report")))
    assert rc == 0
    capsys.readouterr()
    assert sorted(str(p.relative_to(saved)) for p in saved.rglob("*.png")) == [
        "gamma/a.png",
        "gamma/b.png",
        "identity/a.png",
        "identity/b.png",
    ]
    assert torch.allclose(read_image(saved / "identity" / "a.png"), read_image(pairs / "low" / "a.png"), atol=1 / 255)
    # the saved images score what the table says (the table quantises to 8 bits too)
    table = json.loads((pairs / "report" / "metrics.json").read_text())
    text = json.dumps(table)
    mine = [
        psnr(read_image(saved / "gamma" / f"{n}.png")[None], read_image(pairs / "high" / f"{n}.png")[None]).item()
        for n in ("a", "b")
    ]
    assert f"{sum(mine) / 2:.2f}"[:4] in text


def test_save_images_into_a_file_is_an_error(pairs, capsys, eval_argv):
    (pairs / "file").write_text("x")
    rc = main(eval_argv(pairs, "--model", "gamma", "--save-images", str(pairs / "file")))
    assert rc == 1 and "not a folder" in capsys.readouterr().err
