"""Write ``fixtures/scenarios/<slug>/{request,scenario,expected}.json`` from the definitions.

    .venv/bin/python -m tests.scenarios.build           # (re)write every scenario
    .venv/bin/python -m tests.scenarios.build --check   # fail if any fixture is stale

``expected.json`` is the service's answer at the scenario's evaluation time with every
``uuid`` removed (uuids are random; the rest of a response is deterministic).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cds_service.cdshooks.application import CdsApplication
from hooks import registry

from .definitions import SCENARIOS
from .kit import Scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = ROOT / "fixtures" / "scenarios"
FILES = ("request.json", "scenario.json", "expected.json")


class ScenarioError(AssertionError):
    """A scenario's cards are not the rules it declares, or its fixtures are stale."""


def strip_uuids(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: strip_uuids(v) for k, v in data.items() if k != "uuid"}
    if isinstance(data, list):
        return [strip_uuids(v) for v in data]
    return data


def card_rules(response: dict[str, Any]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in response.get("cards", [])]


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def respond(scenario: Scenario, request: dict[str, Any]) -> dict[str, Any]:
    core = CdsApplication(registry=registry())
    response = core.invoke(scenario.service, request, now=scenario.evaluation_time)
    return strip_uuids(response)


def render(scenario: Scenario) -> dict[str, str]:
    """The three files of one scenario, as text."""
    request = scenario.request()
    expected = respond(scenario, request)
    shown = card_rules(expected)
    if shown != list(scenario.rules):
        raise ScenarioError(
            f"{scenario.slug}: cards show {shown}, the scenario declares {list(scenario.rules)}"
        )
    return {
        "request.json": dumps(request),
        "scenario.json": dumps(scenario.description()),
        "expected.json": dumps(expected),
    }


def check_unique(scenarios: Iterable[Scenario]) -> None:
    seen: set[str] = set()
    for scenario in scenarios:
        if scenario.slug in seen:
            raise ScenarioError(f"duplicate scenario slug {scenario.slug}")
        seen.add(scenario.slug)


def write(root: Path = SCENARIO_DIR, scenarios: Iterable[Scenario] = SCENARIOS) -> list[str]:
    scenarios = list(scenarios)
    check_unique(scenarios)
    rendered = {s.slug: render(s) for s in scenarios}
    root.mkdir(parents=True, exist_ok=True)
    for stale in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in rendered):
        shutil.rmtree(stale)
    for slug, files in rendered.items():
        folder = root / slug
        folder.mkdir(exist_ok=True)
        for name, text in files.items():
            path = folder / name
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
    return sorted(rendered)


def check(root: Path = SCENARIO_DIR, scenarios: Iterable[Scenario] = SCENARIOS) -> list[str]:
    """Every difference between the definitions and the files on disk (empty when fresh)."""
    scenarios = list(scenarios)
    check_unique(scenarios)
    problems: list[str] = []
    slugs = {s.slug for s in scenarios}
    if root.is_dir():
        for extra in sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in slugs):
            problems.append(f"{extra}: no definition in tests/scenarios/definitions.py")
    for scenario in scenarios:
        try:
            files = render(scenario)
        except ScenarioError as error:
            problems.append(str(error))
            continue
        for name, text in files.items():
            path = root / scenario.slug / name
            if not path.exists():
                problems.append(f"{scenario.slug}/{name}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{scenario.slug}/{name}: stale")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.scenarios.build",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check", action="store_true", help="regenerate in memory and fail if any file differs"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("fixtures are stale: run `make scenarios`", file=sys.stderr)
            return 1
        print(f"{len(SCENARIOS)} scenarios up to date")
        return 0
    slugs = write()
    print(f"wrote {len(slugs)} scenarios to {SCENARIO_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
