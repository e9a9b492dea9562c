"""Lazy imports of optional dependencies, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

#: import name -> (pip distribution, semprior extra)
_KNOWN = {
    "timm": ("timm", "timm"),
    "open_clip": ("open_clip_torch", "clip"),
    "segment_anything": ("segment-anything", "sam"),
    "triton": ("triton", "triton"),
    "skimage": ("scikit-image", "demo"),
    "matplotlib": ("matplotlib", "plot"),
    "pyiqa": ("pyiqa", "pyiqa"),
    "huggingface_hub": ("huggingface_hub", "hub"),
    "gradio": ("gradio", "app"),
}


def require(module: str, extra: str | None = None, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` that says how to install it.

    Examples:
        >>> require("math").sqrt(4.0)
        2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        root = module.split(".")[0]
        dist, default_extra = _KNOWN.get(root, (module, None))
        extra = extra or default_extra
        what = f" (needed for {purpose})" if purpose else ""
        missing = getattr(exc, "name", None)
        if missing and missing.split(".")[0] != root:
            # the package is there, but something it imports is not: installing the extra again will not help
            raise ImportError(
                f"optional dependency {module!r} is installed but failed to import{what}: {exc}; "
                f"repair its installation (pip install --force-reinstall {dist})"
            ) from exc
        hint = f"pip install 'semprior[{extra}]'" if extra else f"pip install {dist}"
        raise ImportError(f"optional dependency {module!r} is not installed{what}; install it with: {hint}") from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported (imports it)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
