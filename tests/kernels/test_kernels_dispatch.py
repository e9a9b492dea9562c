"""Dispatch: declared specs, reasons, auto selection, forced backends, input errors."""

from __future__ import annotations

import os

import pytest
import torch

from semprior.kernels import SPECS, channel_attention, ig_channel_attention, not_supported_reasons, select_backend
from semprior.kernels.reference import channel_attention_reference


def test_auto_picks_streaming_on_cpu_without_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q = torch.randn(1, 2, 8, 40)
    assert select_backend("auto", q, q, q) == "streaming"
    torch.testing.assert_close(channel_attention(q, q, q, 1.0), channel_attention_reference(q, q, q, 1.0))


def test_forced_triton_on_cpu_raises_with_reasons(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q = torch.randn(1, 1, 8, 16)
    reasons = not_supported_reasons("triton", q, q, q)
    assert reasons and "TRITON_INTERPRET" in reasons[0]
    with pytest.raises(RuntimeError, match="backend 'triton' cannot run.*CPU"):
        channel_attention(q, q, q, 1.0, backend="triton")
    with pytest.raises(RuntimeError, match="triton"):
        ig_channel_attention(q, q, q, q, 1.0, backend="triton")


def test_triton_declares_dtype_and_channel_limits():
    q = torch.randn(1, 1, 200, 4, dtype=torch.float64)
    reasons = " ".join(not_supported_reasons("triton", q, q, q))
    assert "float64" in reasons and "128" in reasons
    assert SPECS["triton"].max_channels == 128
    assert not_supported_reasons("reference", q, q, q) == []


@pytest.mark.parametrize("backend", ["reference", "streaming"])
def test_forced_backends_run_and_agree(backend):
    q, k, v, il = torch.randn(4, 1, 2, 8, 33).unbind(0)
    tau = torch.tensor([0.5, 2.0])
    torch.testing.assert_close(
        channel_attention(q, k, v, tau, backend=backend), channel_attention_reference(q, k, v, tau)
    )
    torch.testing.assert_close(
        ig_channel_attention(q, k, v, il, tau, backend=backend), channel_attention_reference(q, k, v * il, tau)
    )


def test_unknown_backend():
    q = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="unknown channel-attention backend 'cuda'.*choose one of"):
        channel_attention(q, q, q, 1.0, backend="cuda")


@pytest.mark.parametrize("backend", ["reference", "streaming"])
@pytest.mark.parametrize(
    "q, k, v, tau, exc, match",
    [
        (torch.randn(1, 4, 8), torch.randn(1, 4, 8), torch.randn(1, 4, 8), 1.0, ValueError, r"\(B, heads, c, N\)"),
        (torch.randn(1, 1, 4, 8), torch.randn(1, 1, 5, 8), torch.randn(1, 1, 4, 8), 1.0, ValueError, "same shape"),
        (
            torch.randn(1, 1, 4, 8),
            torch.randn(1, 1, 4, 8),
            torch.randn(1, 1, 6, 8),
            1.0,
            ValueError,
            "channels per head",
        ),
        (
            torch.randn(1, 2, 4, 8),
            torch.randn(1, 2, 4, 8),
            torch.randn(1, 2, 4, 8),
            torch.ones(3),
            ValueError,
            "temperature",
        ),
        (torch.ones(1, 1, 4, 8, dtype=torch.long),) * 3 + (1.0, TypeError, "floating point"),
        (torch.randn(1, 1, 4, 0),) * 3 + (1.0, ValueError, "N = 0"),
    ],
)
def test_bad_inputs_name_the_problem(backend, q, k, v, tau, exc, match):
    with pytest.raises(exc, match=match):
        channel_attention(q, k, v, tau, backend=backend)


@pytest.mark.slow
def test_import_semprior_kernels_does_not_import_triton():
    import subprocess
    import sys

    code = (
        "import sys, semprior.kernels, semprior.attention; import semprior; semprior.SEM; "
        "print('triton' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
