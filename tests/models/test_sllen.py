"""SLLEN: shared encoder, HSF/IEF fusion, alternating training on engine.Trainer (sllen_phases)."""

from __future__ import annotations

import json

import pytest
import torch

from semprior.data import LowLightSegmentation, SegmentationDataset, SyntheticSegmentation
from semprior.engine import TrainConfig, Trainer
from semprior.models.sllen import SLLEN, SLLENConfig, sllen_phases, sllen_segmentation_loss

TINY = SLLENConfig(width=4, depth=2, num_classes=3)


def snapshot(params):
    return [p.detach().clone() for p in params]


def changed(before, params):
    return [not torch.equal(b, p.detach()) for b, p in zip(before, params)]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return SLLEN(TINY)


def pairs(b=2, size=12):
    g = torch.Generator().manual_seed(1)
    low = torch.rand(b, 3, size, size, generator=g) * 0.25
    return low, (low * 3).clamp(0, 1)


def seg_batch(b=2, size=12):
    ds = SyntheticSegmentation(b, size=size, num_classes=3)
    return {k: torch.stack([ds[i][k] for i in range(b)]) for k in ("image", "mask")}


class Pairs(torch.utils.data.Dataset):
    def __init__(self, n=4, size=12):
        g = torch.Generator().manual_seed(1)
        self.low = torch.rand(n, 3, size, size, generator=g) * 0.25

    def __len__(self):
        return len(self.low)

    def __getitem__(self, i):
        return {"low": self.low[i], "high": (self.low[i] * 3).clamp(0, 1)}


def trainer(model, steps=4, out=None, lle_steps=1, seg_steps=1, n=4, **kw):
    cfg = TrainConfig(steps=steps, batch_size=2, progress=False, log_every=1, **{"lr": 1e-2, **kw})
    data = {"train": Pairs(n), "segmentation": SyntheticSegmentation(n, size=12, num_classes=3)}
    return Trainer(model, sllen_phases(lle_steps, seg_steps), data, cfg, out_dir=out)


@pytest.mark.parametrize("hw", [(17, 22), (9, 5), (16, 16)])
def test_shapes_odd_sizes(model, hw):
    model.eval()
    out = model.forward_all(torch.rand(2, 3, *hw))
    assert out.image.shape == (2, 3, *hw)
    assert out.seg_logits.shape == (2, 3, *hw)
    assert out.ief.shape == (2, TINY.width, *hw)
    assert out.hsf.shape[1] == TINY.width * 2**TINY.depth
    assert model.segment(torch.rand(1, 3, *hw)).shape == (1, 3, *hw)


def test_ief_layer_random_in_training_fixed_in_eval(model):
    torch.manual_seed(0)
    model.train()
    drawn = {model.pick_ief_layer() for _ in range(40)}
    assert drawn == set(range(TINY.depth))
    model.eval()
    assert {model.pick_ief_layer() for _ in range(10)} == {TINY.depth - 1}
    fixed = SLLEN(SLLENConfig(width=4, depth=2, num_classes=3, ief_eval_layer=0)).eval()
    assert fixed.forward_all(torch.rand(1, 3, 8, 8)).ief_layer == 0
    with pytest.raises(ValueError, match="ief_layer"):
        model.forward_all(torch.rand(1, 3, 8, 8), ief_layer=5)


def test_ief_actually_used(model):
    model.eval()
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        a = model.forward_all(x, ief_layer=0).image
        b = model.forward_all(x, ief_layer=1).image
    assert not torch.allclose(a, b)


def test_alternation_order_and_log(model, tmp_path):
    t = trainer(model, steps=6, out=tmp_path, lle_steps=2, seg_steps=1)
    t.fit()
    recs = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in recs] == ["lle", "lle", "seg"] * 2
    assert all(("l1" in r) == (r["phase"] == "lle") and ("ce" in r) == (r["phase"] == "seg") for r in recs)
    assert set(t.curves) == {"lle/loss", "lle/l1", "seg/loss", "seg/ce"}


def test_lle_step_freezes_aux_and_seg_step_freezes_main(model):
    t = trainer(model)
    enc, seg, lle = model.encoder_parameters(), model.seg_parameters(), model.lle_parameters()
    assert len(enc) + len(seg) + len(lle) == len(list(model.parameters()))

    b_enc, b_seg, b_lle = snapshot(enc), snapshot(seg), snapshot(lle)
    low, high = pairs()
    assert t.schedule.phase(t.step).name == "lle"
    t.train_step({"low": low, "high": high})
    assert not any(changed(b_seg, seg)), "auxiliary network changed during an LLE step"
    assert all(changed(b_enc, enc))
    assert sum(changed(b_lle, lle)) > len(lle) // 2
    assert all(p.requires_grad for p in model.parameters()), "requires_grad not restored"

    b_enc, b_seg, b_lle = snapshot(enc), snapshot(seg), snapshot(lle)
    assert t.schedule.phase(t.step).name == "seg"
    t.train_step(seg_batch())
    assert not any(changed(b_lle, lle)), "main network changed during a segmentation step"
    assert all(changed(b_enc, enc))
    assert all(changed(b_seg, seg))


@pytest.mark.slow
def test_alternating_training_lowers_both_losses_on_fixed_batches(model):
    # one batch per source (2 items, batch 2): every step of a phase sees the same images
    torch.manual_seed(0)
    # (at 3e-3 the segmentation task starts to win the shared encoder and the L1 jumps back up)
    t = trainer(model, steps=24, n=2, lr=1e-3, lr_schedule="constant")
    t.fit()
    lle, seg = [v for _, v in t.curves["lle/loss"]], [v for _, v in t.curves["seg/loss"]]
    assert sum(lle[-3:]) < 0.8 * sum(lle[:3]), lle
    assert sum(seg[-3:]) < 0.98 * sum(seg[:3]) and seg == sorted(seg, reverse=True), seg


def test_resume_is_exact(tmp_path):
    # N steps == N/2, resume, N/2 (the IEF layer is drawn from the global RNG, saved in the checkpoint;
    # each source's data position follows from the step)
    def make(out, seed=0):
        torch.manual_seed(seed)
        return trainer(SLLEN(TINY), steps=7, out=out, lle_steps=2, n=6)

    full = make(tmp_path / "a")
    full.fit()
    half = make(tmp_path / "b")
    half.fit(steps=4)
    resumed = make(tmp_path / "b", seed=123)  # other initial weights and RNG: the checkpoint restores both
    resumed.resume(tmp_path / "b" / "last.pt")
    assert resumed.step == 4
    resumed.fit()
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert full.curves == resumed.curves


def test_segmentation_loss_checks_its_batch(model):
    b = seg_batch()
    ce, terms = sllen_segmentation_loss(model, b)
    assert ce > 0 and set(terms) == {"ce"}
    with pytest.raises(ValueError, match="outside"):
        sllen_segmentation_loss(model, {**b, "mask": torch.full_like(b["mask"], 7)})
    with pytest.raises(TypeError, match="int64"):
        sllen_segmentation_loss(model, {**b, "mask": b["mask"].float()})
    with pytest.raises(ValueError, match="ignore_index"):
        sllen_segmentation_loss(model, {**b, "mask": torch.full_like(b["mask"], 255)})
    partly = b["mask"].clone()
    partly[:, :4] = 255
    assert sllen_segmentation_loss(model, {**b, "mask": partly})[0] > 0  # ignored pixels are allowed
    with pytest.raises(ValueError, match="task"):
        model(b["image"], task="depth")
    torch.testing.assert_close(model(b["image"], task="segment"), model.segment(b["image"]))


def test_segmentation_data_moved_to_semprior_data():
    ds = SyntheticSegmentation(3, size=16, num_classes=4, seed=2)
    assert isinstance(ds, SegmentationDataset)
    item = ds[1]
    assert item["image"].min() >= 0 and item["image"].max() <= 1 and item["mask"].dtype == torch.int64
    assert torch.equal(ds[1]["mask"], item["mask"])  # deterministic
    assert len(item["mask"].unique()) >= 2
    dark = LowLightSegmentation(ds, seed=5)
    assert isinstance(dark, SegmentationDataset) and torch.equal(dark[1]["mask"], item["mask"])
    assert dark[1]["image"].mean() < item["image"].mean()
    assert torch.equal(dark[1]["image"], dark[1]["image"])
    first = dark[1]["image"]
    dark.set_epoch(1)
    assert not torch.equal(dark[1]["image"], first)  # a new degradation each epoch
    import semprior.models.sllen as sllen_module

    assert not hasattr(sllen_module, "SLLENAlternatingTrainer") and not hasattr(sllen_module, "SyntheticSegmentation")


def test_bad_config():
    with pytest.raises(ValueError, match="ief_eval_layer"):
        SLLENConfig(depth=2, ief_eval_layer=2)
    with pytest.raises(ValueError, match="num_classes"):
        SLLENConfig(num_classes=1)
