"""`semprior enhance --jobs N`: N images at once in model threads (default two on a CPU with two or
more threads; one runs in the caller's thread), each with its share of the threads and of the memory;
outputs, their order and the failure list are those of one image at a time; a second Ctrl-C stops a
running model at its next layer."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import semprior.engine.tiling as tiling
from semprior.cli._batch import Cancelled, Workers
from semprior.cli.enhance import resolve_jobs
from semprior.cli.main import main
from semprior.data.io import read_image


def _folder(d, n, bad=()):
    d.mkdir()
    for i in range(n):
        rgb = np.random.default_rng(i).integers(0, 90, (24 + 4 * i, 40, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(d / f"{i:02d}.png")
    for i in bad:
        (d / f"{i:02d}.png").write_bytes(b"not a png")
    return d


def test_resolve_jobs_defaults_and_bad_values():
    assert resolve_jobs(None, 10, "cpu", 2) == (2, 1)  # the default: two at once, one thread each
    assert resolve_jobs(None, 10, "cpu", 1) == (1, 1)  # OMP_NUM_THREADS=1: one image at a time
    assert resolve_jobs(None, 1, "cpu", 8) == (1, 8)  # one image: all threads on it
    assert resolve_jobs(2, 10, "cpu", 1) == (2, 1)  # never fewer than one thread each
    assert resolve_jobs(1, 10, "cpu", 2) == (1, 2)
    assert resolve_jobs(4, 3, "cpu", 8) == (3, 2)  # never more jobs than images
    assert resolve_jobs(None, 10, "cuda", 8) == (1, 8)
    with pytest.raises(ValueError, match="--jobs must be >= 1"):
        resolve_jobs(0, 10, "cpu", 2)
    with pytest.raises(ValueError, match="applies to the CPU"):
        resolve_jobs(2, 10, "cuda", 8)


def test_jobs_zero_is_a_usage_error_before_any_work(tmp_path, capsys):
    src = _folder(tmp_path / "in", 2)
    assert main(["enhance", str(src), "-o", str(tmp_path / "out"), "--model", "gamma", "--jobs", "0"]) == 1
    assert "--jobs must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_two_jobs_write_what_one_job_writes_and_list_failures_in_order(tmp_path, capsys):
    """DeepSPG (untrained, no prior: convolutions and attention) on a folder with two unreadable files."""
    src = _folder(tmp_path / "in", 7, bad=(2, 5))
    outs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        argv = ["enhance", str(src), "-o", str(out), "--model", "deepspg", "--no-progress", "--jobs", str(jobs)]
        assert main([*argv, "--dtype", "fp32", "--prior", "none"]) == 3
        err = capsys.readouterr().err
        assert err.index("02.png") < err.index("05.png")  # input order
        outs[jobs] = {p.name: read_image(p) for p in sorted(out.iterdir())}
    assert list(outs[1]) == list(outs[2]) == [f"{i:02d}.png" for i in (0, 1, 3, 4, 6)]
    for name, a in outs[1].items():
        # one thread per image vs all threads: float sums may round differently, 8-bit outputs agree to 1 level
        assert (a - outs[2][name]).abs().max() <= 1 / 255 + 1e-6, name


def test_each_image_in_flight_gets_its_share_of_the_memory(tmp_path, monkeypatch):
    seen = []
    real = tiling.default_memory_mb

    def spy(pixels, available, *, name="the image"):
        seen.append(available)
        return real(pixels, available, name=name)

    monkeypatch.setattr("semprior.engine.tiling.default_memory_mb", spy)
    monkeypatch.setattr("semprior._memory.available_bytes", lambda: 8 * 2**30)
    src = _folder(tmp_path / "in", 4)
    for jobs in (1, 2):
        seen.clear()
        argv = ["enhance", str(src), "-o", str(tmp_path / f"o{jobs}"), "--model", "deepspg", "--prior", "none"]
        assert main([*argv, "--no-progress", "--jobs", str(jobs)]) == 0
        assert seen == [8 * 2**30 // jobs] * 4


def test_workers_use_their_threads_and_keep_the_callers():
    before = torch.get_num_threads()
    with Workers(2, threads=1) as w:
        assert [w.submit(torch.get_num_threads).result() for _ in range(4)] == [1] * 4
    assert torch.get_num_threads() == before


def test_cancel_stops_a_running_model_at_its_next_layer():
    layer = nn.Identity()
    started = threading.Event()

    def forever():
        started.set()
        while True:
            layer(torch.zeros(1))
            time.sleep(0.01)

    w = Workers(2, threads=1)
    with w:
        fut = w.submit(forever)
        assert started.wait(30)
        w.cancel()
        with pytest.raises(Cancelled):
            fut.result(timeout=30)
    layer(torch.zeros(1))  # the hook is gone once the workers are left, and never fired in this thread


def test_one_job_runs_in_the_callers_thread():
    with Workers(1, threads=1) as w:
        assert w.submit(threading.current_thread).result() is threading.current_thread()
        assert isinstance(w.submit(int, "x").exception(), ValueError)


@pytest.mark.parametrize("module", ["semprior.cli._batch", "semprior.cli.enhance"])
def test_the_examples_in_the_docstrings_run(module):
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(module)).failed == 0
