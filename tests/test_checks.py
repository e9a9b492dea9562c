"""semprior._checks.is_tracing: True under each tracer that would break on a data-dependent check, False in eager."""

from __future__ import annotations

import pytest
import torch

from semprior._checks import check_image, is_tracing


class _Seen(torch.nn.Module):
    """Records what is_tracing() answered inside forward."""

    def __init__(self):
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, x):
        self.seen.append(is_tracing())
        return x + 1


def test_eager_is_not_tracing():
    m = _Seen()
    m(torch.zeros(1))
    assert m.seen == [False] and not is_tracing()


def test_fx_symbolic_trace_is_tracing():
    m = _Seen()
    torch.fx.symbolic_trace(m)
    assert m.seen == [True]
    m(torch.zeros(1))  # the flag is reset after tracing
    assert m.seen == [True, False]


def test_jit_trace_is_tracing():
    m = _Seen()
    torch.jit.trace(m, torch.zeros(1), check_trace=False)
    assert m.seen == [True]


def test_data_checks_run_in_eager_only():
    bad = torch.full((1, 3, 4, 4), float("nan"))
    with pytest.raises(ValueError, match="NaN or Inf"):
        check_image(bad)
    traced = torch.jit.trace(lambda x: check_image(x) * 1, torch.zeros(1, 3, 4, 4), check_trace=False)
    assert torch.isnan(traced(bad)).all()  # no check baked into the traced graph
