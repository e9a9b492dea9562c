"""semprior.hub.push_to_hub / from_hub through huggingface_hub, offline.

``from_hub`` reads a Hugging Face cache laid out by hand (``models--org--name/refs/main`` +
``snapshots/<commit>/``) with ``local_files_only=True`` while every socket is refused;
``push_to_hub`` talks to a fake ``HfApi`` that records the folder it is asked to upload.
"""

from __future__ import annotations

import shutil
import socket
import sys

import pytest
import torch

import semprior
from semprior.hub import from_hub, push_to_hub
from semprior.models.io import CONFIG_NAME, WEIGHTS_NAME, save_pretrained

hf = pytest.importorskip("huggingface_hub")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _tiny():
    torch.manual_seed(0)
    return semprior.create_model("retinexformer", width=4, blocks=(1, 1, 1))


def _cache_with(tmp_path, model, repo="someone/tiny-retinexformer"):
    cache = tmp_path / "hf-cache"
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    save_pretrained(model, repo_dir / "snapshots" / COMMIT)
    return cache


def test_from_hub_reads_the_cache_offline(tmp_path, no_network):
    model = _tiny()
    cache = _cache_with(tmp_path, model)
    again = from_hub("hf://someone/tiny-retinexformer", cache_dir=cache, local_files_only=True)
    assert type(again).__name__ == "Retinexformer" and not again.training
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model.eval()(x))


def test_from_hub_missing_from_cache_offline(tmp_path, no_network):
    cache = _cache_with(tmp_path, _tiny())
    with pytest.raises(FileNotFoundError, match="someone/other.*not in the Hugging Face cache.*only the cache is read"):
        from_hub("someone/other", cache_dir=cache, local_files_only=True)


def test_push_to_hub_uploads_exactly_save_pretrained_files(tmp_path, monkeypatch, no_network):
    calls, uploaded = [], tmp_path / "uploaded"

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create_repo", repo_id, kw))

        def upload_folder(self, *, repo_id, folder_path, allow_patterns, **kw):
            calls.append(("upload_folder", repo_id, sorted(allow_patterns)))
            shutil.copytree(folder_path, uploaded)
            return type("CommitInfo", (), {"commit_url": f"https://hub.invalid/{repo_id}/commit/{COMMIT}"})()

    monkeypatch.setattr(hf, "HfApi", FakeApi)
    model = _tiny()
    url = push_to_hub(model, "hf://someone/tiny", token="t0k", private=True)
    assert url.endswith(COMMIT)
    assert calls[0] == ("init", "t0k")
    assert calls[1] == ("create_repo", "someone/tiny", {"private": True, "exist_ok": True, "repo_type": "model"})
    assert calls[2] == ("upload_folder", "someone/tiny", sorted([CONFIG_NAME, WEIGHTS_NAME]))
    assert sorted(p.name for p in uploaded.iterdir()) == sorted([CONFIG_NAME, WEIGHTS_NAME])
    local = save_pretrained(model, tmp_path / "local")
    assert (uploaded / WEIGHTS_NAME).read_bytes() == (local / WEIGHTS_NAME).read_bytes()
    assert (uploaded / CONFIG_NAME).read_text() == (local / CONFIG_NAME).read_text()


def test_without_huggingface_hub_names_the_extra(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m.split(".")[0] == "huggingface_hub"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match=r"pip install 'semprior\[hub\]'"):
        from_hub("someone/tiny", local_files_only=True)
    with pytest.raises(ImportError, match=r"needed for push_to_hub.*semprior\[hub\]"):
        push_to_hub(_tiny(), "someone/tiny")


@pytest.mark.slow
def test_from_hub_with_hf_hub_offline_env(tmp_path):
    """HF_HUB_OFFLINE=1 (read by huggingface_hub at import): the cache is enough, no argument needed."""
    import os
    import subprocess
    from pathlib import Path

    cache = _cache_with(tmp_path, _tiny())
    code = "import semprior.hub as h; m = h.from_hub('someone/tiny-retinexformer'); print(type(m).__name__)"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "Retinexformer"
