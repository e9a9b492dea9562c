"""docs/quickstart.md runs as written from an installed wheel, in an empty folder outside the repository.

The wheel is built from this checkout (only ``pyproject.toml``, ``README.md`` and ``semprior/`` are
copied to the build folder) and installed with ``pip install --no-deps --target``: the test's
interpreter provides torch and the other dependencies, the wheel provides semprior (its code,
console script and shipped weights). Each block marked "run outside the repository by
tests/docs/test_quickstart.py" runs in order in one scratch folder whose ``HOME`` is scratch too,
with ``photo.jpg``, ``mypairs/{low,high}`` and ``~/data/LOL`` made from scikit-image's photos
(stand-ins: the commands are checked, not the scores). The training block's step counts are cut
by the substitutions below, each of which must match the page exactly once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "quickstart.md"
MARK = "run outside the repository by tests/docs/test_quickstart.py"
FENCE = re.compile(
    r"<!--\s*not run in tests:\s*(?P<why>[^>]*?)\s*-->\s*\n+```(?P<lang>\w+)\n(?P<code>.*?)^```", re.M | re.S
)
# the tutorial's training budget, cut to a smoke run (old => new; each must occur once on the page)
SUBS = {
    "steps: 500": "steps: 2",
    "batch_size: 8": "batch_size: 2",
    "val_every: 100": "val_every: 1",
    "patch_size: 128": "patch_size: 32",
    "patch_stages: [[0, 128]]": "patch_stages: [[0, 32]]",
}

pytestmark = pytest.mark.slow


def blocks() -> list[tuple[str, str]]:
    text = PAGE.read_text(encoding="utf-8")
    return [(m["lang"], m["code"]) for m in FENCE.finditer(text) if m["why"] == MARK]


def test_page_has_the_four_steps():
    langs = [lang for lang, _ in blocks()]
    assert langs == ["bash", "python", "bash", "bash"], langs
    text = PAGE.read_text(encoding="utf-8")
    for old in SUBS:
        assert text.count(old) == 1, f"{old!r} must occur once in {PAGE.name} (the test shortens it)"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``--target`` folder holding the wheel built from this checkout (its bin/ has the console script)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "semprior", src / "semprior", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    done = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = dist.glob("semprior-*.whl")
    site = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (site / "bin" / "semprior").is_file(), "the wheel installs no `semprior` console script"
    return site


def _save(img, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path, quality=92)


def _inputs(work: Path, home: Path) -> None:
    """photo.jpg, mypairs/{low,high} (8 pairs) and ~/data/LOL/eval15/{low,high} (3 pairs), from scikit-image's "
    "photos."""
    import torch

    from semprior.data import LowLightConfig, default_clean_images, synthesize_low_light

    g = torch.Generator().manual_seed(0)
    photos = default_clean_images(("coffee", "astronaut", "chelsea"))
    crops = [img[:, y : y + 96, x : x + 128] for img in photos.values() for y, x in ((0, 0), (150, 200), (250, 300))]
    lows = [synthesize_low_light(c[None], LowLightConfig(), generator=g)[0] for c in crops]
    _save(lows[0], work / "photo.jpg")
    for i, (low, high) in enumerate(zip(lows[:8], crops[:8])):
        _save(low, work / "mypairs" / "low" / f"{i}.png")
        _save(high, work / "mypairs" / "high" / f"{i}.png")
    for i, (low, high) in enumerate(zip(lows[-3:], crops[-3:])):
        _save(low, home / "data" / "LOL" / "eval15" / "low" / f"{i}.png")
        _save(high, home / "data" / "LOL" / "eval15" / "high" / f"{i}.png")


def test_quickstart_runs_outside_the_repository(installed, tmp_path):
    work, home = tmp_path / "night", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    _inputs(work, home)
    text = PAGE.read_text(encoding="utf-8")
    yaml = re.search(r"^```yaml\n(.*?)^```", text, re.M | re.S)[1]
    for old, new in SUBS.items():
        yaml = yaml.replace(old, new)
    (work / "finetune.yaml").write_text(yaml)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    env.update(
        HOME=str(home),
        PYTHONPATH=str(installed),
        SEMPRIOR_PROGRESS="0",
        MPLBACKEND="Agg",
        PATH=f"{installed / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"),
    )
    which = subprocess.run(
        [sys.executable, "-c", "import semprior; print(semprior.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert Path(which.stdout.strip()).is_relative_to(installed), f"semprior imported from {which.stdout.strip()}"
    for lang, code in blocks():
        cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-e", "-o", "pipefail", "-c", code]
        done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (
            f"quickstart {lang} block failed:\n{code}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    for out in (
        "enhanced/photo.png",
        "enhanced_lime/photo.png",
        "photo_deepspg.png",
        "runs/mine/best.pt",
        "enhanced_mine/photo.png",
    ):
        assert (work / out).is_file(), f"the quick start did not write {out}"
    assert any((work / "eval_lol").iterdir()), "semprior eval wrote nothing into eval_lol/"
    assert not (REPO / "night").exists() and not any(REPO.glob("photo*.png"))


def test_readme_quick_start_commands_are_the_tested_ones():
    """The README's quick start repeats commands of docs/quickstart.md (which the test above runs) or `semprior app`."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    page = PAGE.read_text(encoding="utf-8")
    commands = [
        line.split("  #")[0].strip()
        for code in re.findall(r"```bash\n(.*?)```", section, re.S)
        for line in code.splitlines()
        if line.strip()
    ]
    assert len(commands) >= 6
    missing = [c for c in commands if c not in page and c != "semprior app"]
    assert not missing, f"README quick start commands not on docs/quickstart.md (so untested): {missing}"
