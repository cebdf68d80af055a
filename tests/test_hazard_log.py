"""docs/hazard-log.md is a live document: every control names the test that verifies it, every
named test exists, and every risk rating is the one the log's own matrix gives.

Tests are found by parsing the test files (``ast``): a node id is ``path::function`` or
``path::Class::method``, without parameters.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "docs" / "hazard-log.md"

#: DCB0129 matrix: MATRIX[likelihood][severity] (1-5 each), as the log prints it.
MATRIX = {
    5: {1: 3, 2: 4, 3: 4, 4: 5, 5: 5},
    4: {1: 2, 2: 3, 3: 3, 4: 4, 5: 5},
    3: {1: 2, 2: 2, 3: 3, 4: 3, 5: 4},
    2: {1: 1, 2: 2, 3: 2, 4: 3, 5: 4},
    1: {1: 1, 2: 1, 3: 2, 4: 2, 5: 3},
}
FIELDS = ("Description", "Causes", "Effect", "Initial risk", "Residual risk", "Status")
#: What the log must cover: a word of each hazard's title.
REQUIRED = (
    "folate",
    "regimen",
    "normal total B12",
    "flood",
    "outage",
    "markup injection",
    "stale",
    "units",
    "crafted",
    "token",
    "logs",
)

_HAZARD = re.compile(r"^## (HAZ-\d+): (.+)$")
_FIELD = re.compile(r"^- \*\*(.+?):\*\*\s*(.*)$")
_CONTROL = re.compile(r"^\s+- (C\d+)\.")
_NODE = re.compile(r"`(tests/[^`\s]+?\.py::[A-Za-z_][\w:]*)`")
_RISK = re.compile(r"^([1-5])/([1-5]) -> ([1-5])$")


@dataclass
class Hazard:
    id: str
    title: str
    fields: dict[str, str] = field(default_factory=dict)
    controls: dict[str, list[str]] = field(default_factory=dict)


def parse(text: str) -> list[Hazard]:
    hazards: list[Hazard] = []
    control: str | None = None
    for line in text.splitlines():
        if match := _HAZARD.match(line):
            hazards.append(Hazard(match[1], match[2]))
            control = None
        elif not hazards:
            continue
        elif match := _FIELD.match(line):
            hazards[-1].fields[match[1]] = match[2].strip()
            control = None
        elif match := _CONTROL.match(line):
            control = match[1]
            hazards[-1].controls[control] = _NODE.findall(line)
        elif control and line.startswith("    "):
            hazards[-1].controls[control] += _NODE.findall(line)
    return hazards


def collected_tests(root: Path = ROOT) -> set[str]:
    """Every test function's node id under tests/ (module level and in Test classes)."""
    found: set[str] = set()
    for path in (root / "tests").rglob("test_*.py"):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name.startswith("test"):
                    found.add(f"{rel}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        if item.name.startswith("test"):
                            found.add(f"{rel}::{node.name}::{item.name}")
    return found


def problems(hazards: list[Hazard], tests: set[str]) -> list[str]:
    """Everything wrong with the log, one line each (empty when it is sound)."""
    found: list[str] = []
    if not hazards:
        return ["no hazards"]
    for h in hazards:
        for name in FIELDS:
            if not h.fields.get(name):
                found.append(f"{h.id}: no {name}")
        if not h.controls:
            found.append(f"{h.id}: no controls")
        for control, nodes in h.controls.items():
            if not nodes:
                found.append(f"{h.id} {control}: no verifying test")
            found += [f"{h.id} {control}: no such test {n}" for n in nodes if n not in tests]
        ratings = []
        for name in ("Initial risk", "Residual risk"):
            match = _RISK.match(h.fields.get(name, ""))
            if not match:
                found.append(f"{h.id}: {name} is not 'S/L -> R'")
                continue
            severity, likelihood, rating = (int(g) for g in match.groups())
            if MATRIX[likelihood][severity] != rating:
                found.append(
                    f"{h.id}: {name} {severity}/{likelihood} rates {rating}, not "
                    f"{MATRIX[likelihood][severity]}"
                )
            ratings.append(rating)
        if len(ratings) == 2 and ratings[1] > ratings[0]:
            found.append(f"{h.id}: the residual risk is higher than the initial one")
    ids = [h.id for h in hazards]
    if len(ids) != len(set(ids)):
        found.append("hazard ids repeat")
    return found


@pytest.fixture(scope="module")
def hazards() -> list[Hazard]:
    return parse(LOG.read_text(encoding="utf-8"))


def test_every_control_is_verified_by_a_test_that_exists(hazards):
    assert problems(hazards, collected_tests()) == []


@pytest.mark.parametrize("topic", REQUIRED)
def test_the_log_covers(hazards, topic):
    assert any(topic.lower() in h.title.lower() for h in hazards), topic


def test_the_matrix_printed_in_the_log_is_the_one_checked():
    rows = re.findall(r"^\| ([1-5]) [A-Za-z ]+ \| (.+) \|$", LOG.read_text(), re.M)
    assert {int(lik): [int(c) for c in cells.split(" | ")] for lik, cells in rows} == {
        lik: [MATRIX[lik][sev] for sev in range(1, 6)] for lik in MATRIX
    }


# --- the check can fail ------------------------------------------------------------------
SOUND = """
## HAZ-01: Example
- **Description:** d
- **Causes:** c
- **Effect:** e
- **Initial risk:** 4/3 -> 3
- **Controls and the tests that verify them:**
  - C1. A control: `tests/test_hazard_log.py::test_every_control_is_verified_by_a_test_that_exists`,
    `tests/test_hazard_log.py::test_the_log_covers`
- **Residual risk:** 4/1 -> 2
- **Status:** closed.
"""


def test_a_sound_log_passes():
    (hazard,) = parse(SOUND)
    assert len(hazard.controls["C1"]) == 2
    assert problems([hazard], collected_tests()) == []


@pytest.mark.parametrize(
    "change, problem",
    [
        (("test_the_log_covers`", "test_that_was_renamed`"), "no such test"),
        (("`tests/test_hazard_log.py::test_every", "tests/test_hazard_log.py::test_every"), None),
        (("4/1 -> 2", "4/1 -> 1"), "rates 1, not 2"),
        (("- **Effect:** e\n", ""), "no Effect"),
        (("4/1 -> 2", "5/5 -> 5"), "higher than the initial"),
    ],
)
def test_a_broken_log_is_caught(change, problem):
    text = SOUND.replace(*change)
    found = problems(parse(text), collected_tests())
    if problem is None:  # one of two tests unquoted: the control still has the other
        assert found == []
        return
    assert any(problem in p for p in found), found


def test_a_control_without_a_test_is_caught():
    start, end = SOUND.index("`tests/"), SOUND.index("- **Residual")
    text = SOUND.replace(SOUND[start:end], "nothing named\n")
    assert "HAZ-01 C1: no verifying test" in problems(parse(text), collected_tests())
