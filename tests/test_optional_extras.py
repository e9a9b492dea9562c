"""scikit-image, matplotlib, pyiqa and huggingface_hub are extras: semprior works without them, and
each feature that needs one says which extra to install.

Absence is simulated two ways: ``sys.modules[name] = None`` (``import name`` then raises
``ImportError``, as for a package that is not installed) inside this process, and a subprocess with
an import hook that refuses the packages from the first import on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from semprior._optional import require

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("skimage", "matplotlib", "pyiqa", "huggingface_hub")


def _hide(monkeypatch, *modules):
    for name in [m for m in sys.modules if m.split(".")[0] in modules] + list(modules):
        monkeypatch.setitem(sys.modules, name, None)


def test_demo_photos_without_scikit_image(monkeypatch):
    from semprior.data import default_clean_images

    _hide(monkeypatch, "skimage")
    with pytest.raises(ImportError) as err:
        default_clean_images(("coffee",))
    msg = str(err.value)
    assert "'skimage.data' is not installed" in msg and "demo photos" in msg
    assert "pip install 'semprior[demo]'" in msg


def test_loss_curves_without_matplotlib(monkeypatch, tmp_path):
    from semprior.engine.curves import plot_curves, require_matplotlib

    _hide(monkeypatch, "matplotlib")
    with pytest.raises(
        ImportError,
        match=r"'matplotlib' is not installed \(needed for loss-curve PNGs\); "
        r"install it with: pip install 'semprior\[plot\]'",
    ):
        plot_curves({"loss": [(0, 1.0), (1, 0.5)]}, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()
    with pytest.raises(ImportError, match=r"semprior\[plot\]'; or set train.loss_curve: false"):
        require_matplotlib(alternative="or set train.loss_curve: false")


def test_loss_curves_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    from semprior.engine.curves import plot_curves

    p = plot_curves({"loss": [(0, 1.0), (5, 0.5)], "val/psnr": [(5, 20.0)]}, tmp_path / "c.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_broken_install_is_not_reported_as_missing(tmp_path, monkeypatch):
    pkg = tmp_path / "semprior_fake_extra"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import semprior_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="installed but failed to import.*semprior_missing_dependency_xyz"):
        require("semprior_fake_extra")
    with pytest.raises(ImportError, match="'semprior_absent_xyz' is not installed; install it with: pip install"):
        require("semprior_absent_xyz")


def test_pyproject_extras():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"])
    assert "matplotlib" not in core and "scikit-image" not in core
    extras = meta["optional-dependencies"]
    assert extras["demo"] == ["scikit-image>=0.22"] and extras["plot"] == ["matplotlib>=3.7"]
    for name in ("demo", "plot"):
        assert name in extras["all"][0] and name in extras["dev"][-1]  # `make venv` installs .[all,docs,dev]
    assert "pyiqa" not in extras["all"][0]
    assert "'.[all,docs,dev]'" in (ROOT / "Makefile").read_text()


_PROBE = textwrap.dedent(
    """
    import importlib.abc, json, sys
    BLOCKED = set({blocked!r})

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
            return None

    sys.meta_path.insert(0, Block())
    import semprior
    import semprior.data, semprior.engine, semprior.hub, semprior.metrics, semprior.metrics.pyiqa_metric
    for name in semprior.__all__:
        try:
            getattr(semprior, name)
        except ImportError as exc:
            if any(b in str(exc) for b in BLOCKED):
                raise
    errors = {{}}
    for label, call in [
        ("demo", lambda: semprior.data.default_clean_images(("coffee",))),
        ("plot", lambda: semprior.engine.plot_curves({{"loss": [(0, 1.0)]}}, "unused.png")),
    ]:
        try:
            call()
            errors[label] = None
        except ImportError as exc:
            errors[label] = str(exc)
    print(json.dumps({{"loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED), "errors": errors}}))
    """
)


@pytest.mark.slow
def test_semprior_works_without_the_extras(tmp_path):
    code = _PROBE.format(blocked=EXTRAS)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["loaded"] == []
    assert "pip install 'semprior[demo]'" in r["errors"]["demo"]
    assert "pip install 'semprior[plot]'" in r["errors"]["plot"]
    assert not (tmp_path / "unused.png").exists()
