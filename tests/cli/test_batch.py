"""Batches that survive bad files: `semprior enhance`/`eval` go on past unreadable inputs, list them with
reasons and exit 3; `--fail-fast` keeps the old stop-at-first behaviour; `--skip-existing` resumes; stale
temporary files of killed runs are swept; global classical methods are never tiled."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from semprior._atomic import temp_name
from semprior.cli._batch import EXIT_SOME_FAILED
from semprior.cli.main import main
from semprior.data.io import read_image, write_image


def _jpeg(path, seed):
    rgb = np.random.default_rng(seed).integers(0, 80, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, quality=90)


@pytest.fixture
def mixed(tmp_path):
    """The issue's folder: a.jpg, a truncated b.jpg, c.jpg."""
    d = tmp_path / "mix"
    d.mkdir()
    for i, n in enumerate("abc"):
        _jpeg(d / f"{n}.jpg", i)
    data = (d / "b.jpg").read_bytes()
    (d / "b.jpg").write_bytes(data[: len(data) // 2])
    return d


def test_mixed_folder_writes_the_readable_files_and_names_the_bad_one(mixed, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["enhance", str(mixed), "-o", str(out), "--model", "gamma", "--no-progress"])
    cap = capsys.readouterr()
    assert rc == EXIT_SOME_FAILED == 3
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    for n in "ac":
        assert read_image(out / f"{n}.png").shape == (3, 40, 50)
    bad_lines = [ln for ln in cap.err.splitlines() if "b.jpg" in ln]
    assert len(bad_lines) == 1 and "truncated" in bad_lines[0]  # one line, with the reason
    assert "1 input(s) failed" in cap.err and "wrote 2 of 3" in cap.out
    assert "Traceback" not in cap.err


def test_fail_fast_keeps_the_old_behaviour(mixed, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["enhance", str(mixed), "-o", str(out), "--model", "gamma", "--no-progress", "--fail-fast"])
    assert rc == 1
    assert "b.jpg" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]  # stopped at b, c never processed


def test_skip_existing_resumes_and_keeps_done_files(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        _jpeg(src / f"{i}.jpg", i)
    out = tmp_path / "out"
    out.mkdir()
    sentinel = torch.full((3, 40, 50), 0.5)
    write_image(out / "1.png", sentinel)  # "done" by an earlier run
    rc = main(["enhance", str(src), "-o", str(out), "--model", "gamma", "--no-progress"])
    assert rc == 1 and "--skip-existing" in capsys.readouterr().err  # refused, names the way out
    rc = main(["enhance", str(src), "-o", str(out), "--model", "gamma", "--no-progress", "--skip-existing"])
    cap = capsys.readouterr()
    assert rc == 0 and "wrote 3 of 3" in cap.out and "1 existing output(s) kept" in cap.out
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "2.png", "3.png"]
    torch.testing.assert_close(read_image(out / "1.png"), sentinel, atol=1 / 255, rtol=0)  # untouched
    assert main(["enhance", str(src), "-o", str(out), "--model", "gamma", "--skip-existing", "--overwrite"]) == 1
    assert "contradict" in capsys.readouterr().err


def test_stale_temps_are_removed_and_nothing_else(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _jpeg(src / "a.jpg", 0)
    out = tmp_path / "out"
    out.mkdir()
    dead = out / temp_name("a.png", pid=2**31 - 1)  # written by a process that no longer exists
    dead.write_bytes(b"\x89PNG half")
    live_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = out / temp_name("b.png", pid=live_proc.pid)  # a concurrent writer: must be kept
        live.write_bytes(b"in progress")
        foreign = [out / ".notes.tmp", out / "x.semprior-tmp", out / ".a.png.tmp"]
        for f in foreign:
            f.write_bytes(b"not ours")
        rc = main(["enhance", str(src), "-o", str(out), "--model", "gamma", "--no-progress"])
        assert rc == 0 and "removed 1 temporary file(s)" in capsys.readouterr().err
        assert not dead.exists() and live.exists() and all(f.exists() for f in foreign)
    finally:
        live_proc.kill()
        live_proc.wait()


def test_global_methods_run_untiled(tmp_path, capsys):
    from semprior.engine.tiling import enhance_image
    from semprior.models.classical import CLAHE, HistogramEqualization

    x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(0)) * 0.3
    for m in (HistogramEqualization(), CLAHE()):
        whole = enhance_image(m, x)
        assert torch.equal(enhance_image(m, x, tile=32, overlap=8), whole)
        assert torch.equal(enhance_image(m, x, max_memory_mb=0.01), whole)
    write_image(tmp_path / "x.png", x[0])
    rc = main(
        [
            "enhance",
            str(tmp_path / "x.png"),
            "-o",
            str(tmp_path / "o"),
            "--model",
            "he",
            "--tile",
            "48",
            "--no-progress",
        ]
    )
    assert rc == 0 and "global method" in capsys.readouterr().err


@pytest.fixture
def pairs_with_bad(pair_dirs):
    data = (pair_dirs / "low" / "b.png").read_bytes()
    (pair_dirs / "low" / "b.png").write_bytes(data[: len(data) // 2])
    return pair_dirs


def test_eval_lists_unreadable_pairs_under_the_table(pairs_with_bad, capsys, eval_argv):
    root = pairs_with_bad
    out = root / "report"
    rc = main(eval_argv(root, "--model", "identity", "--out", str(out), "--grid", "2"))
    cap = capsys.readouterr()
    assert rc == EXIT_SOME_FAILED
    table, _, below = cap.out.partition("| identity |")
    assert "Averaged over 2 of 3 pair(s); 1 could not be scored" in below
    listed = [ln for ln in below.splitlines() if ln.startswith("- not scored:")]
    assert len(listed) == 1 and "b.png / b.png" in listed[0] and "truncated" in listed[0]
    assert "skip_corrupt" not in listed[0]  # the library hint is not shown on the command line
    data = json.loads((out / "metrics.json").read_text())
    assert data["images"] == ["a", "c"] and data["pairs_total"] == 3
    assert data["failed"][0]["pair"] == "b.png / b.png"
    # the means are over the two scored pairs only
    from semprior.metrics import MetricProtocol, psnr

    expect = np.mean(
        [
            float(
                psnr(
                    read_image(root / "low" / f"{n}.png")[None],
                    read_image(root / "high" / f"{n}.png")[None],
                    MetricProtocol(),
                )
            )
            for n in "ac"
        ]
    )
    assert data["means"]["identity"]["psnr"] == pytest.approx(expect)
    rc = main(eval_argv(root, "--model", "identity", "--fail-fast"))
    assert rc == 1 and "b.png" in capsys.readouterr().err


def test_eval_all_pairs_bad_is_an_error(pairs_with_bad, capsys, eval_argv):
    root = pairs_with_bad
    for n in "ac":
        (root / "low" / f"{n}.png").write_bytes(b"not an image")
    rc = main(eval_argv(root, "--model", "identity"))
    assert rc == 1 and "no pair could be scored (3 failed)" in capsys.readouterr().err


def test_help_documents_exit_statuses(capsys):
    for cmd in ("enhance", "eval"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "3 some inputs failed" in text and "130 interrupted" in text and "--fail-fast" in text
    with pytest.raises(SystemExit):
        main(["enhance", "--help"])
    assert "--skip-existing" in capsys.readouterr().out


def test_atomic_write_image_leaves_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "x.png"
    write_image(p, torch.zeros(3, 4, 4))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_image(p, torch.ones(3, 4, 4))
    monkeypatch.undo()
    assert read_image(p).max() == 0  # the old image
    assert [f.name for f in tmp_path.iterdir()] == ["x.png"]  # no temp left
