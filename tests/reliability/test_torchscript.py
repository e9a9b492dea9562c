"""TorchScript weight files: tensors are read without running code; unpublished files need an opt-in."""

from __future__ import annotations

import ast
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from semprior._torchscript import TorchScriptReadError, is_torchscript, read_torchscript_state

PACKAGE = Path(__file__).resolve().parents[2] / "semprior"


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.blocks = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
        self.register_buffer("scale", torch.arange(3.0))
        self.fp16 = torch.nn.Parameter(torch.randn(5).half())
        self.mask = torch.ones(2, 2)  # a plain tensor attribute: not in the state dict

    def forward(self, x):
        return self.blocks(self.conv(x).mean((2, 3))) * self.mask.sum()


class SetState(torch.nn.Module):
    """Its __setstate__ is TorchScript code that torch.jit.load runs: it changes the weights."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))

    def forward(self, x):
        return x + self.w

    @torch.jit.export
    def __getstate__(self):
        return (self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]):
        self.w = state[0] + 7.0
        self.training = state[1]


def _scripted(module, path):
    torch.jit.script(module).save(str(path))
    return path


def test_tensors_equal_what_torch_jit_load_gives(tmp_path):
    torch.manual_seed(0)
    path = _scripted(Net(), tmp_path / "net.pt")
    assert is_torchscript(path)
    ours = read_torchscript_state(path)
    ref = torch.jit.load(str(path)).state_dict()
    assert set(ours) == set(ref) and "mask" not in ours
    for k, v in ref.items():
        assert ours[k].dtype == v.dtype and torch.equal(ours[k], v), k


def test_custom_setstate_is_refused_and_never_runs(tmp_path):
    path = _scripted(SetState(), tmp_path / "setstate.pt")
    with pytest.raises(TorchScriptReadError, match=r"restores its state with its own code"):
        read_torchscript_state(path)
    # control: torch.jit.load does run that code
    assert torch.equal(torch.jit.load(str(path)).w.detach(), torch.full((3,), 7.0))


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_payload_in_data_pkl_is_refused_and_never_runs(tmp_path):
    good = _scripted(Net(), tmp_path / "good.pt")
    marker = tmp_path / "PAYLOAD_RAN"
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data.pkl"):
                data = pickle.dumps(_Payload(marker), protocol=2)
            dst.writestr(item, data)
    with pytest.raises(TorchScriptReadError, match=r"references .*not a tensor"):
        read_torchscript_state(evil)
    assert not marker.exists()


def test_damaged_archives_are_one_line(tmp_path):
    good = _scripted(Net(), tmp_path / "good.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(TorchScriptReadError) as info:
        read_torchscript_state(cut)
    assert str(cut) in str(info.value) and "\n" not in str(info.value)


def test_no_torch_jit_load_in_the_package():
    """Nothing in semprior calls torch.jit.load (it runs the archive's code)."""
    found = []
    for py in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "load"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "jit"
            ):
                found.append(f"{py.relative_to(PACKAGE)}:{node.lineno}")
    assert not found, found


def test_clip_loss_refuses_an_unpublished_torchscript_file_before_reading_it(tmp_path, monkeypatch):
    pytest.importorskip("open_clip")
    import semprior._torchscript as T
    from semprior import CLIPPromptLoss

    path = _scripted(Net(), tmp_path / "ViT-B-16.pt")
    read = []
    monkeypatch.setattr(T, "read_torchscript_state", lambda p: read.append(p) or {})
    with pytest.raises(
        ValueError,
        match=r"sha256 [0-9a-f]{16}\.\.\. is not a published one \(ViT-B-16.pt 5806e77cd80f8b59"
        r".*allow_unverified=True",
    ):
        CLIPPromptLoss("ViT-B-16", pretrained=str(path))
    assert read == []  # refused before the archive was opened
