"""The one atomic writer (`semprior._atomic`): every output goes through it, a failure leaves the old file and
no temp, and stale temps of killed writers (outputs and checkpoints) are swept without touching anything else."""

from __future__ import annotations

import ast
import os
import time
from pathlib import Path

import pytest

import semprior
from semprior._atomic import atomic_write, atomic_write_text, is_temp_name, remove_stale_temps, temp_name
from semprior.engine.checkpoint import load_checkpoint, save_checkpoint

PKG = Path(semprior.__file__).resolve().parent
DEAD = 2**31 - 1  # no process has this id


def test_failure_inside_the_block_keeps_the_old_file_and_no_temp(tmp_path):
    p = atomic_write_text(tmp_path / "t.md", "old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(p, "w") as f:
        f.write("half of the new")
        raise RuntimeError("boom")
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["t.md"]


def test_temp_is_in_the_same_folder_and_hidden(tmp_path):
    with atomic_write(tmp_path / "sub" / "x.bin") as f:
        f.write(b"1")
        names = [x.name for x in (tmp_path / "sub").iterdir()]
        assert len(names) == 1 and is_temp_name(names[0]) and names[0].startswith(".x.bin.")
    assert (tmp_path / "sub" / "x.bin").read_bytes() == b"1"


def test_long_names_fit_the_file_name_limit(tmp_path):
    p = tmp_path / ("n" * 250 + ".png")
    atomic_write_text(p, "ok")
    assert p.read_text() == "ok"


def test_sweep_removes_only_dead_writers_temps(tmp_path):
    dead = tmp_path / temp_name("a.png", pid=DEAD)
    mine = tmp_path / temp_name("b.png")  # this process: alive
    other = tmp_path / f".c.png.semprior-{'x' * 41}-{DEAD}-0a1b2c3d.tmp"  # another host: cannot tell, keep
    for p in (dead, mine, other, tmp_path / "a.png", tmp_path / ".a.png.tmp", tmp_path / ".hidden"):
        p.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == [dead]
    assert mine.exists() and other.exists() and (tmp_path / "a.png").exists() and (tmp_path / ".a.png.tmp").exists()
    assert remove_stale_temps(tmp_path / "missing") == []


def test_sweep_by_name_and_legacy_checkpoint_temps(tmp_path):
    a, b = tmp_path / temp_name("a.png", pid=DEAD), tmp_path / temp_name("b.png", pid=DEAD)
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    assert remove_stale_temps(tmp_path, name="b.png") == [b] and a.exists()
    legacy = tmp_path / ".last.pt.k3j_x9a2.tmp"  # what save_checkpoint's mkstemp used to leave
    legacy.write_bytes(b"x")
    assert remove_stale_temps(tmp_path, name="last.pt") == []  # fresh: its writer may still be running
    old = time.time() - 3600
    os.utime(legacy, (old, old))
    assert remove_stale_temps(tmp_path, name="last.pt") == [legacy]


def test_checkpoint_save_sweeps_temps_of_a_killed_save(tmp_path):
    save_checkpoint({"step": 1}, tmp_path / "last.pt")
    stale = tmp_path / temp_name("last.pt", pid=DEAD)
    stale.write_bytes(b"half a checkpoint")
    save_checkpoint({"step": 2}, tmp_path / "last.pt")
    assert not stale.exists() and load_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


#: semprior's own save methods, which write through the helper themselves
_OWN_SAVERS = {
    "self.save": "Trainer.save -> save_checkpoint",
    "result.save": "EvalResult.save -> atomic_write_text, save_grid",
}


def _writes_to_a_path(node: ast.Call) -> str | None:
    """A call that writes a file by name instead of into ``atomic_write``'s file object ``f``."""
    fn = node.func
    name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
    if name in ("write_text", "write_bytes"):
        return name
    if name in ("save", "savefig") and isinstance(fn, ast.Attribute):
        owner = fn.value.id if isinstance(fn.value, ast.Name) else ""
        if f"{owner}.{name}" in _OWN_SAVERS:
            return None
        if not any(isinstance(a, ast.Name) and a.id == "f" for a in node.args):
            return f"{owner}.{name}"
    # "a" (append one line to a log) is allowed: it never replaces an output, and a kill can
    # only tear the last line, which readers must skip
    if (
        name == "open"
        and len(node.args) > 1
        and isinstance(node.args[1], ast.Constant)
        and any(c in str(node.args[1].value) for c in "wx+")
    ):
        return f"open(..., {node.args[1].value!r})"
    return None


def test_every_output_writer_goes_through_the_atomic_helper():
    """Images, tables, grids, curves and checkpoints: every write in the package goes into the temp file object
    of ``atomic_write`` (named ``f``); only the helper itself opens files for writing."""
    offenders = []
    for path in PKG.rglob("*.py"):
        if path.name == "_atomic.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and (what := _writes_to_a_path(node)):
                offenders.append(f"{path.relative_to(PKG)}:{node.lineno} {what}")
    assert offenders == []
