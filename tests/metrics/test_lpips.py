"""LPIPS from torchmetrics' shipped heads and a torchvision backbone read from the torch hub cache, never downloaded.

The backbone here is a randomly initialised AlexNet saved under the file name torchvision expects, in a
temporary ``TORCH_HOME``; the network is refused for every test (conftest), so a download attempt fails.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchmetrics")
torchvision = pytest.importorskip("torchvision")

from semprior.metrics.lpips import LPIPS, lpips_backbone_file  # noqa: E402

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision.models.AlexNet_Weights.IMAGENET1K_V1


def _use_torch_home(mp: pytest.MonkeyPatch, home) -> None:
    mp.setenv("TORCH_HOME", str(home))
    mp.setattr(torch.hub, "_hub_dir", None)  # get_dir() follows TORCH_HOME again


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    _use_torch_home(monkeypatch, tmp_path / "torch")
    return tmp_path / "torch"


@pytest.fixture(scope="module")
def alex_home(tmp_path_factory):
    """A torch home whose hub cache holds a random AlexNet under torchvision's file name."""
    home = tmp_path_factory.mktemp("torch")
    path = home / "hub" / "checkpoints" / ALEXNET_FILE
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return home


@pytest.fixture
def alex_cache(alex_home, monkeypatch):
    _use_torch_home(monkeypatch, alex_home)
    return alex_home


@pytest.fixture(scope="module")
def lpips(alex_home):
    with pytest.MonkeyPatch.context() as mp:
        _use_torch_home(mp, alex_home)
        return LPIPS("alex")


def test_backbone_file_is_torchvisions(torch_home):
    assert lpips_backbone_file("alex") == torch_home / "hub" / "checkpoints" / ALEXNET_FILE
    url = torchvision.models.AlexNet_Weights.DEFAULT.url
    assert url.endswith("/" + ALEXNET_FILE)
    with pytest.raises(ValueError, match="must be one of"):
        lpips_backbone_file("resnet")


def test_missing_backbone_is_one_clear_line(torch_home):
    with pytest.raises(FileNotFoundError) as err:
        LPIPS("alex")
    msg = str(err.value)
    assert "\n" not in msg
    assert str(torch_home / "hub" / "checkpoints" / ALEXNET_FILE) in msg and "never downloads" in msg


def test_properties(lpips):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 64, 64, generator=g)
    mild = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    strong = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    same = lpips(x, x)
    assert same.shape == (2,) and torch.allclose(same, torch.zeros(2), atol=1e-6)
    d = lpips(x, mild)
    torch.testing.assert_close(d, lpips(mild, x), rtol=1e-5, atol=1e-7)
    assert (d > 0).all() and (lpips(x, strong) > d).all()


def test_checks_inputs(lpips):
    with pytest.raises(ValueError, match="same shape"):
        lpips(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 48))


def test_evaluate_methods_adds_an_lpips_column(lpips):
    from semprior.engine.evaluate import evaluate_methods

    g = torch.Generator().manual_seed(2)
    pairs = [
        {"low": torch.rand(3, 64, 64, generator=g) * 0.2, "high": torch.rand(3, 64, 64, generator=g), "name": str(i)}
        for i in range(2)
    ]
    r = evaluate_methods(
        {"identity": lambda x: x, "x4": lambda x: (4 * x).clamp(0, 1)}, pairs, extra_metrics={"lpips": lpips}
    )
    assert r.extra == ["lpips"] and len(r.scores["identity"]["lpips"]) == 2
    expected = lpips(pairs[0]["low"][None], pairs[0]["high"][None])
    assert r.scores["identity"]["lpips"][0] == pytest.approx(float(expected), rel=1e-5)
    assert "LPIPS ↓" in r.to_markdown().splitlines()[0]
    assert r.to_dict()["means"]["x4"]["lpips"] == pytest.approx(r.mean("x4", "lpips"))


def test_cli_eval_lpips(alex_cache, tmp_path, capsys):
    from semprior.cli.main import main
    from semprior.data.io import write_image

    g = torch.Generator().manual_seed(3)
    for sub, scale in (("low", 0.2), ("high", 1.0)):
        for i in range(2):
            write_image(tmp_path / sub / f"{i}.png", torch.rand(3, 64, 64, generator=g) * scale)
    rc = main(
        [
            "eval",
            "--low",
            str(tmp_path / "low"),
            "--high",
            str(tmp_path / "high"),
            "--model",
            "gamma",
            "--lpips",
            "--no-progress",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 0
    assert "LPIPS ↓" in capsys.readouterr().out
    assert "lpips" in (tmp_path / "out" / "metrics.json").read_text()


def test_cli_eval_lpips_without_backbone_fails_before_reading(torch_home, tmp_path, capsys):
    from semprior.cli.main import main

    rc = main(
        [
            "eval",
            "--low",
            str(tmp_path / "nowhere"),
            "--high",
            str(tmp_path / "nowhere"),
            "--model",
            "gamma",
            "--lpips",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and ALEXNET_FILE in err


def test_without_torchmetrics_names_the_extra(alex_cache, monkeypatch):
    import sys

    for name in [m for m in sys.modules if m.split(".")[0] == "torchmetrics"] + ["torchmetrics"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'semprior\[lpips\]'"):
        LPIPS("alex")


def test_cli_lpips_needs_references(tmp_path, capsys):
    from semprior.cli.main import main

    rc = main(["eval", "--unpaired", str(tmp_path), "--model", "gamma", "--lpips"])
    err = capsys.readouterr().err
    assert rc != 0 and "--lpips compares with references" in err
