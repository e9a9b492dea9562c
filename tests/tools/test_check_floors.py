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


def test_extra_requirements_expand_self_references(floors_tool):
    optional = {"demo": ["scikit-image>=0.22"], "app": ["gradio>=6.0", "semprior[demo]"], "all": ["semprior[app,demo]"]}
    assert floors_tool.extra_requirements(optional, "app") == ["gradio>=6.0", "scikit-image>=0.22"]
    assert floors_tool.extra_requirements(optional, "all") == ["gradio>=6.0", "scikit-image>=0.22"]
    with pytest.raises(ValueError, match="'nope' is not an extra of \\[project.optional-dependencies\\]: one of demo"):
        floors_tool.extra_requirements(optional, "nope")


def test_two_floors_for_one_package_is_one_clear_error(floors_tool):
    assert floors_tool.merge_floors({"torch": "2.5.1"}, {"torchvision": "0.20.1"}, {"torchvision": "0.20.1"}) == {
        "torch": "2.5.1",
        "torchvision": "0.20.1",
    }
    with pytest.raises(ValueError, match="torchvision has two floors, 0.20.1 and 0.16: check those extras one at a"):
        floors_tool.merge_floors({"torchvision": "0.20.1"}, {"torchvision": "0.16"})


def test_a_skip_for_want_of_the_extra_is_caught(floors_tool):
    skips = [
        "tests/a.py::test_x: could not import 'timm': No module named 'timm'",
        "tests/a.py::test_y: could not import 'segment_anything.modeling': No module named 'segment_anything'",
        "tests/a.py::test_z: needs a CUDA device",
        "tests/a.py::test_w: could not import 'skimage': No module named 'skimage'",
    ]
    assert floors_tool.skipped_imports(skips, ["timm"]) == skips[:1]
    assert floors_tool.skipped_imports(skips, ["segment_anything", "torchvision"]) == skips[1:2]
    assert floors_tool.skipped_imports(skips, ["matplotlib"]) == []


def test_every_checked_extra_is_declared_with_floors_and_its_tests_exist(floors_tool):
    project = floors_tool.read_project(REPO / "pyproject.toml")
    core = floors_tool.parse_floors(project["dependencies"])
    for extra, spec in floors_tool.EXTRAS.items():
        floors = floors_tool.parse_floors(floors_tool.extra_requirements(project["optional-dependencies"], extra))
        assert floors and not set(floors) & set(core), extra
        assert spec["modules"] and spec["tests"], extra
        for rel in spec["tests"]:
            assert (REPO / rel).is_file(), f"{extra}: {rel}"


#: the extras whose floors docs/install.md says are checked (each in a benchmarks/results/floors_extra_*.json)
CHECKED_EXTRAS = {"timm", "clip", "sam", "lpips"}


def test_the_recorded_extra_runs_are_of_the_current_floors(floors_tool):
    """Each benchmarks/results/floors_extra_*.json (docs/install.md cites them) passed at the floors pyproject.toml
    declares, with no test skipped for want of the extra; together they cover the extras the docs call checked."""
    project = floors_tool.read_project(REPO / "pyproject.toml")
    core = floors_tool.parse_floors(project["dependencies"])
    checked: set[str] = set()
    for path in sorted((REPO / "benchmarks" / "results").glob("floors_extra_*.json")):
        result = json.loads(path.read_text())
        extras = result["extras"]
        flags = " ".join(f"--extra {e}" for e in extras)
        rerun = f"rerun `python tools/check_floors.py {flags}` and commit {path.stem}.*"
        optional = project["optional-dependencies"]
        want = {e: floors_tool.parse_floors(floors_tool.extra_requirements(optional, e)) for e in extras}
        assert path.stem == "floors_extra_" + "_".join(extras), path.name
        assert result["floors"] == core, f"core floors changed: {rerun}"
        assert result["extra_floors"] == want, f"floors of {extras} changed: {rerun}"
        assert result["ok"] and not result["overrides"] and result["counts"]["failures"] == 0, rerun
        assert not result["skipped_without_the_extra"] and result["counts"]["passed"] > 0, rerun
        checked |= set(extras)
    assert checked >= CHECKED_EXTRAS, f"no recorded floor run of {sorted(CHECKED_EXTRAS - checked)}"
