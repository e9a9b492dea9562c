"""Weights registry: resolution order, helpful errors, strict mapped loading, the CLI."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from semprior import weights as W
from semprior.cli.main import main


def test_known_weights_table_is_complete():
    names = set(W.KNOWN_WEIGHTS)
    assert {"hrnet_w48_ade20k", "hrnet_w48_pascal_context", "csail_hrnetv2_encoder", "csail_hrnetv2_decoder",
            "sam_vit_b", "sam_vit_l", "sam_vit_h", "clip_vit_b16_openai"} <= names
    for w in W.KNOWN_WEIGHTS.values():
        assert w.filename and w.source_url and w.licence
        assert w.sha256 is None or len(w.sha256) == 64


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
        open(dst, "wb").write(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    with pytest.raises(FileNotFoundError):
        W.resolve_weights("sam_vit_b", weights_dir=tmp_path)
    assert fetched == []
    p = W.resolve_weights("sam_vit_b", weights_dir=tmp_path, download=True)
    assert fetched == [W.KNOWN_WEIGHTS["sam_vit_b"].source_url] and p.read_bytes() == b"weights"
    with pytest.raises(FileNotFoundError, match="cannot be downloaded automatically"):
        W.resolve_weights("hrnet_w48_ade20k", weights_dir=tmp_path, download=True)


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
    rep = W.load_mapped(net, src, lambda k: k[4:] if k.startswith("enc.") else None, source="t",
                        ignore=lambda k: k.startswith("loss."))
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
    torch.save({"image_encoder.w": torch.ones(1)}, tmp_path / "sam_vit_b_01ec64.pth")
    (tmp_path / "sam_vit_l_0b3195.pth").write_bytes(b"not a checkpoint")
    assert main(["weights", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "present (no published sha256)" in out and "loads (1 tensors)" in out
    assert "DOES NOT LOAD" in out and "missing" in out and "2/8 present, 1 with problems" in out
    assert main(["weights", "--dir", str(tmp_path / "none")]) == 1
    assert "does not exist" in capsys.readouterr().err
