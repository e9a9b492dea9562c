"""The ``prior`` fixture: every backend, built once per session from ``_prior_builders``."""

from __future__ import annotations

import pytest
import torch
from _prior_builders import BUILDERS

_CACHE: dict = {}
_NEEDS = {"hrnet": "timm", "timm": "timm", "sam": "segment_anything"}


@pytest.fixture(params=sorted(BUILDERS))
def prior(request):
    """Each backend once per session (building HRNet costs seconds); reset to float32/CPU per test."""
    name = request.param
    # each backend's package is an extra: without it its cases skip (tools/check_floors.py --extra makes them run)
    if name in _NEEDS:
        pytest.importorskip(_NEEDS[name])
    if name not in _CACHE:
        _CACHE[name] = BUILDERS[name]()
    p = _CACHE[name]
    p.to(device="cpu", dtype=torch.float32)
    return p
