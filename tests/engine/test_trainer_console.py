"""Without a progress bar, training prints one line per log interval to stderr (nothing to stdout)."""

import torch
from _toy import ToyEnhancer, ToyPairs, toy_loss

from semprior.engine import TrainConfig, Trainer


def test_console_line_per_log_interval(capsys):
    torch.manual_seed(0)
    cfg = TrainConfig(steps=6, batch_size=4, lr=1e-2, progress=False, log_every=2)
    Trainer(ToyEnhancer(), toy_loss, ToyPairs(), cfg).fit()
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.startswith("step ")]
    assert [ln.split()[1] for ln in lines] == ["2/6", "4/6", "6/6"]
    assert all(" loss " in ln and " lr " in ln and ln.endswith("s") for ln in lines)
    assert "step " not in out


def test_progress_bar_replaces_the_lines(capsys):
    torch.manual_seed(0)
    cfg = TrainConfig(steps=4, batch_size=4, lr=1e-2, progress=True, log_every=1)
    Trainer(ToyEnhancer(), toy_loss, ToyPairs(), cfg).fit()
    assert not [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("step ")]
