"""tools/check_floors.py: the floors it reads from pyproject.toml and the smoke subset it runs (no venv is made here;
the floor run itself is a documented check: docs/install.md)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def floors_tool(load_script):
    return load_script("tools/check_floors.py")


def test_parse_floors(floors_tool):
    reqs = ["torch>=2.9", "kornia >= 0.7.2", "Pillow>=10,<13", "py_yaml[x]>=6 ; python_version >= '3.10'"]
    assert floors_tool.parse_floors(reqs) == {"torch": "2.9", "kornia": "0.7.2", "pillow": "10", "py-yaml": "6"}


@pytest.mark.parametrize("req", ["torch", "torch==2.9", "torch<3", "torch~=2.9"])
def test_a_dependency_without_a_floor_is_one_clear_error(floors_tool, req):
    with pytest.raises(ValueError, match=r"has no '>=' floor: write it as NAME>=VERSION"):
        floors_tool.parse_floors([req])


def test_python_floor(floors_tool):
    assert floors_tool.parse_python_floor(">=3.10") == "3.10"
    with pytest.raises(ValueError, match="no '>=' floor"):
        floors_tool.parse_python_floor("~=3.10")


def test_every_core_dependency_of_pyproject_has_a_floor(floors_tool):
    project = floors_tool.read_project(REPO / "pyproject.toml")
    floors = floors_tool.parse_floors(project["dependencies"])
    assert len(floors) == len(project["dependencies"])
    assert {"torch", "kornia", "safetensors"} <= set(floors)
    assert re.fullmatch(r"3\.\d+", floors_tool.parse_python_floor(project["requires-python"]))


def test_the_smoke_subset_exists_and_imports_only_core_dependencies(floors_tool):
    """Each smoke file exists, each deselected test is defined in it, and its module-level imports are the standard
    library, pytest, semprior or a core dependency (an extra imported at the top would fail the whole file)."""
    project = floors_tool.read_project(REPO / "pyproject.toml")
    core = set(floors_tool.parse_floors(project["dependencies"]))
    dists = {k: {floors_tool._norm(d) for d in v} for k, v in md.packages_distributions().items()}
    for rel in floors_tool.SMOKE:
        tree = ast.parse((REPO / rel).read_text())
        top = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top.add(node.module.split(".")[0])
        extra = {
            m
            for m in top - set(sys.stdlib_module_names) - {"pytest", "semprior", "__future__"}
            if not dists.get(m, {m}) & core
        }
        assert not extra, f"{rel} imports {sorted(extra)} at module level: not core dependencies"
    for node_id in floors_tool.DESELECT:
        rel, name = node_id.split("::")
        assert rel in floors_tool.SMOKE and f"def {name}(" in (REPO / rel).read_text(), node_id


def test_the_recorded_floor_run_is_of_the_current_floors(floors_tool):
    """benchmarks/results/floors.json (the docs cite it) passed at exactly the floors pyproject.toml declares."""
    result = json.loads((REPO / "benchmarks" / "results" / "floors.json").read_text())
    project = floors_tool.read_project(REPO / "pyproject.toml")
    rerun = "rerun `make test-floors` (tools/check_floors.py) and commit benchmarks/results/floors.*"
    assert result["floors"] == floors_tool.parse_floors(project["dependencies"]), f"floors changed: {rerun}"
    assert result["python_floor"] == floors_tool.parse_python_floor(project["requires-python"]), rerun
    assert result["ok"] and not result["overrides"] and result["counts"]["failures"] == 0, rerun
    assert result["machine"]["python"].startswith(result["python_floor"] + "."), rerun
