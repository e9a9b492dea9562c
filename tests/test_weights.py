"""Weights registry: resolution order, helpful errors, strict mapped loading, the CLI."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from semprior import weights as W
from semprior.cli.main import main


def test_known_weights_table_is_complete():
    names = set(W.KNOWN_WEIGHTS)
    assert {
        "hrnet_w48_ade20k",
        "hrnet_w48_pascal_context",
        "hrnet_w48_cityscapes",
        "csail_hrnetv2_encoder",
        "csail_hrnetv2_decoder",
        "sam_vit_b",
        "sam_vit_l",
        "sam_vit_h",
        "clip_vit_b16_openai",
    } <= names
    for w in W.KNOWN_WEIGHTS.values():
        assert w.filename and w.source_url and w.licence
        assert w.sha256 is None or len(w.sha256) == 64
        assert len(set(w.filenames)) == len(w.filenames)


# File names exactly as the upstream READMEs publish them (HRNet-Semantic-Segmentation: HRNet-OCR
# branch README tables, master/pytorch-v1.1 README test commands; CSAIL: its model folder; SAM:
# the segment-anything README; CLIP: OpenAI's clip/clip.py URL table).
README_NAMES = {
    "hrnet_w48_ade20k": ("hrnet_ade20k_4312_torch04.pth",),
    "hrnet_w48_pascal_context": ("hrnet_pascal_ctx_5410_torch11.pth", "hrnet_w48_pascal_context_cls59_480x480.pth"),
    "hrnet_w48_cityscapes": ("hrnet_cs_8090_torch11.pth", "hrnet_w48_cityscapes_cls19_1024x2048_trainset.pth"),
    "csail_hrnetv2_encoder": ("encoder_epoch_30.pth",),
    "csail_hrnetv2_decoder": ("decoder_epoch_30.pth",),
    "sam_vit_b": ("sam_vit_b_01ec64.pth",),
    "sam_vit_l": ("sam_vit_l_0b3195.pth",),
    "sam_vit_h": ("sam_vit_h_4b8939.pth",),
    "clip_vit_b16_openai": ("ViT-B-16.pt",),
}

# align_corners the releases were trained with (read from the official configs/code: the
# HRNet-OCR branch's lib/config/default.py sets MODEL.ALIGN_CORNERS True; the ADE20K configs keep
# it, the pascal_ctx and seg_hrnet_w48 cityscapes configs set False; CSAIL hard-codes False)
RELEASE_ALIGN_CORNERS = {
    "hrnet_w48_ade20k": True,
    "hrnet_w48_pascal_context": False,
    "hrnet_w48_cityscapes": False,
    "csail_hrnetv2_encoder": False,
    "csail_hrnetv2_decoder": False,
}


def test_table_lists_the_readme_names_and_release_settings():
    assert {n: W.KNOWN_WEIGHTS[n].filenames for n in README_NAMES} == README_NAMES
    assert {n: W.KNOWN_WEIGHTS[n].align_corners for n in RELEASE_ALIGN_CORNERS} == RELEASE_ALIGN_CORNERS


@pytest.mark.parametrize("name,filename", [(n, f) for n, fs in README_NAMES.items() for f in fs])
def test_every_readme_name_is_found_as_downloaded(tmp_path, name, filename):
    folder = tmp_path / "ade20k-hrnetv2-c1" if name.startswith("csail_") else tmp_path
    folder.mkdir(exist_ok=True)
    (folder / filename).write_bytes(b"x")
    assert W.resolve_weights(name, weights_dir=tmp_path) == folder / filename


def test_resolution_order(tmp_path, monkeypatch):
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(b"x")
    env_dir, arg_dir = tmp_path / "env", tmp_path / "arg"
    for d in (env_dir, arg_dir):
        d.mkdir()
        (d / "sam_vit_b_01ec64.pth").write_bytes(b"x")
    monkeypatch.setenv(W.ENV_VAR, str(env_dir))
    assert W.resolve_weights("sam_vit_b", explicit) == explicit
    assert W.resolve_weights("sam_vit_b", weights_dir=arg_dir) == arg_dir / "sam_vit_b_01ec64.pth"
    assert W.resolve_weights("sam_vit_b") == env_dir / "sam_vit_b_01ec64.pth"
    # CSAIL files live in their release folder name
    (env_dir / "ade20k-hrnetv2-c1").mkdir()
    (env_dir / "ade20k-hrnetv2-c1" / "encoder_epoch_30.pth").write_bytes(b"x")
    assert W.resolve_weights("csail_hrnetv2_encoder").parent.name == "ade20k-hrnetv2-c1"


def test_missing_weight_error_names_file_source_and_place(tmp_path, monkeypatch):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError) as e:
        W.resolve_weights("sam_vit_h")
    msg = str(e.value)
    assert "sam_vit_h_4b8939.pth" in msg and "dl.fbaipublicfiles.com" in msg and W.ENV_VAR in msg
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        W.resolve_weights("hrnet_w48_ade20k", weights_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        W.resolve_weights("sam_vit_b", tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="unknown weights"):
        W.resolve_weights("sam_vit_xxl")


def test_download_only_when_asked_and_only_direct_links(tmp_path, monkeypatch):
    fetched = []

    def fake_download(url, dst, progress=True):
        fetched.append(url)
        Path(dst).write_bytes(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    with pytest.raises(FileNotFoundError):
        W.resolve_weights("sam_vit_b", weights_dir=tmp_path)
    assert fetched == []
    p = W.resolve_weights("sam_vit_b", weights_dir=tmp_path, download=True)
    assert fetched == [W.KNOWN_WEIGHTS["sam_vit_b"].source_url] and p.read_bytes() == b"weights"
    manual = W.WeightsSpec("manual_only", "m.pth", None, "https://example.org/page", "MIT")
    monkeypatch.setitem(W.KNOWN_WEIGHTS, "manual_only", manual)
    with pytest.raises(FileNotFoundError, match="cannot be downloaded automatically"):
        W.resolve_weights("manual_only", weights_dir=tmp_path, download=True)
    assert fetched == [W.KNOWN_WEIGHTS["sam_vit_b"].source_url]


def test_load_checkpoint_is_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"w": Evil()}, f)
    with pytest.raises(RuntimeError, match="refusing to load"):
        W.load_checkpoint(tmp_path / "evil.pth")
    torch.save({"state_dict": {"a": torch.ones(2)}}, tmp_path / "ok.pth")
    assert set(W.load_checkpoint(tmp_path / "ok.pth")) == {"a"}
    torch.save({"epoch": 3}, tmp_path / "notensors.pth")
    with pytest.raises(ValueError, match="state dict of tensors"):
        W.load_checkpoint(tmp_path / "notensors.pth")


def test_load_mapped_strict_and_reports():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    src = {f"enc.{k}": torch.randn_like(v.float()).to(v.dtype) for k, v in net.state_dict().items()}
    src.pop("enc.1.num_batches_tracked")
    src["loss.weight"] = torch.ones(1)
    rep = W.load_mapped(
        net, src, lambda k: k[4:] if k.startswith("enc.") else None, source="t", ignore=lambda k: k.startswith("loss.")
    )
    assert (rep.matched, rep.total, rep.ignored) == (6, 7, 1) and rep.filled == ("1.num_batches_tracked",)
    torch.testing.assert_close(net[0].weight, src["enc.0.weight"])
    assert "loaded 6/7" in str(rep)
    with pytest.raises(ValueError, match="1 unexpected"):
        W.load_mapped(net, src, lambda k: k[4:] if k.startswith("enc.") else None, source="t")
    bad = dict(src, **{"enc.0.weight": torch.zeros(3, 1, 1, 1)})
    with pytest.raises(ValueError, match="shape mismatch"):
        W.load_mapped(net, bad, lambda k: k[4:], source="t", ignore=lambda k: True)
    with pytest.raises(ValueError, match="missing"):
        W.load_mapped(net, {"enc.0.weight": src["enc.0.weight"]}, lambda k: k[4:], source="t")


def test_cli_lists_and_checks(tmp_path, capsys):
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    assert "sam_vit_b_01ec64.pth" in out and "Apache-2.0" in out
    assert "or hrnet_w48_pascal_context_cls59_480x480.pth" in out and "align_corners=True" in out
    torch.save({"image_encoder.w": torch.ones(1)}, tmp_path / "sam_vit_b_01ec64.pth")
    (tmp_path / "sam_vit_l_0b3195.pth").write_bytes(b"not a checkpoint")
    assert main(["weights", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "present (no published sha256)" in out and "loads (1 tensors)" in out
    assert "found as sam_vit_b_01ec64.pth" in out
    n = len(W.KNOWN_WEIGHTS)
    assert "DOES NOT LOAD" in out and "missing" in out and f"2/{n} present, 1 with problems" in out
    # a file saved under the other README's name is found, and the check says which name
    torch.save({"model.w": torch.ones(1)}, tmp_path / "hrnet_w48_pascal_context_cls59_480x480.pth")
    main(["weights", "--dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "found as hrnet_w48_pascal_context_cls59_480x480.pth" in out and f"3/{n} present" in out
    assert main(["weights", "--dir", str(tmp_path / "none")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_load_mapped_skips_bookkeeping_and_reports_settings():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    src = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in net.state_dict().items()}
    src.update({"1._tmp_running_mean": torch.zeros(2), "1._running_iter": torch.ones(1)})
    skip = lambda k: k.endswith(("_tmp_running_mean", "_running_iter"))  # noqa: E731
    rep = W.load_mapped(net, src, lambda k: k, source="t", skip=skip)
    assert (rep.matched, rep.total, rep.skipped, rep.ignored) == (7, 7, 2, 0)
    assert "(2 training bookkeeping buffers skipped)" in str(rep)
    from dataclasses import replace

    assert str(replace(rep, settings="align_corners=True (release default, x)")).endswith(
        "; align_corners=True (release default, x)"
    )
    with pytest.raises(ValueError, match="2 unexpected"):  # without the rule they are unknown keys
        W.load_mapped(net, src, lambda k: k, source="t")
