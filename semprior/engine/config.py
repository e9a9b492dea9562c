"""YAML <-> frozen dataclasses (re-exported from `semprior._config`, the low-layer home).

Kept so ``from semprior.engine.config import from_dict, load_yaml`` goes on working.
"""

from __future__ import annotations

from semprior._config import from_dict, load_yaml

__all__ = ["from_dict", "load_yaml"]
