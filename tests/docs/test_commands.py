"""Commands in docs/ run as written: every shell block is executed on tiny inputs, or says why not.

Each fenced ```bash / ```sh / ```shell / ```console block in docs/**/*.md needs an HTML comment
on the line right above its opening fence (blank lines allowed in between), or, when there is none
above, right below its closing fence:

    <!-- not run in tests: REASON -->
    <!-- run in tests -->
    <!-- run in tests: setup=lol; sub=--out runs/x => --out runs/x --steps 2; timeout=300 -->

A block without one fails `test_every_shell_block_is_run_or_marked`, listing page and line.
```python blocks are run only when marked `<!-- run in tests -->` (e.g. the home page example).

How a "run" block is executed (`bash -e -o pipefail`, one script per block):
- in a scratch folder that holds links to the repository's `configs/`, `examples/`, `benchmarks/`,
  `experiments/`, `tools/`, `docs/` and `.venv` (the running interpreter's venv), so repository-relative paths work and
  outputs (`runs/`, `out/`) never land in the checkout; `HOME` is a scratch home too (`~/data/LOL`);
- with `PATH` starting at the venv's bin (so `semprior` is the console script) and `PYTHONPATH`
  at this checkout (so this checkout's code runs), `SEMPRIOR_PROGRESS=0`;
- options, separated by `;`:
  `setup=NAME[,NAME]` builds inputs first (see SETUPS below; a setup that needs ../shared/data
  skips the block cleanly when it is absent); `file=NAME` writes the last ```yaml block above on
  the same page to NAME; `sub=OLD => NEW` replaces text that occurs exactly once in the block and
  its files before it runs (repeatable; for tiny step counts), `suball=OLD => NEW` every
  occurrence; `timeout=SECONDS` (default 300).
  In NEW, `{checkpoint}` / `{checkpoint-region}` is a tiny DeepSPG checkpoint (no prior / the
  weight-free RegionPrior) that this test trains for two steps with `semprior train`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SHARED = Path(os.environ.get("SEMPRIOR_SHARED_DATA", REPO.parent / "shared" / "data"))
SHELL_LANGS = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not run in tests|run in tests)\s*(?::\s*(?P<opts>.*?))?\s*-->\s*$")


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None = None  # "run" | "skip" | None
    options: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _marker_at(lines: list[str], i: int, step: int) -> tuple[int, re.Match | None]:
    while 0 <= i < len(lines) and not lines[i].strip():
        i += step
    return i, (MARKER.match(lines[i]) if 0 <= i < len(lines) else None)


def extract_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, claimed, i = [], {}, 0
    rel = page.relative_to(DOCS).as_posix()
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group("fence"), m.group("lang").lower(), i
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        indent = len(m.group("indent"))
        code = "\n".join(ln[indent:] for ln in lines[i + 1 : j])
        i = j + 1
        if lang not in SHELL_LANGS | {"python", "py"}:
            continue
        block = Block(rel, start + 1, lang, code)
        at, mk = _marker_at(lines, start - 1, -1)
        if mk is None:
            at, mk = _marker_at(lines, j + 1, +1)
        if mk is not None:
            if at in claimed:
                block.errors.append(
                    f"marker on line {at + 1} is next to two blocks (lines {claimed[at]} and {start + 1})"
                )
            claimed[at] = start + 1
            block.marker = "run" if mk.group("kind") == "run in tests" else "skip"
            block.options = mk.group("opts") or ""
            if block.marker == "skip" and not block.options.strip():
                block.errors.append("`not run in tests` needs a reason after the colon")
        if lang in SHELL_LANGS or block.marker == "run":
            blocks.append(block)
    return blocks


BLOCKS = [b for page in sorted(DOCS.rglob("*.md")) for b in extract_blocks(page)]


def test_every_shell_block_is_run_or_marked():
    bad = [f"{b.id} ```{b.lang}: {b.code.splitlines()[0] if b.code else ''}" for b in BLOCKS if b.marker is None]
    bad += [f"{b.id}: {e}" for b in BLOCKS for e in b.errors]
    assert not bad, (
        f"{len(bad)} shell blocks in docs/ are neither run by this test nor marked; put "
        "`<!-- run in tests: ... -->` or `<!-- not run in tests: REASON -->` above each "
        "(see tests/docs/test_commands.py):\n" + "\n".join(bad)
    )


# Pages whose commands must be executed (at least one "run" block), not only marked.
MUST_RUN = ("reproduce.md",)


def test_pages_that_must_run_their_commands():
    missing = [page for page in MUST_RUN if not any(b.page == page and b.marker == "run" for b in BLOCKS)]
    assert not missing, f"no shell block of {missing} is run by this test; add `<!-- run in tests: ... -->`"


# ---- setups: inputs a block needs, built in the scratch folder --------------------------------


def _need_shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared/data); set SEMPRIOR_SHARED_DATA to run it")
    return path


def _setup_photos(work: Path, home: Path) -> None:
    """night.jpg, more_photos/{a,b}.png and big.png: dark photos made from scikit-image's samples."""
    import numpy as np
    from PIL import Image

    from semprior.data.samples import default_clean_images

    imgs = default_clean_images(("coffee", "astronaut"))
    dark = {k: (v * 0.15).clamp(0, 1) for k, v in imgs.items()}

    def save(t, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)

    save(dark["coffee"][:, :96, :128], work / "night.jpg")
    save(dark["astronaut"][:, :64, :64], work / "more_photos" / "a.png")
    save(dark["coffee"][:, 100:164, 100:164], work / "more_photos" / "b.png")
    save(dark["astronaut"][:, :160, :224], work / "big.png")


def _quartered_pairs(low: Path, high: Path, n_images: int = 6) -> None:
    """4 * n_images small pairs: eval15 pairs cut into quarters (a stand-in for a smoke run, not data)."""
    from PIL import Image

    eval15 = _need_shared("lol_v1_eval15")
    for side, out in (("low", low), ("high", high)):
        out.mkdir(parents=True)
        for n, src in enumerate(sorted((eval15 / side).glob("*.png"))[:n_images]):
            img = Image.open(src)
            w, h = img.size
            boxes = [(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2), (0, h // 2, w // 2, h), (w // 2, h // 2, w, h)]
            for q, box in enumerate(boxes):
                img.crop(box).save(out / f"{n}{q}.png")


def _setup_lol(work: Path, home: Path) -> None:
    """A LOL-v1 layout at data/LOL and ~/data/LOL: 3 eval15 pairs from ../shared/data, and a stand-in
    our485 of 45 links to the 15 eval15 pairs (600x400, three names each: enough for the recipes'
    20 held-out pairs, batch 16 and 256-px patches in a two-step smoke run; not a result)."""
    eval15 = _need_shared("lol_v1_eval15")
    root = work / "data" / "LOL"
    for side in ("low", "high"):
        (root / "eval15" / side).mkdir(parents=True)
        for src in sorted((eval15 / side).glob("*.png"))[:3]:  # 3 test pairs keep the eval commands quick
            (root / "eval15" / side / src.name).symlink_to(src)
        (root / "our485" / side).mkdir(parents=True)
        for src in sorted((eval15 / side).glob("*.png")):
            for copy in range(3):
                (root / "our485" / side / f"{copy}{src.name}").symlink_to(src)
    (home / "data").mkdir(exist_ok=True)
    (home / "data" / "LOL").symlink_to(root, target_is_directory=True)


def _setup_pairs(work: Path, home: Path) -> None:
    """pairs/{low,high}: three LOL-v1 eval15 pairs."""
    eval15 = _need_shared("lol_v1_eval15")
    for side in ("low", "high"):
        (work / "pairs" / side).mkdir(parents=True)
        for src in sorted((eval15 / side).glob("*.png"))[:3]:
            shutil.copy(src, work / "pairs" / side / src.name)


def _setup_mydata(work: Path, home: Path) -> None:
    """mydata/{low,high}: 24 quarter-size eval15 pairs (the train guide's folder)."""
    _quartered_pairs(work / "mydata" / "low", work / "mydata" / "high")


def _setup_shared(work: Path, home: Path) -> None:
    """../shared/data next to the scratch checkout, as the guides assume."""
    (work.parent / "shared").mkdir(exist_ok=True)
    (work.parent / "shared" / "data").symlink_to(_need_shared(), target_is_directory=True)


SETUPS = {
    "photos": _setup_photos,
    "lol": _setup_lol,
    "pairs": _setup_pairs,
    "mydata": _setup_mydata,
    "shared": _setup_shared,
}

TINY_TRAIN = """\
model: {name: deepspg, width: 8}
prior: none
text: none
data: {kind: synthetic, patch_size: 32, val_items: 2, val_size: 32}
train: {steps: 2, batch_size: 2, val_every: 2, ckpt_every: 0, log_every: 1, progress: false}
"""


def _env(work: Path, home: Path) -> dict[str, str]:
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(
        HOME=str(home),
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        SEMPRIOR_PROGRESS="0",
        PYTHONPATH=f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep),
        MPLBACKEND="Agg",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"),
    )
    return env


_CHECKPOINTS: dict[str, Path] = {}


def tiny_checkpoint(prior: str, tmp_path_factory) -> Path:
    """A DeepSPG checkpoint from `semprior train` on a two-step tiny config (the users' path)."""
    if prior in _CHECKPOINTS:
        return _CHECKPOINTS[prior]
    work = tmp_path_factory.mktemp(f"ckpt-{prior}")
    (work / "tiny.yaml").write_text(TINY_TRAIN.replace("prior: none", f"prior: {prior}"))
    cmd = [sys.executable, "-m", "semprior", "train", "--config", "tiny.yaml", "--out", "run"]
    done = subprocess.run(cmd, cwd=work, env=_env(work, work), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"tiny training for the {{checkpoint}} fixture failed:\n{done.stderr[-3000:]}"
    found = sorted((work / "run").glob("best.pt")) or sorted((work / "run").glob("last.pt"))
    assert found, f"tiny training wrote no checkpoint: {sorted(p.name for p in (work / 'run').iterdir())}"
    _CHECKPOINTS[prior] = found[0]
    return found[0]


def _parse_options(text: str) -> dict[str, list[str]]:
    opts: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in {"setup", "file", "sub", "suball", "timeout"}:
            raise ValueError(
                f"bad option {part!r} in a run-in-tests marker; use setup=, file=, sub=OLD => NEW, suball=, timeout="
            )
        opts.setdefault(key.strip(), []).append(value.strip())
    return opts


def _yaml_above(block: Block, name: str) -> str:
    """The last ```yaml block above `block` on its page (the file the commands read as `name`)."""
    text = (DOCS / block.page).read_text(encoding="utf-8").splitlines()[: block.line - 1]
    found = re.findall(r"^```ya?ml\n(.*?)^```", "\n".join(text) + "\n", flags=re.M | re.S)
    if not found:
        raise ValueError(f"{block.id}: file={name} but no ```yaml block above it on the page")
    return found[-1]


def _timeout(block: Block) -> int:
    try:
        return int(_parse_options(block.options).get("timeout", ["300"])[-1])
    except ValueError:
        return 300  # the test itself reports the bad option


RUN = [
    # pytest-timeout's global limit would cut a long block short: give each block its own, plus
    # room for the setups and the tiny trainings behind {checkpoint}
    pytest.param(b, id=b.id, marks=pytest.mark.timeout(_timeout(b) + 600))
    for b in BLOCKS
    if b.marker == "run"
]


@pytest.mark.slow
@pytest.mark.parametrize("block", RUN)
def test_marked_block_runs(block: Block, tmp_path, request):
    opts = _parse_options(block.options)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    for name in ("configs", "examples", "benchmarks", "experiments", "tools", "docs"):
        if (REPO / name).exists():
            (work / name).symlink_to(REPO / name, target_is_directory=True)
    (work / ".venv").symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    for names in opts.get("setup", []):
        for name in filter(None, (n.strip() for n in names.split(","))):
            if name not in SETUPS:
                raise ValueError(f"{block.id}: unknown setup {name!r}; known: {sorted(SETUPS)}")
            SETUPS[name](work, home)
    code = block.code
    if block.lang == "console":  # keep only the typed commands
        code = "\n".join(ln[2:] for ln in code.splitlines() if ln.startswith("$ "))
    files = {name: _yaml_above(block, name) for name in opts.get("file", [])}
    subs = [(s, True) for s in opts.get("sub", [])] + [(s, False) for s in opts.get("suball", [])]
    for sub, once in subs:
        old, sep, new = sub.partition("=>")
        old, new = old.strip(), new.strip()
        for prior in ("none", "region"):
            tag = "{checkpoint}" if prior == "none" else f"{{checkpoint-{prior}}}"
            if tag in new:
                new = new.replace(tag, str(tiny_checkpoint(prior, request.getfixturevalue("tmp_path_factory"))))
        count = sum(text.count(old) for text in [code, *files.values()]) if sep and old else 0
        if count == 0 or (once and count > 1):
            raise ValueError(
                f"{block.id}: sub {sub!r} matches {count} times in the block and its files {sorted(files)}; "
                "sub= must match exactly once (suball= replaces every occurrence)"
            )
        code = code.replace(old, new)
        files = {k: v.replace(old, new) for k, v in files.items()}
    for name, text in files.items():
        (work / name).write_text(text)
    timeout = _timeout(block)
    if block.lang in {"python", "py"}:
        cmd = [sys.executable, "-c", code]
    else:
        cmd = ["bash", "-e", "-o", "pipefail", "-c", code]
    done = subprocess.run(cmd, cwd=work, env=_env(work, home), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{block.id} failed (exit {done.returncode}) as run in {work}:\n{code}\n--- stdout\n"
        f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
