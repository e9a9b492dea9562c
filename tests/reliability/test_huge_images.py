"""Huge images: ``semprior enhance --max-memory-mb`` keeps the peak RSS of a subprocess under the cap plus
a baseline, and the tiled output matches the untiled one where both fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from _rel_helpers import tiny_deepspg_config

from semprior.data.io import read_image, write_image
from semprior.engine.tiling import enhance_image
from semprior.metrics import MetricProtocol, psnr

#: a wrapper process runs ``python -m semprior ...`` and reports the child's RSS high-water mark
_WRAPPER = textwrap.dedent(
    """
    import json, resource, subprocess, sys
    p = subprocess.run([sys.executable, "-m", "semprior"] + sys.argv[1:], capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"rc": p.returncode, "peak": peak, "stderr": p.stderr[-2000:]}))
    """
)

H, W = 768, 1024  # 0.79 MP: big enough that untiled activations exceed the cap many times over
CAP_MB = 16
#: input/output image buffers outside the model (decoded uint8 + float copies, the blend accumulators,
#: the 8-bit output): a few float32 copies of the image, at most 64 bytes per pixel
IMAGE_BYTES_PER_PIXEL = 64


def _peak(args: list[str]) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    p = subprocess.run([sys.executable, "-c", _WRAPPER, *args], capture_output=True, text=True, timeout=400, env=env)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["rc"] == 0, r["stderr"]
    return r["peak"]


@pytest.fixture(scope="module")
def plain_graph_checkpoint(tmp_path_factory):
    """The tiny DeepSPG with ``backend="reference"``: its untiled forward is the plain autograd-free
    graph, whose activations grow with the image. (The default ``"auto"`` backend runs DeepSPG's
    banded whole-image path on a CPU, which is itself memory-bounded, so an untiled run of it cannot
    show that the tiling cap does anything.)"""
    from dataclasses import replace

    from semprior.engine.checkpoint import save_checkpoint
    from semprior.models.deepspg import DeepSPG

    cfg = replace(tiny_deepspg_config(), backend="reference")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "plain.pt"
    save_checkpoint({"model": DeepSPG(cfg).state_dict(), "model_config": cfg.to_dict()}, path)
    return path


@pytest.mark.slow
def test_enhance_under_a_memory_cap_in_a_subprocess(tmp_path, plain_graph_checkpoint):
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    write_image(big, torch.rand(3, H, W, generator=torch.Generator().manual_seed(0)) * 0.3)
    write_image(small, torch.rand(3, 16, 16) * 0.3)
    common = ["--checkpoint", str(plain_graph_checkpoint), "--no-progress"]
    baseline = _peak(["enhance", str(small), "-o", str(tmp_path / "b"), *common])  # imports, model, tiny image
    capped = _peak(
        ["enhance", str(big), "-o", str(tmp_path / "tiled"), "--max-memory-mb", str(CAP_MB), "--overlap", "8", *common]
    )
    untiled = _peak(["enhance", str(big), "-o", str(tmp_path / "whole"), *common])
    mb = 2**20
    bound = baseline + CAP_MB * mb + IMAGE_BYTES_PER_PIXEL * H * W
    report = (
        f"baseline {baseline / mb:.0f} MB, capped {capped / mb:.0f} MB, untiled {untiled / mb:.0f} MB, "
        f"bound {bound / mb:.0f} MB"
    )
    print(report)
    assert capped <= bound, report
    assert untiled > bound, (
        "the untiled run fits the bound too: the image is too small to show the cap works; " + report
    )
    # the tiled output matches the untiled one (the SEM channel attention pools over the whole image,
    # so tiles differ slightly; measured ~48 dB for 96-px tiles)
    a, b = read_image(tmp_path / "tiled" / "big.png")[None], read_image(tmp_path / "whole" / "big.png")[None]
    assert a.shape == b.shape == (1, 3, H, W)
    score = float(psnr(a, b, MetricProtocol()))
    print(f"tiled vs untiled PSNR {score:.1f} dB")
    assert score > 35, score


def test_tiled_equals_untiled_in_process():
    from semprior.models.classical import CLASSICAL
    from semprior.models.deepspg import DeepSPG

    torch.manual_seed(0)
    model = DeepSPG(tiny_deepspg_config()).eval()
    x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(1)) * 0.3
    whole = enhance_image(model, x)
    tiled = enhance_image(model, x, tile=48, overlap=16)
    assert tiled.shape == whole.shape
    assert float(psnr(tiled, whole, MetricProtocol(quantize=False))) > 35
    assert float((tiled - whole).abs().mean()) < 0.01
    # a local (per-pixel) method is tile-invariant up to float rounding
    gamma = CLASSICAL["gamma"]()
    assert torch.allclose(enhance_image(gamma, x, tile=32, overlap=8), enhance_image(gamma, x), atol=1e-6)
    # a memory cap picks tiles automatically and gives the same image
    capped = enhance_image(model, x, max_memory_mb=8, overlap=16)  # 8 MB / 4096 B/px -> 44-px tiles
    assert float(psnr(capped, whole, MetricProtocol(quantize=False))) > 35
