"""pyiqa's learned no-reference metrics from local weights (pyiqa itself is not installed in the tests).

A fake ``pyiqa`` module injected into ``sys.modules`` mimics the API checked in pyiqa 0.1.16:
``create_metric(metric_name, as_loss=False, device=None, **kwargs)`` returns an ``nn.Module``
whose network options come from ``kwargs`` (``pretrained_model_path``, ``num_class``) and whose
``lower_better`` flag says the direction. The fake reads the weights file, so a test passes only if
the path really reaches it.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from semprior.cli.main import main
from semprior.data.io import write_image
from semprior.engine.evaluate_unpaired import evaluate_unpaired
from semprior.metrics.pyiqa_metric import OFFLINE_METRICS, PyIQAMetric, pyiqa_metric


class _FakeInferenceModel(nn.Module):
    def __init__(self, name, device, pretrained_model_path, shape_bug=False, **opts):
        super().__init__()
        state = torch.load(
            pretrained_model_path, weights_only=True
        )  # the real one: torch.load(..., weights_only=False)
        self.scale = state["scale"].to(device)
        self.metric_name, self.opts, self.shape_bug = name, opts, shape_bug
        self.lower_better = False

    def forward(self, target):
        score = self.scale * target.mean((1, 2, 3))  # a stand-in quality score per image
        return score.repeat(2) if self.shape_bug else score[:, None]  # pyiqa returns (B, 1)


@pytest.fixture
def fake_pyiqa(monkeypatch):
    calls = []
    mod = types.ModuleType("pyiqa")

    def create_metric(metric_name, as_loss=False, device=None, **kwargs):
        calls.append({"metric_name": metric_name, "as_loss": as_loss, "device": device, **kwargs})
        return _FakeInferenceModel(metric_name, device, **kwargs)

    mod.create_metric = create_metric
    mod.__version__ = "0.1.16"
    monkeypatch.setitem(sys.modules, "pyiqa", mod)
    return calls


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "musiq_koniq_ckpt.pth"
    torch.save({"scale": torch.tensor(100.0)}, path)
    return path


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    g = torch.Generator().manual_seed(0)
    for i in range(2):
        write_image(folder / f"{i}.png", torch.rand(3, 100, 120, generator=g) * 0.3)
    return folder


def test_absent_pyiqa_names_the_extra(monkeypatch, weights):
    monkeypatch.setitem(sys.modules, "pyiqa", None)  # import pyiqa -> ImportError, as when it is not installed
    with pytest.raises(ImportError, match=r"pyiqa.*not installed.*pip install 'semprior\[pyiqa\]'"):
        pyiqa_metric("musiq", weights)


def test_bad_name_url_and_missing_file_refused_before_import(monkeypatch, tmp_path, weights):
    monkeypatch.setitem(sys.modules, "pyiqa", None)
    with pytest.raises(ValueError, match="'nima' is not offered.*musiq"):
        pyiqa_metric("nima", weights)  # its backbone would be downloaded
    with pytest.raises(ValueError, match="never downloads"):
        pyiqa_metric("musiq", "https://example.invalid/musiq.pth")
    with pytest.raises(FileNotFoundError, match="not a file"):
        pyiqa_metric("musiq", tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="not a file"):
        pyiqa_metric("musiq", tmp_path)  # a folder


def test_create_metric_gets_the_local_path_and_no_download(fake_pyiqa, weights):
    m = pyiqa_metric("musiq-ava", weights)
    assert fake_pyiqa == [
        {
            "metric_name": "musiq-ava",
            "as_loss": False,
            "device": torch.device("cpu"),
            "pretrained_model_path": str(weights),
            "num_class": 10,
        }
    ]
    assert isinstance(m, PyIQAMetric) and m.lower_better is False and not m.net.training
    x = torch.rand(3, 3, 16, 20, generator=torch.Generator().manual_seed(1))
    s = m(x)
    assert s.shape == (3,) and s.dtype == torch.float64
    torch.testing.assert_close(s, 100 * x.double().mean((1, 2, 3)), rtol=1e-6, atol=1e-5)
    pyiqa_metric("cnniqa", weights)
    assert "num_class" not in fake_pyiqa[-1] and set(OFFLINE_METRICS) >= {"musiq", "cnniqa"}


def test_bad_output_shape_and_input_range(fake_pyiqa, weights):
    m = pyiqa_metric("musiq", weights)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m(torch.full((1, 3, 8, 8), 2.0))
    m.net.shape_bug = True
    with pytest.raises(RuntimeError, match="one score per image"):
        m(torch.rand(2, 3, 8, 8))


def test_evaluate_unpaired_adds_the_column(fake_pyiqa, weights, photos):
    m = pyiqa_metric("musiq", weights)
    res = evaluate_unpaired({"double": lambda x: x * 2}, photos, extra_metrics={"pyiqa:musiq": m})
    assert res.extra == {"pyiqa:musiq": False}
    means = res.means()
    # the fake scores 100 x the mean RGB value: doubling the (dark) photos doubles it
    assert means["double"]["pyiqa:musiq"] == pytest.approx(2 * means["input"]["pyiqa:musiq"], rel=1e-4)
    assert 100 * 0.3 / 2 * 0.99 < means["input"]["pyiqa:musiq"] < 100 * 0.3 / 2 * 1.01  # 100 x mean of U(0, 0.3)
    header = res.table().splitlines()[0]
    assert header.endswith("| pyiqa:musiq ↑ |") and res.table().splitlines()[1].count("---") == 9
    with pytest.raises(ValueError, match="clash"):
        evaluate_unpaired({"double": lambda x: x * 2}, photos, extra_metrics={"niqe": m})


def test_cli_pyiqa_option(fake_pyiqa, weights, photos, capsys):
    rc = main(["eval", "--unpaired", str(photos), "--model", "gamma", "--pyiqa", f"musiq={weights}", "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0 and "pyiqa:musiq ↑" in out and "| gamma |" in out
    assert fake_pyiqa[0]["pretrained_model_path"] == str(weights)
    assert main(["eval", "--unpaired", str(photos), "--model", "gamma", "--pyiqa", "musiq"]) == 1
    assert "NAME=WEIGHTS" in capsys.readouterr().err
    assert main(["eval", "--low", str(photos), "--model", "gamma", "--pyiqa", f"musiq={weights}"]) == 1
    assert "use it with --unpaired" in capsys.readouterr().err


def test_cli_without_pyiqa_says_which_extra(monkeypatch, weights, photos, capsys):
    monkeypatch.setitem(sys.modules, "pyiqa", None)
    assert main(["eval", "--unpaired", str(photos), "--model", "gamma", "--pyiqa", f"musiq={weights}"]) == 1
    assert "pip install 'semprior[pyiqa]'" in capsys.readouterr().err
