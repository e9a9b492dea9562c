"""Backend-specific behaviour: RegionPrior's signal, SAM and timm checkpoint loading, SAM region map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _prior_builders import tiny_sam_encoder

from semprior.losses.semantic_kl import semantic_kl_loss
from semprior.priors import RegionPrior, SAMPrior, TimmPrior, pad_to_multiple


def _photo(size=128):
    skimage = pytest.importorskip("skimage")
    img = torch.from_numpy(np.ascontiguousarray(skimage.data.astronaut())).permute(2, 0, 1)[None].float() / 255
    return torch.nn.functional.interpolate(img, size=(size, size), mode="area")


# ---------------------------------------------------------------- RegionPrior
def test_region_prior_is_exposure_invariant():
    prior, img = RegionPrior(), _photo()
    bright, dark = prior(img), prior(img * 0.15)  # a 0.15x exposure, as a low-light shot
    for a, b in zip(bright.features, dark.features):
        torch.testing.assert_close(b, a, atol=0.03, rtol=0)
    assert (bright.logits.argmax(1) == dark.logits.argmax(1)).float().mean() > 0.97


def test_region_prior_follows_colour_boundaries():
    img = torch.zeros(1, 3, 64, 64)
    img[:, 0, :, :32] = 0.8  # red left half
    img[:, 2, :, 32:] = 0.6  # blue right half
    lab = RegionPrior(grid=(2, 2))(img).logits.argmax(1)[0]  # (32, 32) at stride 2
    left, right = set(lab[:, :16].unique().tolist()), set(lab[:, 16:].unique().tolist())
    assert left and right and not (left & right)  # no region spans the colour edge


def test_region_logits_drive_the_semantic_kl_loss():
    prior = RegionPrior()
    a, b = _photo(64), _photo(64).flip(-1)
    la, lb = prior(a).logits, prior(b).logits
    assert semantic_kl_loss(la, la).item() == pytest.approx(0.0, abs=1e-6)
    assert semantic_kl_loss(lb, la).item() > 0.05


def test_region_prior_arguments():
    assert RegionPrior(levels=2, base_stride=1).spec.strides == (1, 2)
    assert RegionPrior(grid=(3, 5)).spec.num_classes == 15
    for kwargs in (dict(levels=0), dict(base_stride=4), dict(grid=(0, 2)), dict(temperature=0.0)):
        with pytest.raises(ValueError):
            RegionPrior(**kwargs)


# ---------------------------------------------------------------- SAM
def _tiny_sam(encoder=None):
    """A full segment_anything ``Sam`` (the official modules; tiny sizes)."""
    pytest.importorskip("segment_anything")
    from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    return Sam(
        image_encoder=encoder or tiny_sam_encoder(),
        prompt_encoder=PromptEncoder(
            embed_dim=256, image_embedding_size=(4, 4), input_image_size=(64, 64), mask_in_chans=16
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer_dim=256,
            iou_head_depth=1,
            iou_head_hidden_dim=32,
            transformer=TwoWayTransformer(depth=1, embedding_dim=256, mlp_dim=64, num_heads=2),
        ),
    )


def _sam_state(encoder):
    """A SAM checkpoint with exactly the keys Meta's files carry: ``Sam.state_dict()`` (what
    ``build_sam`` loads with ``strict=True``; ``pixel_mean``/``pixel_std`` are non-persistent)."""
    return {k: v.clone() for k, v in _tiny_sam(encoder).state_dict().items()}


def test_sam_checkpoint_loads_image_encoder_strictly(tmp_path):
    ref = SAMPrior(model=tiny_sam_encoder())
    state = _sam_state(ref.encoder)
    assert not any(k.startswith("pixel_") for k in state)
    assert {k.split(".", 1)[0] for k in state} == {"image_encoder", "prompt_encoder", "mask_decoder"}
    torch.save(state, tmp_path / "sam_tiny.pth")
    torch.manual_seed(123)
    from segment_anything.modeling import ImageEncoderViT

    other = ImageEncoderViT(img_size=64, patch_size=16, embed_dim=96, depth=2, num_heads=2, out_chans=256)
    loaded = SAMPrior(model=other, checkpoint=tmp_path / "sam_tiny.pth")
    rep = loaded.load_report
    n_enc = len(ref.encoder.state_dict())
    assert rep.matched == rep.total == n_enc and rep.ignored == len(state) - n_enc > 0
    x = torch.rand(1, 3, 50, 90)
    # same modules, weights, shapes and strides in one process: bitwise
    torch.testing.assert_close(loaded(x).features[0], ref(x).features[0], rtol=0, atol=0)

    # the full checkpoint also loads into a full Sam (region-map path), every key used
    full = SAMPrior(model=_tiny_sam(), checkpoint=tmp_path / "sam_tiny.pth", region_map=True)
    assert full.load_report.matched == full.load_report.total == len(state) and full.load_report.ignored == 0

    bad = _sam_state(ref.encoder)
    del bad["image_encoder.neck.0.weight"]
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="1 missing"):
        SAMPrior(model=tiny_sam_encoder(), checkpoint=tmp_path / "bad.pth")


def test_sam_auto_checkpoint_missing_is_helpful(tmp_path):
    with pytest.raises(FileNotFoundError, match="sam_vit_b_01ec64.pth"):
        SAMPrior(model=tiny_sam_encoder(), checkpoint="auto", weights_dir=tmp_path)


def test_sam_region_map_from_tiny_sam():
    torch.manual_seed(0)
    sam = _tiny_sam()
    prior = SAMPrior(
        model=sam,
        region_map=True,
        mask_generator_kwargs=dict(
            points_per_side=2, pred_iou_thresh=-1e9, stability_score_thresh=-1e9, box_nms_thresh=1.0
        ),
    )
    out = prior(torch.rand(1, 3, 40, 52))
    regions = out.extras["regions"]
    assert regions.shape == (1, 1, 40, 52) and regions.dtype == torch.int64
    assert regions.min() >= 0 and regions.max() >= 1  # at least one mask was painted
    with pytest.raises(ValueError, match="full Sam"):
        SAMPrior(model=tiny_sam_encoder(), region_map=True)


# ---------------------------------------------------------------- timm
def test_timm_prior_loads_a_full_model_checkpoint(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(5)
    full = timm.create_model("resnet18")
    torch.save(full.state_dict(), tmp_path / "r18.pth")
    prior = TimmPrior("resnet18", weights=tmp_path / "r18.pth", out_indices=(1, 2))
    rep = prior.load_report
    # the truncated features_only model (layer1, layer2) is complete; fc and layer3/4 are unused
    assert rep.matched == rep.total and rep.ignored == len(full.state_dict()) - rep.total > 0
    x = torch.rand(1, 3, 45, 45)
    full.eval()
    with torch.no_grad():
        y = (pad_to_multiple(x, 8) - prior.mean) / prior.std
        f1 = full.layer1(full.maxpool(full.act1(full.bn1(full.conv1(y)))))
        f2 = full.layer2(f1)
    out = prior(x).features
    torch.testing.assert_close(out[0], f1[..., :12, :12], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1], f2[..., :6, :6], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="either pretrained"):
        TimmPrior("resnet18", pretrained=True, weights=tmp_path / "r18.pth")
