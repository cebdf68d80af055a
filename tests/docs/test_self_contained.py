"""The repository stands on its own: nothing cites a document a clone does not contain, and
every relative link in the Markdown documentation leads to a file that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Names of the outside documents the project was once written from.
OUTSIDE = re.compile(
    r"\.\./shared/|shared/(clinical|cds-hooks|seeds)|\b(RULES|PROTOCOL|ARCHITECTURE)\.md"
    r"|[\"']shared[\"']\s*/\s*[\"'](clinical|cds-hooks|seeds)"
)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = []
    for name in listed:
        path = ROOT / name
        if path.suffix in {".png", ".gz", ".ico"} or not path.is_file():
            continue
        files.append(path)
    return files


def test_nothing_cites_a_document_outside_the_repository():
    offenders = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "\n".join(offenders[:20])


@pytest.mark.parametrize(
    "document",
    sorted(
        str(p.relative_to(ROOT))
        for p in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")]
    ),
)
def test_every_relative_link_leads_to_a_file(document):
    path = ROOT / document
    missing = []
    for target in _LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # a URL
        if not (path.parent / target).exists():
            missing.append(target)
    assert not missing, f"{document} links to missing files: {missing}"
