"""Rewrites the generated block of docs/rulebook.md from the rule catalogue."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cds_service.domain.catalogue import markdown
from cds_service.domain.policy import DEFAULT_POLICY

RULEBOOK = Path(__file__).resolve().parents[2] / "docs" / "rulebook.md"
_BLOCK = re.compile(r"(<!-- generated: rules[^\n]*-->\n)(.*?)(<!-- end generated: rules -->)", re.S)


def generated_block(text: str) -> str:
    match = _BLOCK.search(text)
    if match is None:
        raise AssertionError("docs/rulebook.md has lost its generated-block markers")
    return match.group(2)


def replace_block(text: str, block: str) -> str:
    return _BLOCK.sub(lambda m: m.group(1) + block + m.group(3), text, count=1)


def main() -> int:
    text = RULEBOOK.read_text(encoding="utf-8")
    RULEBOOK.write_text(replace_block(text, markdown(DEFAULT_POLICY)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
