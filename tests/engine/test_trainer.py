import os

import pytest
import torch
from _toy import ToyEnhancer, ToyPairs, toy_loss

from semprior.engine import PatchSchedule, TrainConfig, Trainer, load_checkpoint, save_checkpoint


def _trainer(out=None, steps=8, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(steps=steps, batch_size=4, lr=1e-2, progress=False, log_every=1, **kw)
    return Trainer(ToyEnhancer(), toy_loss, ToyPairs(), cfg, out_dir=out)


def test_training_lowers_loss_on_fixed_data():
    t = _trainer(steps=30, lr_schedule="constant")
    batch = {"low": t.data.high[:4] * 0.3, "high": t.data.high[:4]}
    t.net.eval()
    with torch.no_grad():
        before = float(toy_loss(t.net, batch)[0])
    res = t.fit()
    t.net.eval()
    with torch.no_grad():
        after = float(toy_loss(t.net, batch)[0])
    assert res.step == 30
    assert after < 0.5 * before
    assert [s for s, _ in res.curves["loss"]] == list(range(1, 31))
    assert "mse" in res.curves


def test_resume_is_exact(tmp_path):
    full = _trainer(tmp_path / "a", steps=10, patch_stages=((0, 8), (5, 12)))
    full.fit()
    half = _trainer(tmp_path / "b", steps=10, patch_stages=((0, 8), (5, 12)))
    half.fit(steps=5)  # stops mid-epoch (4 batches per epoch) and mid-schedule
    assert (tmp_path / "b" / "last.pt").is_file()
    torch.manual_seed(999)  # a different global RNG state must not matter after resume
    resumed = _trainer(tmp_path / "b", steps=10, patch_stages=((0, 8), (5, 12)))
    resumed.resume(tmp_path / "b" / "last.pt")
    assert resumed.step == 5
    resumed.fit()
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert full.curves["loss"] == resumed.curves["loss"]
    assert (tmp_path / "b" / "loss_curve.png").stat().st_size > 1000


def test_set_epoch_and_patch_schedule_used():
    t = _trainer(steps=9, patch_stages=((0, 6), (4, 10)))
    seen = []
    orig = t.loss_fn
    t.loss_fn = lambda m, b: (seen.append(b["low"].shape[-1]), orig(m, b))[1]
    t.fit()
    assert seen == [6] * 4 + [10] * 5
    assert t.data.epochs_seen[:3] == [0, 1, 2]


def test_atomic_checkpoint_keeps_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "ck.pt"
    save_checkpoint({"step": 1, "w": torch.ones(2)}, p)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2}, p)
    monkeypatch.undo()
    assert load_checkpoint(p)["step"] == 1
    assert [f.name for f in tmp_path.iterdir()] == ["ck.pt"]  # temp file removed


def test_checkpoint_loading_is_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    p = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, p)
    with pytest.raises(RuntimeError, match="weights_only"):
        load_checkpoint(p)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_config_and_schedule_validation():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="step 0"):
        PatchSchedule([(5, 64)])
    with pytest.raises(ValueError, match="increase"):
        PatchSchedule([(0, 64), (0, 128)])
    with pytest.raises(ValueError, match="fewer than the global batch_size"):
        Trainer(ToyEnhancer(), toy_loss, ToyPairs(n=2), TrainConfig(batch_size=4, progress=False))
    with pytest.raises(ValueError, match="validate"):
        Trainer(ToyEnhancer(), toy_loss, ToyPairs(), TrainConfig(batch_size=4, val_every=2, progress=False))


def test_validation_best_checkpoint_and_early_stop(tmp_path):
    scores = iter([1.0, 2.0, 1.5, 1.4, 1.3, 9.0])
    torch.manual_seed(0)
    cfg = TrainConfig(steps=12, batch_size=4, val_every=2, early_stop_patience=2, progress=False)
    t = Trainer(ToyEnhancer(), toy_loss, ToyPairs(), cfg, out_dir=tmp_path, validate=lambda m: {"psnr": next(scores)})
    res = t.fit()
    assert res.stopped_early and res.step == 8 and res.best == 2.0
    assert load_checkpoint(tmp_path / "best.pt")["step"] == 4


def test_time_budget_stops_early_and_checkpoints(tmp_path):
    t = _trainer(tmp_path, steps=1000)
    res = t.fit(max_seconds=0.0)
    assert res.out_of_time and res.step == 1
    assert (tmp_path / "last.pt").is_file()
