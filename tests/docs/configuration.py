"""Rewrites the settings table of docs/configuration.md and the settings of .env.example from
the declarations in cds_service/config.py (``make docs``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cds_service.config import env_example, markdown

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
ENV_EXAMPLE = ROOT / ".env.example"

#: The generated part of each file lies between its two marker lines.
MARKERS = {
    CONFIGURATION: re.compile(
        r"(<!-- generated: settings[^\n]*-->\n)(.*?)(<!-- end generated: settings -->)", re.S
    ),
    ENV_EXAMPLE: re.compile(
        r"(# === generated: settings[^\n]*\n)(.*?)(# === end generated: settings[^\n]*)", re.S
    ),
}
GENERATORS = {CONFIGURATION: markdown, ENV_EXAMPLE: env_example}


def generated_block(path: Path, text: str) -> str:
    match = MARKERS[path].search(text)
    if match is None:
        raise AssertionError(f"{path.name} has lost its generated-block markers")
    return match.group(2)


def replace_block(path: Path, text: str, block: str) -> str:
    generated_block(path, text)  # the markers are there
    return MARKERS[path].sub(lambda m: m.group(1) + block + m.group(3), text, count=1)


def main() -> int:
    for path, generate in GENERATORS.items():
        text = path.read_text(encoding="utf-8")
        path.write_text(replace_block(path, text, generate()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
