"""HRNet checkpoints in both public layouts, written synthetically with the upstream key names."""

from __future__ import annotations

import pytest
import torch

from semprior.priors import HRNetPrior

# Key names of the upstream model classes (HRNet/HRNet-Semantic-Segmentation lib/models/seg_hrnet.py
# and CSAILVision/semantic-segmentation-pytorch mit_semseg/models/hrnet.py share the backbone
# names); present in every HRNetV2 variant.
UPSTREAM_BACKBONE_KEYS = [
    "conv1.weight",
    "bn1.running_var",
    "conv2.weight",
    "bn2.bias",
    "layer1.0.conv1.weight",
    "layer1.0.downsample.0.weight",
    "layer1.0.downsample.1.running_mean",
    "transition1.0.0.weight",
    "transition1.1.0.0.weight",
    "stage2.0.branches.0.0.conv1.weight",
    "stage2.0.branches.1.0.bn2.weight",
    "stage2.0.fuse_layers.0.1.0.weight",
    "stage2.0.fuse_layers.0.1.1.running_var",
    "stage2.0.fuse_layers.1.0.0.0.weight",
    "transition2.2.0.0.weight",
    "transition3.3.0.0.weight",
    "stage4.0.fuse_layers.3.0.2.0.weight",
    "stage4.0.fuse_layers.0.3.0.weight",
]


def _randomise(prior: HRNetPrior, seed: int) -> HRNetPrior:
    """Non-trivial weights and BN statistics, so a wrong key map cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in prior.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * (0.5 / max(1, t[0].numel()) ** 0.5))
    return prior


def _to_hrnet_seg(sd: dict, prefix: str = "model.") -> dict:
    out = {}
    for k, v in sd.items():
        if k.startswith("backbone."):
            out[prefix + k[len("backbone."):]] = v.clone()
        elif k.startswith("head."):
            out[prefix + "last_layer." + k[len("head."):]] = v.clone()
        else:
            raise AssertionError(k)
    return out


def _to_csail(sd: dict) -> tuple[dict, dict]:
    enc, dec = {}, {}
    names = {"0": "cbr.0", "1": "cbr.1", "3": "conv_last"}
    for k, v in sd.items():
        if k.startswith("backbone."):
            enc[k[len("backbone."):]] = v.clone()
        else:
            idx, rest = k[len("head."):].split(".", 1)
            dec[f"{names[idx]}.{rest}"] = v.clone()
    return enc, dec


@pytest.fixture(scope="module")
def x():
    return torch.rand(1, 3, 30, 37, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def ref_seg():
    return _randomise(HRNetPrior("w18_small", dataset="ade20k"), seed=1)


@pytest.fixture(scope="module")
def ref_c1():
    return _randomise(HRNetPrior("w18_small", dataset="ade20k", head="c1"), seed=2)


def test_backbone_uses_upstream_key_names(ref_seg):
    keys = set(_to_hrnet_seg(ref_seg.state_dict(), prefix=""))
    missing = [k for k in UPSTREAM_BACKBONE_KEYS if k not in keys]
    assert not missing
    assert {"last_layer.0.weight", "last_layer.1.running_mean", "last_layer.3.bias"} <= keys


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["model.", ""])
def test_hrnet_seg_format_loads_strictly_and_matches(tmp_path, x, prefix, ref_seg):
    ref = ref_seg
    state = _to_hrnet_seg(ref.state_dict(), prefix=prefix)
    if prefix:
        state["loss.criterion.weight"] = torch.ones(150)  # saved by the training wrapper; ignored
    path = tmp_path / "hrnet_w18_small_ade20k.pth"
    torch.save(state, path)
    loaded = HRNetPrior("w18_small", dataset="ade20k", weights=path)
    assert loaded.head_kind == "hrnetv2"
    assert loaded.load_report.matched == loaded.load_report.total == len(state) - bool(prefix)
    assert loaded.load_report.ignored == bool(prefix)
    a, b = ref(x), loaded(x)
    torch.testing.assert_close(b.logits, a.logits, rtol=0, atol=0)
    for fa, fb in zip(a.features, b.features):
        torch.testing.assert_close(fb, fa, rtol=0, atol=0)
    other = _randomise(HRNetPrior("w18_small", dataset="ade20k"), seed=9)(x)
    assert not torch.allclose(other.logits, a.logits)


@pytest.mark.slow
def test_csail_pair_loads_strictly_and_matches(tmp_path, x, ref_c1):
    ref = ref_c1
    enc, dec = _to_csail(ref.state_dict())
    assert set(dec) >= {"cbr.0.weight", "cbr.1.running_var", "conv_last.weight", "conv_last.bias"}
    folder = tmp_path / "ade20k-hrnetv2-c1"
    folder.mkdir()
    torch.save(enc, folder / "encoder_epoch_30.pth")
    torch.save(dec, folder / "decoder_epoch_30.pth")
    for weights in (folder, (folder / "encoder_epoch_30.pth", folder / "decoder_epoch_30.pth")):
        loaded = HRNetPrior("w18_small", dataset="ade20k", weights=weights)
        assert loaded.head_kind == "c1"
        assert loaded.load_report.matched == len(enc) + len(dec) == loaded.load_report.total
        torch.testing.assert_close(loaded(x).logits, ref(x).logits, rtol=0, atol=0)


@pytest.mark.slow
def test_old_checkpoint_without_num_batches_tracked(tmp_path, x, ref_seg):
    ref = ref_seg
    state = {k: v for k, v in _to_hrnet_seg(ref.state_dict()).items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": state}, tmp_path / "old.pth")
    loaded = HRNetPrior("w18_small", weights=tmp_path / "old.pth")
    assert loaded.load_report.filled and loaded.load_report.matched == len(state)
    torch.testing.assert_close(loaded(x).logits, ref(x).logits, rtol=0, atol=0)


def test_missing_key_is_an_error(tmp_path, ref_seg):
    state = _to_hrnet_seg(ref_seg.state_dict())
    del state["model.stage3.0.branches.2.0.conv1.weight"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="1 missing"):
        HRNetPrior("w18_small", weights=tmp_path / "bad.pth")


def test_unexpected_key_is_an_error(tmp_path, ref_seg):
    state = _to_hrnet_seg(ref_seg.state_dict())
    state["model.aux_head.0.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="unexpected"):
        HRNetPrior("w18_small", weights=tmp_path / "bad.pth")


def test_wrong_number_of_classes_is_an_error(tmp_path):
    state = _to_hrnet_seg(HRNetPrior("w18_small", dataset="pascal_context").state_dict())
    torch.save(state, tmp_path / "pc.pth")
    with pytest.raises(ValueError, match="shape mismatch for 'model.last_layer.3.weight'"):
        HRNetPrior("w18_small", dataset="ade20k", weights=tmp_path / "pc.pth")


def test_head_must_match_format(tmp_path, ref_seg):
    torch.save(_to_hrnet_seg(ref_seg.state_dict()), tmp_path / "a.pth")
    with pytest.raises(ValueError, match="head='c1' does not match"):
        HRNetPrior("w18_small", weights=tmp_path / "a.pth", head="c1")


def test_missing_file_and_auto_without_weights(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HRNetPrior("w18_small", weights=tmp_path / "nope.pth")
    monkeypatch.delenv("SEMPRIOR_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match="encoder_epoch_30.pth.*sceneparsing"):
        HRNetPrior("w48", weights="auto")


@pytest.mark.slow
def test_w48_layout_matches_the_public_checkpoints():
    """Shapes of the real W48 checkpoints (from the upstream model definitions)."""
    seg = _to_hrnet_seg(HRNetPrior("w48", dataset="ade20k").state_dict(), prefix="")
    expect = {
        "last_layer.0.weight": (720, 720, 1, 1),
        "last_layer.3.weight": (150, 720, 1, 1),
        "layer1.3.conv3.weight": (256, 64, 1, 1),
        "transition1.0.0.weight": (48, 256, 3, 3),
        "transition3.3.0.0.weight": (384, 192, 3, 3),
        "stage3.3.branches.2.3.conv2.weight": (192, 192, 3, 3),
        "stage4.2.fuse_layers.3.0.2.0.weight": (384, 48, 3, 3),
        "stage4.2.fuse_layers.0.3.0.weight": (48, 384, 1, 1),
    }
    assert {k: tuple(seg[k].shape) for k in expect} == expect
    _, dec = _to_csail(HRNetPrior("w48", dataset="ade20k", head="c1").state_dict())
    assert tuple(dec["cbr.0.weight"].shape) == (180, 720, 3, 3)
    assert tuple(dec["conv_last.weight"].shape) == (150, 180, 1, 1)
