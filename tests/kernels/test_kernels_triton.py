"""Runs the Triton kernel tests (``interp_triton_cases.py``) under ``TRITON_INTERPRET=1`` in a subprocess.

The interpreter must be switched on before triton is imported, so it gets a fresh process; the
rest of the suite never sees it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
@pytest.mark.triton
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_triton_kernels_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(HERE / "interp_triton_cases.py")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE.parents[1], timeout=500)
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, f"Triton interpreter tests failed (rc={proc.returncode}):\n{tail}"
    assert " passed" in proc.stdout and "no tests ran" not in proc.stdout, tail
