"""The docs read as a manual of what is true now: no project history on the pages (it goes to CHANGELOG.md).

Fails on issue numbers, numbered sessions, commit hashes of this project, "before this change"
numbers and stories of lost runs in docs/**/*.md and README.md. A hash that names another
project's version (pyiqa's, checked for compatibility) is listed in ALLOWED with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted((REPO / "docs").rglob("*.md")) + [REPO / "README.md"]
HISTORY = re.compile(
    r"\bissue\s+#?\d+|\bissue's\b|\bsessions?\s+\d+|\bsession-\d+|\bthis session\b|lost with the machine|"
    r"measured before|before this change|\bcommit\s+`?[0-9a-f]{7,40}\b",
    re.I,
)
#: (page, text) pairs that look like history but are not
ALLOWED = {("noref.md", "commit `01ae427"): "the pyiqa repository's version that the loader was checked against"}


def test_no_project_history_on_the_pages():
    found = []
    for page in PAGES:
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for m in HISTORY.finditer(line):
                if any(page.name == p and t in line for p, t in ALLOWED):
                    continue
                found.append(f"{page.relative_to(REPO)}:{n}: ...{line[max(0, m.start() - 40) : m.end() + 40]}...")
    assert not found, (
        "project history on user pages; say what is true now and move the history to CHANGELOG.md:\n" + "\n".join(found)
    )


def test_changelog_exists_with_an_unreleased_section():
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## Unreleased" in text
