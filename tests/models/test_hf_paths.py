"""``hf://org/name`` is accepted wherever a model path is; the download is faked (never the network)."""

from __future__ import annotations

import pytest
import torch

import semprior
import semprior.models.io as mio
from semprior.cli.main import main
from semprior.data.io import read_image, write_image


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A save_pretrained folder that a faked snapshot download returns; the repo ids asked for are recorded."""
    torch.manual_seed(0)
    model = semprior.create_model("retinexformer", width=4, blocks=(1, 1, 1)).eval()
    folder = semprior.save_pretrained(model, tmp_path / "snapshot")
    asked = []

    def download(repo_id, **kwargs):
        asked.append(repo_id)
        return folder

    monkeypatch.setattr(mio, "hub_download", download)
    return model, asked


def test_every_entry_point_takes_hf_paths(fake_hub, tmp_path):
    model, asked = fake_hub
    x = torch.rand(1, 3, 8, 12)
    for loaded in (
        semprior.from_pretrained("hf://me/tiny"),
        semprior.load_model("hf://me/tiny"),
        semprior.create_model("retinexformer", pretrained="hf://me/tiny"),
    ):
        torch.testing.assert_close(loaded(x), model(x))
    assert asked == ["hf://me/tiny"] * 3
    write_image(tmp_path / "in.png", torch.rand(3, 8, 12) * 0.2)
    assert (
        main(
            [
                "enhance",
                str(tmp_path / "in.png"),
                "-o",
                str(tmp_path / "out"),
                "--checkpoint",
                "hf://me/tiny",
                "--no-progress",
            ]
        )
        == 0
    )
    assert read_image(tmp_path / "out" / "in.png").shape[-2:] == (8, 12)


def test_hub_download_fetches_only_the_two_files(monkeypatch, tmp_path):
    hf = pytest.importorskip("huggingface_hub")
    calls = {}

    def snapshot_download(repo_id, **kwargs):
        calls.update(kwargs, repo_id=repo_id)
        return str(tmp_path)

    monkeypatch.setattr(hf, "snapshot_download", snapshot_download)
    assert mio.hub_download("hf://org/name", local_files_only=True) == tmp_path
    assert calls["repo_id"] == "org/name" and sorted(calls["allow_patterns"]) == ["config.json", "model.safetensors"]
    assert calls["local_files_only"] is True
