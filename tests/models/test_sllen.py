"""SLLEN: shared encoder, HSF/IEF fusion, alternating training."""

from __future__ import annotations

import pytest
import torch

from semprior.models.sllen import (
    SLLEN,
    AlternatingSchedule,
    SegmentationDataset,
    SLLENAlternatingTrainer,
    SLLENConfig,
    SyntheticSegmentation,
)

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
    imgs, masks = zip(*(ds[i] for i in range(b)))
    return torch.stack(imgs), torch.stack(masks)


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


def test_alternating_schedule_alternates(model):
    assert [AlternatingSchedule(1, 1).kind(i) for i in range(4)] == ["lle", "seg", "lle", "seg"]
    assert [AlternatingSchedule(2, 1).kind(i) for i in range(6)] == ["lle", "lle", "seg"] * 2
    trainer = SLLENAlternatingTrainer(model, lr=1e-3, schedule=AlternatingSchedule(2, 1))
    calls = []
    trainer.lle_step = lambda low, high: calls.append("lle") or 0.0
    trainer.seg_step = lambda img, mask: calls.append("seg") or 0.0
    log = trainer.fit([pairs(1, 8)], [seg_batch(1, 8)], steps=3)
    assert calls == ["lle", "lle", "seg"]
    assert [k for k, _ in log] == ["lle", "lle", "seg"]
    assert trainer.step_count == 3 and len(trainer.history) == 3


def test_lle_step_freezes_aux_and_seg_step_freezes_main(model):
    trainer = SLLENAlternatingTrainer(model, lr=1e-2)
    enc, seg, lle = model.encoder_parameters(), model.seg_parameters(), model.lle_parameters()
    assert len(enc) + len(seg) + len(lle) == len(list(model.parameters()))

    b_enc, b_seg, b_lle = snapshot(enc), snapshot(seg), snapshot(lle)
    trainer.lle_step(*pairs())
    assert not any(changed(b_seg, seg)), "auxiliary network changed during an LLE step"
    assert all(changed(b_enc, enc))
    assert sum(changed(b_lle, lle)) > len(lle) // 2
    assert all(p.requires_grad for p in model.parameters()), "requires_grad not restored"

    b_enc, b_seg, b_lle = snapshot(enc), snapshot(seg), snapshot(lle)
    trainer.seg_step(*seg_batch())
    assert not any(changed(b_lle, lle)), "main network changed during a segmentation step"
    assert all(changed(b_enc, enc))
    assert all(changed(b_seg, seg))


@pytest.mark.slow
def test_steps_lower_losses_on_fixed_batches(model):
    trainer = SLLENAlternatingTrainer(model, lr=3e-3)
    low, high = pairs()
    img, mask = seg_batch()
    lle = [trainer.lle_step(low, high) for _ in range(3)]
    seg = [trainer.seg_step(img, mask) for _ in range(3)]
    assert lle[-1] < lle[0], lle
    assert seg[-1] < seg[0], seg


def test_segmentation_dataset_protocol_and_checks(model):
    ds = SyntheticSegmentation(3, size=16, num_classes=4, seed=2)
    assert isinstance(ds, SegmentationDataset)
    img, mask = ds[1]
    assert img.min() >= 0 and img.max() <= 1 and mask.dtype == torch.int64
    assert torch.equal(ds[1][1], mask)  # deterministic
    assert len(mask.unique()) >= 2
    trainer = SLLENAlternatingTrainer(model)
    img, mask = seg_batch()
    with pytest.raises(ValueError, match="outside"):
        trainer.seg_step(img, torch.full_like(mask, 7))
    with pytest.raises(TypeError, match="int64"):
        trainer.seg_step(img, mask.float())
    with pytest.raises(ValueError, match="ignore_index"):
        trainer.seg_step(img, torch.full_like(mask, 255))
    partly = mask.clone()
    partly[:, :4] = 255
    assert trainer.seg_step(img, partly) > 0  # ignored pixels are allowed
    with pytest.raises(TypeError, match="SLLEN"):
        SLLENAlternatingTrainer(torch.nn.Conv2d(3, 3, 1))


def test_seg_transform_is_applied(model):
    seen = []

    def darken(x):
        seen.append(x.shape)
        return x * 0.2

    trainer = SLLENAlternatingTrainer(model, seg_transform=darken)
    trainer.seg_step(*seg_batch())
    assert seen == [(2, 3, 12, 12)]


def test_bad_config():
    with pytest.raises(ValueError, match="ief_eval_layer"):
        SLLENConfig(depth=2, ief_eval_layer=2)
    with pytest.raises(ValueError, match="num_classes"):
        SLLENConfig(num_classes=1)
