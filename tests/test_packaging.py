"""The wheel is a product: every runtime import declared, a licence, py.typed, the recipes, one version.

- ``test_every_import_is_declared`` reads every ``import`` in ``semprior/`` and checks that the
  distribution it comes from is a core dependency or an extra in ``pyproject.toml``.
- ``test_default_enhance_needs_only_core_dependencies`` runs ``semprior enhance`` (default model) in a
  subprocess that refuses every installed package outside the core dependencies and what they pull in.
- ``test_wheel_contents`` (slow) builds the wheel and reads its file list and metadata.
- ``test_wheel_in_fresh_venv`` (slow) installs the wheel with its core dependencies only into a new
  venv, offline, from the wheel folders in ``$SEMPRIOR_WHEELHOUSE`` (``os.pathsep``-separated; e.g.
  ``pip download -d DIR torch kornia einops numpy pillow tqdm pyyaml safetensors``), and runs
  ``semprior --version``, ``semprior models`` and ``semprior enhance`` with no model flag. Without
  that variable it skips and says so.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

import semprior

ROOT = Path(__file__).resolve().parents[1]
META = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _req_name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _core_closure() -> set[str]:
    """Distribution names of the core dependencies and everything they require (extras and markers ignored)."""
    todo, seen = [_req_name(r) for r in META["dependencies"]], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo += [_req_name(r) for r in reqs if "extra ==" not in r]
    return seen


def test_every_import_is_declared():
    declared = {_req_name(r) for r in META["dependencies"]}
    for reqs in META["optional-dependencies"].values():
        declared |= {_req_name(r) for r in reqs if not r.startswith("semprior[")}
    dists = {k: [d.lower().replace("_", "-") for d in v] for k, v in md.packages_distributions().items()}
    undeclared = {}
    for f in sorted((ROOT / "semprior").rglob("*.py")):
        for mod in _imports(f) - set(sys.stdlib_module_names) - {"semprior", "__future__"}:
            owners = dists.get(mod, [mod])
            if not any(o in declared for o in owners):
                undeclared.setdefault(mod, []).append(str(f.relative_to(ROOT)))
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_safetensors_is_a_core_dependency():
    assert "safetensors" in {_req_name(r) for r in META["dependencies"]}


def test_floors_match():
    deps = {_req_name(r): r for r in META["dependencies"]}
    assert deps["torch"].endswith(">=2.8")  # torch.export of the learned models fails with torch 2.7
    assert META["requires-python"] == ">=3.11" and deps["kornia"].endswith(">=0.9")  # kornia 0.9 needs Python 3.11
    assert META["license"] == "Apache-2.0" and "Apache License" in (ROOT / "LICENSE").read_text()
    assert META["dynamic"] == ["version"] and "version" not in META
    assert (ROOT / "semprior" / "py.typed").is_file()


_BLOCKED_RUN = textwrap.dedent(
    """
    import importlib.abc, sys
    ALLOWED = set({allowed!r})
    INSTALLED = {installed!r}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top in INSTALLED and not (set(INSTALLED[top]) & ALLOWED):
                raise ModuleNotFoundError(f"No module named {{top!r}} (not a core dependency)", name=top)
            return None

    sys.meta_path.insert(0, Block())
    from semprior.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_default_enhance_needs_only_core_dependencies(tmp_path):
    from PIL import Image

    allowed = _core_closure() | {"semprior", "pip", "setuptools"}
    installed = {
        k: [d.lower().replace("_", "-") for d in v]
        for k, v in md.packages_distributions().items()
        if k not in sys.stdlib_module_names
    }
    Image.new("RGB", (40, 32), (20, 30, 40)).save(tmp_path / "photo.jpg")
    code = _BLOCKED_RUN.format(allowed=sorted(allowed), installed=installed)
    out = subprocess.run(
        [sys.executable, "-c", code, "enhance", "photo.jpg", "-o", "out", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(list((tmp_path / "out").iterdir())) == 1


def _build_wheel(dest: Path) -> Path:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dest), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        pytest.fail(f"pip wheel failed: {out.stderr[-2000:]}")
    (wheel,) = dest.glob("semprior-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_wheel_contents(wheel):
    assert wheel.name.startswith(f"semprior-{semprior.__version__}-")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = z.read(meta_name).decode()
    dist_info = meta_name.rsplit("/", 1)[0]
    for need in (
        "semprior/py.typed",
        "semprior/configs/deepspg_lolv1.yaml",
        "semprior/configs/cpu/retinexformer_lolv1.yaml",
        "semprior/pretrained/deepspg-lolv1-cpu/model.safetensors",
        "semprior/metrics/niqe_pris_params.npz",
        "semprior/metrics/niqe_fitted_params.npz",
        f"{dist_info}/licenses/LICENSE",
    ):
        assert need in names, f"{need} is not in {wheel.name}"
    assert "License-Expression: Apache-2.0" in meta
    assert f"Version: {semprior.__version__}" in meta
    assert re.search(r"^Requires-Dist: safetensors", meta, re.M)
    assert not any(n.startswith(("tests/", "configs/", "benchmarks/")) for n in names)


@pytest.mark.slow
def test_wheel_in_fresh_venv(wheel, tmp_path):
    house = [d for d in os.environ.get("SEMPRIOR_WHEELHOUSE", "").split(os.pathsep) if d]
    if not house:
        pytest.skip(
            "set SEMPRIOR_WHEELHOUSE to folders of wheels of the core dependencies (torch, kornia, ...) "
            "to install the wheel offline into a fresh venv"
        )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_CONFIG_FILE=os.devnull, OMP_NUM_THREADS="1")
    links = [a for d in house for a in ("--find-links", d)]
    out = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-index", "--only-binary", ":all:", *links, str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    if out.returncode != 0:
        missing = re.findall(r"No matching distribution found for (\S+)", out.stderr)
        pytest.skip(
            f"the core dependencies are not all in SEMPRIOR_WHEELHOUSE (missing: {missing or out.stderr[-500:]})"
        )
    exe = venv / "bin" / "semprior"
    run = lambda *a: subprocess.run([str(exe), *a], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)  # noqa: E731
    v = run("--version")
    assert v.returncode == 0 and v.stdout.strip() == f"semprior {semprior.__version__}", v.stderr
    m = run("models")
    assert m.returncode == 0 and "lolv1-cpu" in m.stdout, m.stderr
    from PIL import Image

    Image.new("RGB", (48, 40), (30, 20, 10)).save(tmp_path / "photo.jpg")
    e = run("enhance", "photo.jpg", "-o", "enhanced.jpg", "--no-progress")
    assert e.returncode == 0, e.stderr[-3000:]
    assert (tmp_path / "enhanced.jpg").is_file()
    loaded = subprocess.run(
        [str(py), "-c", "import semprior.engine.run_config as c, json; print(json.dumps(c.shipped_recipes()))"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert "deepspg_lolv1" in json.loads(loaded.stdout)
