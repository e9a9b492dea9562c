"""Check that the dependency floors in ``pyproject.toml`` hold: install exactly them and run the tests that use them.

    python tools/check_floors.py                    # the core floors, Python at the requires-python floor
    python tools/check_floors.py --extra timm       # the timm extra's floors on top of the core floors
    python tools/check_floors.py --python python3.11 --venv /tmp/floors-venv --keep

It reads ``requires-python`` and every ``NAME>=FLOOR`` of ``[project] dependencies``, creates a fresh venv
(a temporary folder unless ``--venv`` is given) with the interpreter of ``--python``, installs ``NAME==FLOOR``
of each core dependency (what those pull in resolves as pip chooses) plus pytest and pytest-timeout, installs
semprior from this checkout with ``pip install --no-deps .``, and runs :data:`SMOKE` (the tests that need
only the core dependencies: model builds, forwards and losses, ``create_model`` / ``load_model`` round trips,
``torch.export``, the classical kornia baselines, image I/O, PSNR/SSIM, ``semprior enhance`` with no model
flag) with ``-m "not slow and not data"``. It prints the versions used and writes
``benchmarks/results/floors.{json,md}`` (``--out``) with the commit, command and machine.

``--extra NAME`` (repeatable; the extras of :data:`EXTRAS`) also installs ``NAME==FLOOR`` of each requirement of
that ``[project.optional-dependencies]`` entry and runs the extra's tests instead of :data:`SMOKE`; a test that
skips because it could not import one of the extra's modules counts as a failure (the floors must make it run).
The default result is ``benchmarks/results/floors_extra_NAME.{json,md}`` (the names joined by ``_`` for several).

A floor that is not installable (no wheel for that Python, or a conflict with another floor) stops the run with
pip's message, recorded in the result; ``--override NAME==VERSION`` installs another version in its place and the
result records it. Exit status: 0 when every test passed at the floors, 1 otherwise. It needs a package index
with the old releases (PyPI): minutes and a few GB (torch's CUDA libraries) on first run, pip's cache after that.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: the core smoke subset, run with ``-m "not slow and not data"``; each needs nothing beyond the core dependencies
#: (tests/test_packaging.py is not here: it reads pyproject.toml with tomllib, Python >= 3.11)
SMOKE = [
    "tests/test_checks.py",
    "tests/models/test_deepspg.py",
    "tests/models/test_cugd.py",
    "tests/models/test_sllen.py",
    "tests/models/test_retinexformer.py",
    "tests/models/test_conformance.py",
    "tests/models/test_pretrained_flag.py",
    "tests/models/test_hub.py",
    "tests/models/test_classical.py",
    "tests/retinex/test_classical_decompose.py",
    "tests/losses/test_pixel_edge.py",
    "tests/metrics/test_scorer.py",
    "tests/cli/test_enhance_outputs.py",
    "tests/data/test_shipped_model.py",
    "tests/data/test_io.py",
    "tests/data/test_synthesis.py",
]
#: tests in those files that need an extra (matplotlib draws the loss curve, scikit-image ships the demo photos)
DESELECT = [
    "tests/models/test_sllen.py::test_alternation_order_and_log",
    "tests/models/test_sllen.py::test_resume_is_exact",
    "tests/models/test_classical.py::test_classical_retinex_example_runs",
    "tests/data/test_synthesis.py::test_default_clean_images_are_bundled_colour_photos",
]
RUNNER = ["pytest", "pytest-timeout"]
#: the extras whose floors ``--extra`` checks: the modules they provide (a test that skips for want of one of them
#: fails the check) and the test files that exercise them (run with ``-m "not slow and not data"``)
EXTRAS: dict[str, dict[str, list[str]]] = {
    "timm": {
        "modules": ["timm"],
        "tests": [
            "tests/priors/test_contract.py",
            "tests/priors/test_backends.py",
            "tests/priors/test_hrnet_official.py",
            "tests/priors/test_hrnet_weights.py",
            "tests/models/test_hub.py",
            "tests/models/test_deepspg.py",
        ],
    },
    "clip": {
        "modules": ["open_clip"],
        "tests": ["tests/losses/test_clip_prompt.py", "tests/reliability/test_torchscript.py"],
    },
    "sam": {
        "modules": ["segment_anything", "torchvision"],
        "tests": ["tests/priors/test_contract.py", "tests/priors/test_backends.py"],
    },
    "lpips": {"modules": ["torchmetrics", "torchvision"], "tests": ["tests/metrics/test_lpips.py"]},
    "hub": {"modules": ["huggingface_hub"], "tests": ["tests/test_hub_hf.py", "tests/models/test_hf_paths.py"]},
    "tensorboard": {"modules": ["tensorboard"], "tests": ["tests/engine/test_trainer_tensorboard.py"]},
    "plot": {
        "modules": ["matplotlib"],
        "tests": ["tests/engine/test_trainer_loss_curve.py", "tests/test_optional_extras.py"],
    },
    "demo": {
        "modules": ["skimage"],
        "tests": ["tests/metrics/test_skimage_agreement.py", "tests/data/test_synthesis.py"],
    },
}

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_FLOOR = re.compile(r">=\s*([0-9][0-9A-Za-z.+!-]*)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_floors(dependencies: list[str]) -> dict[str, str]:
    """``{"torch": "2.3", ...}`` from requirement strings such as ``"torch>=2.3"`` (extras, markers and upper
    bounds are allowed and ignored); a requirement without a ``>=`` floor raises ``ValueError``."""
    floors: dict[str, str] = {}
    for req in dependencies:
        spec = req.split(";", 1)[0]
        name, floor = _NAME.match(spec), _FLOOR.search(spec)
        if name is None or floor is None:
            raise ValueError(f"{req!r} in [project] dependencies has no '>=' floor: write it as NAME>=VERSION")
        floors[_norm(name.group(1))] = floor.group(1)
    return floors


def extra_requirements(optional: dict[str, list[str]], extra: str, project: str = "semprior") -> list[str]:
    """The requirement strings of ``extra`` with ``project[other]`` self-references expanded (recursively)."""
    if extra not in optional:
        raise ValueError(f"{extra!r} is not an extra of [project.optional-dependencies]: one of {', '.join(optional)}")
    out: list[str] = []
    for req in optional[extra]:
        m = re.fullmatch(rf"\s*{re.escape(project)}\[([^\]]+)\]\s*", req)
        if m is None:
            out.append(req)
        else:
            for other in m.group(1).split(","):
                out += [r for r in extra_requirements(optional, other.strip(), project) if r not in out]
    return out


def merge_floors(*parts: dict[str, str]) -> dict[str, str]:
    """One ``{name: floor}`` from several; a package given two different floors raises ``ValueError``."""
    merged: dict[str, str] = {}
    for part in parts:
        for name, floor in part.items():
            if merged.setdefault(name, floor) != floor:
                raise ValueError(f"{name} has two floors, {merged[name]} and {floor}: check those extras one at a time")
    return merged


_NO_IMPORT = re.compile(r"could not import '([A-Za-z0-9_.]+)'")


def skipped_imports(skips: list[str], modules: list[str]) -> list[str]:
    """The skip messages (``file::name: message``) that say one of ``modules`` (or a submodule) could not be
    imported: at the floors of the extra that provides them such a test must run."""
    roots = set(modules)
    return [s for s in skips if (m := _NO_IMPORT.search(s)) and m.group(1).split(".")[0] in roots]


def parse_python_floor(requires_python: str) -> str:
    """``"3.10"`` from ``requires-python = ">=3.10"``."""
    m = _FLOOR.search(requires_python)
    if m is None:
        raise ValueError(f"requires-python {requires_python!r} has no '>=' floor: write it as >=3.X")
    return m.group(1)


def read_project(path: Path) -> dict:
    import tomllib

    return tomllib.loads(path.read_text())["project"]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.run([str(c) for c in cmd], text=True, **kw)


def _harness():
    spec = importlib.util.spec_from_file_location("_harness", REPO / "benchmarks" / "_harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _junit_failed(xml: Path) -> list[str]:
    """``file::name`` of each test case that failed or errored, with the first line of its message."""
    out = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            path = case.get("classname", "").replace(".", "/") + ".py"
            msg = (bad.get("message") or "").strip().splitlines()
            out.append(f"{path}::{case.get('name')}: {msg[0][:160] if msg else ''}")
    return out


def _junit_skipped(xml: Path) -> list[str]:
    """``file::name: reason`` of each skipped test case."""
    out = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        skip = case.find("skipped")
        if skip is not None:
            path = case.get("classname", "").replace(".", "/") + ".py"
            out.append(f"{path}::{case.get('name')}: {(skip.get('message') or '').strip()[:160]}")
    return out


def _junit_counts(xml: Path) -> dict[str, int]:
    suites = ET.parse(xml).getroot()
    suite = suites if suites.tag == "testsuite" else suites.find("testsuite")
    assert suite is not None
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    return {"passed": n["tests"] - n["failures"] - n["errors"] - n["skipped"], **n}


def _pip_error(stderr: str) -> list[str]:
    """pip's error lines (its "ERROR:" line and what follows, without the index warnings), at most 20."""
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("WARNING: Location")]
    start = next((k for k, ln in enumerate(lines) if ln.startswith("ERROR")), max(len(lines) - 20, 0))
    return lines[start : start + 20]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", help="interpreter for the venv (default: python<requires-python floor> on PATH)")
    ap.add_argument("--venv", type=Path, help="venv folder to create (default: a temporary folder, removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary venv and print its path")
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        choices=sorted(EXTRAS),
        help="also install this extra at its floors and run its tests instead of the core ones; repeatable",
    )
    ap.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="NAME==VERSION",
        help="install this version instead of the floor (recorded in the result); repeatable",
    )
    ap.add_argument(
        "--out", help="result stem (default: benchmarks/results/floors, or floors_extra_NAME[_NAME...] with --extra)"
    )
    a = ap.parse_args(argv)

    project = read_project(REPO / "pyproject.toml")
    core = parse_floors(project["dependencies"])
    extras = sorted(set(a.extra))
    try:
        extra_floors = {e: parse_floors(extra_requirements(project["optional-dependencies"], e)) for e in extras}
        floors = merge_floors(core, *extra_floors.values())
    except ValueError as e:
        ap.error(str(e))
    py_floor = parse_python_floor(project["requires-python"])
    overrides: dict[str, str] = {}
    for o in a.override:
        name, sep, version = o.partition("==")
        if not sep or _norm(name) not in floors:
            ap.error(f"--override {o!r}: write NAME==VERSION with NAME one of {', '.join(floors)}")
        overrides[_norm(name)] = version
    out_stem = a.out or str(
        REPO / "benchmarks" / "results" / ("floors_extra_" + "_".join(extras) if extras else "floors")
    )
    tests = [t for e in extras for t in EXTRAS[e]["tests"]] if extras else SMOKE
    tests = list(dict.fromkeys(tests))
    deselect = [] if extras else DESELECT
    modules = [m for e in extras for m in EXTRAS[e]["modules"]]
    python = a.python or f"python{py_floor}"
    found = shutil.which(python)
    runs = found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0
    if not runs:
        ap.error(f"{python} is not a working interpreter on PATH: name one with --python (the floor is {py_floor})")

    venv = a.venv or Path(tempfile.mkdtemp(prefix="semprior-floors-")) / "venv"
    if venv.exists():
        ap.error(f"--venv {venv} exists: name a new folder (the check needs a fresh venv)")
    h = _harness()
    data: dict = {
        "ok": False,
        "python_floor": py_floor,
        "floors": core,
        "extras": extras,
        "extra_floors": extra_floors,
        "overrides": overrides,
    }
    t0 = time.perf_counter()
    if _run([python, "-m", "venv", venv]).returncode:
        print(f"check_floors: could not create a venv with {python}", file=sys.stderr)
        return 1
    vpy = venv / "bin" / "python"
    want = {n: overrides.get(n, f) for n, f in floors.items()}
    pins = [f"{n}=={v}" for n, v in want.items()]
    pip = _run([vpy, "-m", "pip", "install", "-q", "--no-compile", *pins, *RUNNER], stderr=subprocess.PIPE)
    print(pip.stderr, end="", file=sys.stderr)
    if pip.returncode:
        print(
            f"check_floors: pip could not install {' '.join(pins)} (see above): "
            "raise that floor in pyproject.toml or pass --override NAME==VERSION",
            file=sys.stderr,
        )
        data |= {"pip_failed": pins, "failed": _pip_error(pip.stderr)}
        meta = h.provenance(__file__, argv, threads=1, torch=want.get("torch"))
        title = "# Dependency floors" + (f" of the extra {', '.join(extras)}" if extras else "")
        md = [
            title,
            "",
            "pip could not install the floors, so no test ran: **the floors do not hold**.",
            "",
            f"`pip install {' '.join(pins)}` said:",
            "",
            "```text",
            *data["failed"],
            "```",
        ]
        h.write_result(out_stem, meta, data, md)
        print(f"wrote {out_stem}.json and {out_stem}.md")
        return 1
    if _run([vpy, "-m", "pip", "install", "-q", "--no-deps", REPO]).returncode:
        print("check_floors: pip install --no-deps . failed (see above)", file=sys.stderr)
        return 1
    t_install = time.perf_counter() - t0

    listed = _run([vpy, "-m", "pip", "list", "--format=json"], capture_output=True, check=True).stdout
    installed = {_norm(d["name"]): d["version"] for d in json.loads(listed)}
    probe = (
        "import json, platform, semprior, importlib.metadata as md, sys\n"
        "print(json.dumps([platform.python_version(), semprior.__file__,"
        " {n: md.metadata(n)['Requires-Python'] for n in sys.argv[1:]}]))"
    )
    out = _run([vpy, "-c", probe, *floors], capture_output=True, check=True, cwd=venv).stdout
    py_version, semprior_file, requires_python = json.loads(out)

    xml = venv / "junit.xml"
    t1 = time.perf_counter()
    # the venv's pytest script, run in the checkout: the checkout's folder is not on sys.path, so the tests import
    # the installed semprior
    run = _run(
        [
            venv / "bin" / "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not slow and not data",
            f"--junitxml={xml}",
            *tests,
            *(f"--deselect={t}" for t in deselect),
        ],
        cwd=REPO,
    )
    t_tests = time.perf_counter() - t1
    counts = (
        _junit_counts(xml) if xml.is_file() else {"passed": 0, "tests": 0, "failures": 0, "errors": 1, "skipped": 0}
    )
    skipped = _junit_skipped(xml) if xml.is_file() else []
    unimported = skipped_imports(skipped, modules)
    ok = run.returncode == 0 and counts["passed"] > 0 and not unimported

    rows = [(n, floors[n], installed.get(n, "missing")) for n in floors]
    width = max(len(n) for n in floors) + 2
    print(f"\n{'package':<{width}}{'floor':<12}installed")
    print(f"{'python':<{width}}{py_floor:<12}{py_version}")
    for n, f, v in rows:
        print(f"{n:<{width}}{f:<12}{v}")
    for s in unimported:
        print(f"skipped although the extra is installed: {s}")
    nfail = counts["failures"] + counts["errors"]
    verdict = "the floors hold" if ok else "THE FLOORS DO NOT HOLD"
    print(
        f"\n{counts['passed']} passed, {nfail} failed, {counts['skipped']} skipped in {t_tests:.0f} s "
        f"(install {t_install:.0f} s): {verdict}"
    )

    meta = h.provenance(__file__, argv, threads=1, python=py_version, torch=installed.get("torch"))
    data |= {
        "ok": ok,
        "installed": {n: installed.get(n) for n in floors},
        "requires_python": requires_python,
        "venv_packages": installed,
        "semprior_imported_from": semprior_file,
        "tests": tests,
        "deselected": deselect,
        "pytest_markers": "not slow and not data",
        "counts": counts,
        "failed": _junit_failed(xml) if xml.is_file() else ["no junit.xml: pytest did not run (see its output)"],
        "skipped": skipped,
        "skipped_without_the_extra": unimported,
        "seconds": {"install": round(t_install, 1), "tests": round(t_tests, 1)},
    }
    pulled = sorted(set(installed) - set(floors) - {"pip", "setuptools", "semprior"})
    md = [
        "# Core dependency floors" if not extras else f"# Dependency floors of the extra {', '.join(extras)}",
        "",
        f"Python {py_version} (floor {py_floor}); {counts['passed']} passed, {nfail} failed, "
        f'{counts["skipped"]} skipped (`-m "not slow and not data"`, {len(tests)} test files); '
        + ("the floors hold." if ok else "**the floors do not hold**."),
        "",
        "| package | floor | installed | its Requires-Python |",
        "|---|---|---|---|",
        f"| python | {py_floor} | {py_version} | |",
        *[
            f"| {n}{' (' + ', '.join(e for e in extras if n in extra_floors[e]) + ')' if n not in core else ''} "
            f"| {f} | {v}{' (override)' if n in overrides else ''} | `{requires_python.get(n) or ''}` |"
            for n, f, v in rows
        ],
        "",
        "Tests: " + ", ".join(f"`{t}`" for t in tests) + ".",
        *(["", "Deselected (they need an extra): " + ", ".join(f"`{t}`" for t in deselect) + "."] if deselect else []),
        *(["", "Pulled in by the floors (pip's choice): " + ", ".join(f"{n} {installed[n]}" for n in pulled) + "."]),
        *(["", "Failed:", "", *(f"- `{f}`" for f in data["failed"])] if data["failed"] else []),
        *(
            ["", "Skipped although the extra is installed:", "", *(f"- `{s}`" for s in unimported)]
            if unimported
            else []
        ),
        *(["", "Skipped:", "", *(f"- `{s}`" for s in skipped)] if skipped else []),
    ]
    h.write_result(out_stem, meta, data, md)
    print(f"wrote {out_stem}.json and {out_stem}.md")
    if a.venv is None and not a.keep:
        shutil.rmtree(venv.parent, ignore_errors=True)
    elif a.keep:
        print(f"venv kept at {venv}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
