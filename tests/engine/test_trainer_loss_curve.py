"""TrainConfig.loss_curve: the loss-curve PNG needs matplotlib (extra `plot`); without it the trainer refuses to
start when the PNG is asked for, and trains without importing matplotlib when it is not."""

import sys

import pytest
import torch
from _toy import ToyEnhancer, ToyPairs, toy_loss

from semprior.engine import TrainConfig, Trainer


def _trainer(out, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(steps=2, batch_size=4, lr=1e-2, progress=False, log_every=1, **kw)
    return Trainer(ToyEnhancer(), toy_loss, ToyPairs(), cfg, out_dir=out)


def _hide_matplotlib(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)


def test_loss_curve_written_by_default(tmp_path):
    pytest.importorskip("matplotlib")
    _trainer(tmp_path).fit()
    assert (tmp_path / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_without_matplotlib_the_run_stops_before_training(tmp_path, monkeypatch):
    _hide_matplotlib(monkeypatch)
    with pytest.raises(ImportError, match=r"pip install 'semprior\[plot\]'; or set loss_curve: false"):
        _trainer(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_loss_curve_false_trains_without_matplotlib(tmp_path, monkeypatch):
    _hide_matplotlib(monkeypatch)
    res = _trainer(tmp_path, loss_curve=False).fit()
    assert res.step == 2 and (tmp_path / "last.pt").exists() and not (tmp_path / "loss_curve.png").exists()


def test_no_out_dir_needs_no_matplotlib(monkeypatch):
    _hide_matplotlib(monkeypatch)
    assert _trainer(None).fit().step == 2
