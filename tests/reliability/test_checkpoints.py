"""Checkpoints: weights_only everywhere, pickle payloads refused without running, SIGKILL mid-save keeps
the previous checkpoint, and resume continues bit for bit."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from _rel_helpers import toy_trainer

import semprior
from semprior.cli.main import main
from semprior.engine.checkpoint import load_checkpoint, save_checkpoint
from semprior.weights import load_checkpoint as load_weights

PKG = Path(semprior.__file__).resolve().parent
HERE = Path(__file__).resolve().parent


def _calls(tree: ast.AST, module: str, name: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
            base = node.func.value
            if isinstance(base, ast.Name) and base.id == module:
                yield node


def test_every_torch_load_in_the_package_is_weights_only():
    found = []
    for f in sorted(PKG.rglob("*.py")):
        tree = ast.parse(f.read_text(), str(f))
        for call in _calls(tree, "torch", "load"):
            kw = {k.arg: k.value for k in call.keywords}
            ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
            found.append((f.relative_to(PKG), call.lineno, ok))
        for mod, fn in (("pickle", "load"), ("pickle", "loads"), ("torch", "jit.load"), ("dill", "load")):
            assert not list(_calls(tree, mod, fn)), f"{f}: {mod}.{fn} can run arbitrary code"
        assert "from pickle import" not in f.read_text()
    assert found, "no torch.load found at all: the scan is broken"
    bad = [f"{f}:{line}" for f, line, ok in found if not ok]
    assert not bad, f"torch.load without weights_only=True at {bad}"


class _Payload:
    """Unpickling this touches a marker file (stands in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_pickle_payload_is_refused_and_never_runs(tmp_path, legacy, capsys):
    marker = tmp_path / "PAYLOAD_RAN"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(2)}, "x": _Payload(marker)}, evil, _use_new_zipfile_serialization=not legacy)
    for loader in (load_checkpoint, load_weights):
        with pytest.raises(RuntimeError, match="refusing to load.*pickled Python objects.*re-save only the state dict"):
            loader(evil)
    try:
        rc = main(["enhance", str(evil), "-o", str(tmp_path / "o"), "--checkpoint", str(evil)])
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "refusing to load" in err[0] and "Traceback" not in err[0]
    assert not marker.exists(), "the pickle payload ran"
    # control: the same payload does run under plain pickle semantics, so the marker check is meaningful
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_truncated_checkpoint_is_one_clear_line(tmp_path):
    good = save_checkpoint({"w": torch.arange(1000.0)}, tmp_path / "good.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(RuntimeError, match="truncated or corrupt") as info:
        load_checkpoint(cut)
    assert "\n" not in str(info.value) and str(cut) in str(info.value)


_CHILD = textwrap.dedent(
    """
    import io, sys, time
    import torch
    torch.set_num_threads(1)
    from _rel_helpers import toy_trainer
    import semprior.engine.checkpoint as C

    tr = toy_trainer()
    tr.fit(steps=3)
    tr.save({path!r})
    real_save = torch.save

    def slow_save(obj, f, *a, **k):  # write half of the real bytes, then stall until killed
        buf = io.BytesIO()
        real_save(obj, buf, *a, **k)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        print("WRITING", flush=True)
        time.sleep(120)

    C.torch.save = slow_save
    tr.fit(steps=2)
    tr.save({path!r})
    print("NOT KILLED", flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_mid_save_keeps_previous_checkpoint_and_resume_is_exact(tmp_path):
    ckpt = tmp_path / "last.pt"
    code = _CHILD.format(path=str(ckpt))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 240
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.strip() == "WRITING" or not line:
                break
        assert line.strip() == "WRITING", f"child never reached the save: {line or proc.stderr.read()}"
        partial = list(tmp_path.glob(".last.pt.*.tmp"))
        assert partial and partial[0].stat().st_size > 0, "the interrupted save wrote nothing"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the previous checkpoint (step 3) is intact and loadable
    state = load_checkpoint(ckpt)
    assert state["step"] == 3
    # resuming it and training to the end matches an uninterrupted run exactly
    resumed = toy_trainer()
    resumed.resume(ckpt)
    resumed.fit()
    straight = toy_trainer()
    straight.fit()
    assert resumed.step == straight.step == 6
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert resumed.curves["loss"][-3:] == straight.curves["loss"][-3:]


@pytest.mark.slow
def test_in_process_resume_is_exact_and_a_different_seed_differs(tmp_path):
    a = toy_trainer(tmp_path / "a")
    a.fit(steps=2)  # writes last.pt at the end of fit
    b = toy_trainer()
    b.resume(tmp_path / "a" / "last.pt")
    assert b.step == 2
    b.fit()
    c = toy_trainer()
    c.fit()
    for (k, x), y in zip(c.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), k
    d = toy_trainer(seed=1)
    d.fit()
    assert not torch.equal(d.model.state_dict()["body.0.weight"], c.model.state_dict()["body.0.weight"])


def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = save_checkpoint({"step": 1}, tmp_path / "last.pt")
    import semprior.engine.checkpoint as C

    def boom(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(C.torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
