"""Result files (benchmarks/results/, experiments/*/results/, experiments/*/weights/*/stage.json) record the commit,
command and machine that made them; each one is cited by the docs; and a number written on a line of the docs that
names a result file, or in a table that starts just after such a line, is a number of that file (rounded as printed)."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RESULT_DIRS = [REPO / "benchmarks" / "results", *sorted((REPO / "experiments").glob("*/results"))]
RESULTS = sorted(f for d in RESULT_DIRS for f in d.iterdir() if f.is_file())
STAGES = sorted((REPO / "experiments").glob("*/weights/*/stage.json"))
#: where a result may be cited: the manual, the README, the experiments' READMEs and configs, the model cards
CITING = [
    REPO / "README.md",
    *sorted((REPO / "docs").rglob("*.md")),
    *sorted((REPO / "experiments").rglob("README.md")),
    *sorted((REPO / "experiments").rglob("*.yaml")),
    *sorted((REPO / "semprior" / "configs").rglob("*.yaml")),
    *sorted((REPO / "semprior" / "pretrained").glob("*/MODEL_CARD.md")),
]
#: ``benchmarks/results/x``, ``experiments/e/results/x``, or ``e/results/x`` (a snippet include, based at experiments/)
CITE = re.compile(r"((?:benchmarks|(?:experiments/)?[\w-]+)/results/[\w*-]+)(?:\.(?:md|json|png))?")
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+\.\d+(?:e-?\d+)?)(?![\w.]*\d)")  # 2.6e-14 is one number
ANY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def group(path: Path) -> str:
    """``results/stages_table.md`` and ``results/stages.json`` are one result: ``results/stages``."""
    return str(path.parent.relative_to(REPO) / path.stem.removesuffix("_table"))


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", [p for p in RESULTS if p.suffix == ".json"] + STAGES, ids=rel)
def test_a_json_result_records_commit_command_and_machine(path):
    data = json.loads(path.read_text())
    missing = [k for k in ("commit", "command", "machine") if not data.get(k)]
    assert not missing, f"{rel(path)} records no {', '.join(missing)}: write it with benchmarks/_harness.write_result"


@pytest.mark.parametrize("path", [p for p in RESULTS if p.suffix == ".md"], ids=rel)
def test_a_markdown_result_names_the_commit_and_command_of_its_json(path):
    twin = REPO / (group(path) + ".json")
    assert twin.is_file(), f"{rel(path)} has no {rel(twin)} beside it (the raw numbers with their provenance)"
    data = json.loads(twin.read_text())
    text = path.read_text()
    assert str(data["commit"]) in text and str(data["command"]) in text, (
        f"{rel(path)} does not name the commit and command that {rel(twin)} records"
    )


def test_every_result_is_cited():
    text = "\n".join(p.read_text() for p in CITING)
    cited = _cited(text)
    for md in (p for p in RESULTS if p.suffix == ".md"):  # a result's own page cites its pictures
        cited |= {group(md.parent / m) for m in re.findall(r"!\[[^]]*\]\(([\w.-]+)\)", md.read_text())}
    uncited = sorted({group(p) for p in RESULTS if not any(fnmatch.fnmatch(group(p), c) for c in cited)})
    assert not uncited, f"results nobody cites (delete them, or cite them in docs/): {uncited}"


def _cited(text: str) -> set[str]:
    found = (c if c.startswith(("benchmarks/", "experiments/")) else "experiments/" + c for c in CITE.findall(text))
    return {c.removesuffix("_table") for c in found}


def _roundings(text: str) -> set[str]:
    out = set()
    for token in ANY_NUMBER.findall(text.replace(",", "")):
        x = float(token)
        for v in (abs(x), 100 * abs(x)):  # 100 x: shares printed as percentages
            out |= {f"{v * (1 + s * 1e-12):.{d}f}" for d in range(5) for s in (-1, 0, 1)}  # 0.605 may print 0.61
            out |= {re.sub(r"e([+-]?)0*(\d)", r"e\1\2", f"{v:.{d}e}").replace("e+", "e") for d in range(1, 3)}
    return out


def _cited_lines():
    """Each line that names a result file, and the rows of a table that starts at most 4 lines after such lines
    (checked against every file the 6 lines before the table name)."""
    for page in CITING:
        if page.suffix != ".md":
            continue
        lines = page.read_text().splitlines()
        table: list[str] = []  # the stems the current table is checked against
        for i, line in enumerate(lines):
            here = sorted(_cited(line))
            if line.startswith("|"):
                if not table and not (i and lines[i - 1].startswith("|")):  # a table starts here
                    near = [j for j in range(max(0, i - 4), i) if _cited(lines[j])]
                    if near:
                        table = sorted({c for j in range(max(0, i - 6), i) for c in _cited(lines[j])})
            else:
                table = []
            stems = sorted(set(here) | set(table))
            if stems and NUMBER.search(line):
                yield pytest.param(line, stems, id=f"{rel(page)}:{i + 1}")


@pytest.mark.parametrize(("line", "stems"), list(_cited_lines()))
def test_numbers_on_a_line_that_cites_a_result_are_in_it(line, stems):
    files = [f for s in stems for f in REPO.glob(s + ".*") if f.suffix in (".md", ".json")]
    assert files, f"{stems} cites no result file that exists"
    have = _roundings("\n".join(f.read_text() for f in files))
    wrong = [n for n in NUMBER.findall(line) if n.replace(",", "") not in have]
    assert not wrong, f"{wrong} are not numbers of {stems}: regenerate the result or correct the docs"
